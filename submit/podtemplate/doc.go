// Package podtemplate owns Spark pod templates (spark.kubernetes.{driver,executor}.podTemplateFile) at
// submission: fetching them from S3 (aws-sdk-go-v2, the submitter's credential chain), from a ConfigMap of the
// job run's own namespace (the caller's Kubernetes access) or from the submitter's template directory, bounded
// in size; parsing them as a Pod with errors that name the line; and building on them as Spark's
// KubernetesUtils.loadPodFromTemplate does (Spark's container taken out, the rest kept).
package podtemplate
