{{/* The prefix of every object name. */}}
{{- define "sparkplace.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains "sparkplace" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-sparkplace" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The webhook's Deployment, Service, ServiceAccount and ClusterRole. */}}
{{- define "sparkplace.webhookName" -}}
{{- printf "%s-webhook" (include "sparkplace.fullname" .) -}}
{{- end -}}

{{/* The Secret holding the serving certificate, in both certificate modes. */}}
{{- define "sparkplace.tlsSecret" -}}
{{- printf "%s-webhook-tls" (include "sparkplace.fullname" .) -}}
{{- end -}}

{{/* Labels Helm adds for its own bookkeeping; the kustomize overlays do not carry them. */}}
{{- define "sparkplace.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "sparkplace.labels" -}}
app.kubernetes.io/name: sparkplace
app.kubernetes.io/part-of: sparkplace
{{ include "sparkplace.helmLabels" . }}
{{- end -}}

{{/* Labels of the job-run part (manifests/base/jobs). */}}
{{- define "sparkplace.jobsLabels" -}}
{{ include "sparkplace.labels" . }}
sparkplace.io/part: jobs
{{- end -}}

{{/* Labels selecting the webhook's pods. */}}
{{- define "sparkplace.webhookSelector" -}}
app.kubernetes.io/name: sparkplace
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "sparkplace.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The name of the one webhook in the MutatingWebhookConfiguration (the API server's metrics label it so). */}}
{{- define "sparkplace.admissionWebhookName" -}}
spark-pods.sparkplace.io
{{- end -}}
