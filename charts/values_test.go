package charts_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"flag"
	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/sparkplace/sparkplace/charts"
)

var update = flag.Bool("update", false, "copy policies/schemas/config.json into values.schema.json")

// release is a rendered chart, by kind/name.
type release map[string]*unstructured.Unstructured

func renderRelease(t *testing.T, opts charts.Options) release {
	t.Helper()
	objs, err := charts.Render(opts)
	if err != nil {
		t.Fatal(err)
	}
	r := release{}
	for _, o := range objs {
		r[o.GetKind()+"/"+o.GetName()] = o
	}
	return r
}

// get converts kind/name into its Go type, failing on a missing object or an unknown field.
func get[T any](t *testing.T, r release, kind, name string, into *T) *T {
	t.Helper()
	u, ok := r[kind+"/"+name]
	if !ok {
		t.Fatalf("no %s/%s rendered; have %v", kind, name, slices.Sorted(maps.Keys(r)))
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true); err != nil {
		t.Fatalf("%s/%s does not match its Go type: %v", kind, name, err)
	}
	return into
}

// values parses a YAML values document, as `helm template -f` would read it.
func values(t *testing.T, doc string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestValuesReachTheObjects(t *testing.T) {
	cases := map[string]struct {
		values                 string
		releaseName, namespace string
		check                  func(t *testing.T, r release)
	}{
		"replicas, resources and scheduling reach the Deployment": {
			values: `webhook: {replicas: 3, resources: {requests: {cpu: 250m}}, nodeSelector: {kubernetes.io/os: linux},
  tolerations: [{key: CriticalAddonsOnly, operator: Exists}], priorityClassName: system-cluster-critical}
imagePullSecrets: [{name: registry}]
image: {repository: registry.example.com/sparkplace, tag: v1.2.3, pullPolicy: Always}`,
			check: func(t *testing.T, r release) {
				d := get(t, r, "Deployment", "sparkplace-webhook", &appsv1.Deployment{})
				spec := d.Spec.Template.Spec
				c := spec.Containers[0]
				checks := map[string]bool{
					"3 replicas":            *d.Spec.Replicas == 3,
					"cpu request":           c.Resources.Requests.Cpu().String() == "250m",
					"default limit kept":    c.Resources.Limits.Memory().String() == "512Mi", // Helm merges maps
					"node selector":         spec.NodeSelector["kubernetes.io/os"] == "linux",
					"toleration":            len(spec.Tolerations) == 1 && spec.Tolerations[0].Key == "CriticalAddonsOnly",
					"priority class":        spec.PriorityClassName == "system-cluster-critical",
					"pull secret":           len(spec.ImagePullSecrets) == 1 && spec.ImagePullSecrets[0].Name == "registry",
					"image and pull policy": c.Image == "registry.example.com/sparkplace:v1.2.3" && c.ImagePullPolicy == corev1.PullAlways,
				}
				for what, ok := range checks {
					if !ok {
						t.Errorf("Deployment: not %s", what)
					}
				}
			},
		},
		"failurePolicy, timeout and namespace selector reach the webhook configuration": {
			values: `webhook: {failurePolicy: Ignore, timeoutSeconds: 10, excludeNamespaces: [kube-system, monitoring],
  namespaceSelector: {matchLabels: {sparkplace.io/enabled: "true"}, matchExpressions: [{key: team, operator: Exists}]}}`,
			check: func(t *testing.T, r release) {
				w := get(t, r, "MutatingWebhookConfiguration", "sparkplace", &admissionregistrationv1.MutatingWebhookConfiguration{}).Webhooks[0]
				if *w.FailurePolicy != admissionregistrationv1.Ignore || *w.TimeoutSeconds != 10 {
					t.Errorf("failurePolicy %s, timeout %d; want Ignore, 10", *w.FailurePolicy, *w.TimeoutSeconds)
				}
				want := &metav1.LabelSelector{
					MatchLabels: map[string]string{"sparkplace.io/enabled": "true"},
					MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"sparkplace", "kube-system", "monitoring"}},
						{Key: "team", Operator: metav1.LabelSelectorOpExists},
					},
				}
				if diff := cmp.Diff(want, w.NamespaceSelector); diff != "" {
					t.Errorf("namespaceSelector (-want +got):\n%s", diff)
				}
			},
		},
		"PodDisruptionBudget and NetworkPolicy can be left out": {
			values: `{podDisruptionBudget: {enabled: false}, networkPolicy: {enabled: false}}`,
			check: func(t *testing.T, r release) {
				for _, k := range []string{"PodDisruptionBudget/sparkplace-webhook", "NetworkPolicy/sparkplace-webhook"} {
					if _, ok := r[k]; ok {
						t.Errorf("%s rendered although disabled", k)
					}
				}
			},
		},
		"PodDisruptionBudget minAvailable": {
			values: `podDisruptionBudget: {minAvailable: 2}`,
			check: func(t *testing.T, r release) {
				if got := fmt.Sprint(r["PodDisruptionBudget/sparkplace-webhook"].Object["spec"].(map[string]any)["minAvailable"]); got != "2" {
					t.Errorf("minAvailable %v, want 2", got)
				}
			},
		},
		"config, guardrails and policies reach their ConfigMaps": {
			values: `config:
  preset: karpenter
  defaultProfile: on-demand
guardrails: {allowedHostPathPrefixes: [/pv-disks/, /mnt/nvme/], allowedCapabilities: [CHOWN]}
policies:
  extra.rego: |
    package sparkplace.extra

    # a comment
    limit := 3
`,
			check: func(t *testing.T, r release) {
				cfg := get(t, r, "ConfigMap", "sparkplace-config", &corev1.ConfigMap{})
				var got map[string]any
				if err := yaml.Unmarshal([]byte(cfg.Data["config.yaml"]), &got); err != nil {
					t.Fatal(err)
				}
				want := map[string]any{"preset": "karpenter", "defaultProfile": "on-demand"}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("config.yaml (-want +got):\n%s", diff)
				}
				gr := get(t, r, "ConfigMap", "sparkplace-guardrails", &corev1.ConfigMap{})
				var guardrails map[string]any
				if err := yaml.Unmarshal([]byte(gr.Data["guardrails.yaml"]), &guardrails); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(map[string]any{"allowedHostPathPrefixes": []any{"/pv-disks/", "/mnt/nvme/"}, "allowedCapabilities": []any{"CHOWN"}}, guardrails); diff != "" {
					t.Errorf("guardrails.yaml (-want +got):\n%s", diff)
				}
				pol := get(t, r, "ConfigMap", "sparkplace-policies", &corev1.ConfigMap{})
				if want := "package sparkplace.extra\n\n# a comment\nlimit := 3\n"; pol.Data["extra.rego"] != want {
					t.Errorf("extra.rego = %q, want the source byte for byte: %q", pol.Data["extra.rego"], want)
				}
			},
		},
		"onPolicyError allow and certificate lifetimes become flags": {
			values: `webhook: {onPolicyError: allow, extraArgs: [--policy-timeout=2s]}
certificates: {caLifetime: 17520h, servingCertLifetime: 720h}`,
			check: func(t *testing.T, r release) {
				args := get(t, r, "Deployment", "sparkplace-webhook", &appsv1.Deployment{}).Spec.Template.Spec.Containers[0].Args
				for _, want := range []string{"--on-policy-error=allow", "--ca-lifetime=17520h", "--serving-cert-lifetime=720h", "--policy-timeout=2s"} {
					if !slices.Contains(args, want) {
						t.Errorf("args %q lack %s", args, want)
					}
				}
			},
		},
		"cert-manager lifetimes reach the Certificates": {
			values: `certificates: {mode: cert-manager, caLifetime: 17520h, servingCertLifetime: 720h}`,
			check: func(t *testing.T, r release) {
				for name, want := range map[string]string{"sparkplace-ca": "17520h", "sparkplace-webhook": "720h"} {
					got, _, _ := unstructured.NestedString(r["Certificate/"+name].Object, "spec", "duration")
					if got != want {
						t.Errorf("Certificate %s duration %q, want %q", name, got, want)
					}
				}
			},
		},
		"the node agent follows config nvme.hostPath and nvme.nodeSelector": {
			values: `nodeAgent: {enabled: true, gracePeriod: 30m}
config: {nvme: {hostPath: /mnt/nvme, nodeSelector: {node.example.com/nvme: "true"}}}`,
			check: func(t *testing.T, r release) {
				ds := get(t, r, "DaemonSet", "sparkplace-node-agent", &appsv1.DaemonSet{})
				spec := ds.Spec.Template.Spec
				args := spec.Containers[0].Args
				for _, want := range []string{"--root=/mnt/nvme", "--grace-period=30m"} {
					if !slices.Contains(args, want) {
						t.Errorf("args %q lack %s", args, want)
					}
				}
				if spec.Volumes[0].HostPath.Path != "/mnt/nvme" || spec.Containers[0].VolumeMounts[0].MountPath != "/mnt/nvme" {
					t.Errorf("hostPath %s mounted at %s, want /mnt/nvme at /mnt/nvme", spec.Volumes[0].HostPath.Path, spec.Containers[0].VolumeMounts[0].MountPath)
				}
				if diff := cmp.Diff(map[string]string{"node.example.com/nvme": "true"}, spec.NodeSelector); diff != "" {
					t.Errorf("nodeSelector (-want +got):\n%s", diff)
				}
				if ds.Namespace != "sparkplace-node-agent" {
					t.Errorf("DaemonSet in %s, want its own namespace sparkplace-node-agent", ds.Namespace)
				}
			},
		},
		"another release name and namespace rename everything consistently": {
			releaseName: "platform", namespace: "spark-system",
			check: func(t *testing.T, r release) {
				const sa = "platform-sparkplace-webhook"
				d := get(t, r, "Deployment", sa, &appsv1.Deployment{})
				args := d.Spec.Template.Spec.Containers[0].Args
				for _, want := range []string{"--cert-secret=platform-sparkplace-webhook-tls", "--service-name=" + sa, "--webhook-config-name=platform-sparkplace"} {
					if !slices.Contains(args, want) {
						t.Errorf("args %q lack %s", args, want)
					}
				}
				if d.Spec.Template.Spec.ServiceAccountName != sa || d.Namespace != "spark-system" {
					t.Errorf("Deployment in %s runs as %s", d.Namespace, d.Spec.Template.Spec.ServiceAccountName)
				}
				w := get(t, r, "MutatingWebhookConfiguration", "platform-sparkplace", &admissionregistrationv1.MutatingWebhookConfiguration{}).Webhooks[0]
				if svc := w.ClientConfig.Service; svc.Name != sa || svc.Namespace != "spark-system" {
					t.Errorf("webhook calls %s/%s", svc.Namespace, svc.Name)
				}
				if got := w.NamespaceSelector.MatchExpressions[0].Values; !slices.Equal(got, []string{"spark-system", "kube-system"}) {
					t.Errorf("excluded namespaces %v, want the release namespace and kube-system", got)
				}
				role := get(t, r, "Role", sa+"-certs", &rbacv1.Role{})
				ca := get(t, r, "ClusterRole", sa+"-cabundle", &rbacv1.ClusterRole{})
				if !slices.Equal(role.Rules[1].ResourceNames, []string{"platform-sparkplace-webhook-tls"}) || !slices.Equal(ca.Rules[0].ResourceNames, []string{"platform-sparkplace"}) {
					t.Errorf("RBAC names %v and %v, want the release's Secret and webhook configuration", role.Rules[1].ResourceNames, ca.Rules[0].ResourceNames)
				}
				for k, o := range r {
					if ns := o.GetNamespace(); ns != "" && ns != "spark-system" {
						t.Errorf("%s in namespace %s", k, ns)
					}
					for _, s := range subjects(t, o) {
						if !strings.HasPrefix(s.Name, "platform-sparkplace-") || s.Namespace != "spark-system" {
							t.Errorf("%s binds %s/%s", k, s.Namespace, s.Name)
						}
					}
				}
			},
		},
		"the API's AWS identity and pod template directory, with and without cert-manager": {
			values: `jobs: {api: {serviceAccountAnnotations: {eks.amazonaws.com/role-arn: "arn:aws:iam::152324983118:role/templates"}, podTemplatesConfigMap: spark-pod-templates}}`,
			check: func(t *testing.T, r release) {
				sa := get(t, r, "ServiceAccount", "sparkplace-api", &corev1.ServiceAccount{})
				if sa.Annotations["eks.amazonaws.com/role-arn"] != "arn:aws:iam::152324983118:role/templates" {
					t.Errorf("API ServiceAccount annotations %v, want the IRSA role", sa.Annotations)
				}
				spec := get(t, r, "Deployment", "sparkplace-api", &appsv1.Deployment{}).Spec.Template.Spec
				c := spec.Containers[0]
				if !slices.Contains(c.Args, "--pod-template-dir=/etc/sparkplace/pod-templates") || len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/sparkplace/pod-templates" ||
					len(spec.Volumes) != 1 || spec.Volumes[0].ConfigMap == nil || spec.Volumes[0].ConfigMap.Name != "spark-pod-templates" {
					t.Errorf("API args %q, mounts %+v, volumes %+v; want the templates ConfigMap as --pod-template-dir", c.Args, c.VolumeMounts, spec.Volumes)
				}
				withTLS := renderRelease(t, charts.Options{Values: values(t, `certificates: {mode: cert-manager}
jobs: {api: {podTemplatesConfigMap: spark-pod-templates}}`)})
				spec = get(t, withTLS, "Deployment", "sparkplace-api", &appsv1.Deployment{}).Spec.Template.Spec
				if len(spec.Volumes) != 2 || len(spec.Containers[0].VolumeMounts) != 2 {
					t.Errorf("with cert-manager: volumes %+v, mounts %+v; want the TLS Secret and the templates", spec.Volumes, spec.Containers[0].VolumeMounts)
				}
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var v map[string]any
			if tc.values != "" {
				v = values(t, tc.values)
			}
			tc.check(t, renderRelease(t, charts.Options{Values: v, ReleaseName: tc.releaseName, Namespace: tc.namespace}))
		})
	}
}

func subjects(t *testing.T, o *unstructured.Unstructured) []rbacv1.Subject {
	t.Helper()
	raw, ok := o.Object["subjects"]
	if !ok {
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	var s []rbacv1.Subject
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSchemaRefusesBadValues: values.schema.json stops a mistake at `helm install` with the path of the
// wrong value, before anything reaches the cluster.
func TestSchemaRefusesBadValues(t *testing.T) {
	cases := map[string]struct {
		values   string
		wantPath string
	}{
		"unknown failurePolicy":            {`webhook: {failurePolicy: Sometimes}`, "/webhook/failurePolicy"},
		"timeout above the API server's":   {`webhook: {timeoutSeconds: 60}`, "/webhook/timeoutSeconds"},
		"no replicas":                      {`webhook: {replicas: 0}`, "/webhook/replicas"},
		"unknown certificate mode":         {`certificates: {mode: vault}`, "/certificates/mode"},
		"lifetime that is no Go duration":  {`certificates: {caLifetime: 1 year}`, "/certificates/caLifetime"},
		"unknown onPolicyError":            {`webhook: {onPolicyError: ignore}`, "/webhook/onPolicyError"},
		"a typo in config":                 {`config: {presett: karpenter}`, "/config"},
		"a policy file that is not Rego":   {`policies: {notes.txt: hello}`, "'notes.txt' does not match pattern"},
		"an extra arg without dashes":      {`webhook: {extraArgs: [policy-timeout=2s]}`, "/webhook/extraArgs/0"},
		"a misspelled top-level key":       {`webhooks: {replicas: 3}`, "additional properties 'webhooks'"},
		"a typo deep in config":            {`config: {zone: {topologykey: x}}`, "/config/zone"},
		"a config value of the wrong type": {`config: {isolation: {enabled: "yes"}}`, "/config/isolation/enabled"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := charts.Render(charts.Options{Values: values(t, tc.values)})
			if err == nil {
				t.Fatal("rendered; want a schema error")
			}
			if !strings.Contains(err.Error(), tc.wantPath) {
				t.Errorf("error %q does not name %s", err, tc.wantPath)
			}
		})
	}
}

// TestSchemaConfigIsTheBundles: the schema of the config value is policies/schemas/config.json, the schema
// the webhook itself compiles the policies with (generated from the bundle's defaults), so the chart refuses
// exactly the config the webhook would refuse. `go test ./charts -update` copies it into values.schema.json.
// The bundle's full default config is valid values.
func TestSchemaConfigIsTheBundles(t *testing.T) {
	var want map[string]any
	readJSON(t, filepath.Join("..", "policies", "schemas", "config.json"), &want)
	delete(want, "$schema") // a keyword of the root schema only
	path := filepath.Join("sparkplace", "values.schema.json")
	var schema map[string]any
	readJSON(t, path, &schema)
	props := schema["properties"].(map[string]any)
	if *update {
		props["config"] = want
		b, err := json.MarshalIndent(schema, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(want, props["config"]); diff != "" {
		t.Errorf("values.schema.json's config is not policies/schemas/config.json; run go test ./charts -update (-want +got):\n%s", diff)
	}

	b, err := os.ReadFile(filepath.Join("..", "policies", "bundle", "sparkplace", "config", "data.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var bundle map[string]any
	if err := yaml.Unmarshal(b, &bundle); err != nil {
		t.Fatal(err)
	}
	if _, err := charts.Render(charts.Options{Values: map[string]any{"config": bundle}}); err != nil {
		t.Errorf("the bundle's own config is not valid chart values: %v", err)
	}
}

func readJSON(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
