package manifests_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sparkplace/sparkplace/certs"
	"github.com/sparkplace/sparkplace/manifests"
)

var update = flag.Bool("update", false, "rewrite overlays/cert-manager/certificates.yaml from certs.CertManagerObjects")

const (
	namespace   = "sparkplace"
	serviceName = "sparkplace-webhook"
	secretName  = "sparkplace-webhook-tls"
	webhookName = "sparkplace"
	saName      = "sparkplace-webhook"
)

// rendered is an overlay's objects, looked up by kind and name.
type rendered map[string]*unstructured.Unstructured

func render(t *testing.T, overlay string) rendered {
	t.Helper()
	objs, err := manifests.Render(overlay)
	if err != nil {
		t.Fatal(err)
	}
	out := rendered{}
	for _, o := range objs {
		out[o.GetKind()+"/"+o.GetName()] = o.DeepCopy() // panics unless every value is JSON-compatible
	}
	return out
}

// get converts the object kind/name into typed, failing the test when it is missing.
func get[T any](t *testing.T, r rendered, kind, name string, into *T) *T {
	t.Helper()
	u, ok := r[kind+"/"+name]
	if !ok {
		t.Fatalf("no %s/%s rendered", kind, name)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true); err != nil {
		t.Fatalf("%s/%s does not match its Go type: %v", kind, name, err)
	}
	return into
}

func TestOverlaysRender(t *testing.T) {
	common := []string{
		"Namespace/sparkplace", "ServiceAccount/sparkplace-webhook", "ClusterRole/sparkplace-webhook",
		"ClusterRoleBinding/sparkplace-webhook", "ConfigMap/sparkplace-config", "ConfigMap/sparkplace-guardrails", "ConfigMap/sparkplace-policies",
		"Deployment/sparkplace-webhook", "Service/sparkplace-webhook", "PodDisruptionBudget/sparkplace-webhook",
		"NetworkPolicy/sparkplace-webhook", "MutatingWebhookConfiguration/sparkplace",
		"CustomResourceDefinition/jobruns.sparkplace.io", "CustomResourceDefinition/virtualclusters.sparkplace.io",
		"CustomResourceDefinition/jobtemplates.sparkplace.io", "ClusterRole/sparkplace-job-templates",
		"ServiceAccount/sparkplace-controller", "Deployment/sparkplace-controller",
		"ClusterRole/sparkplace-controller", "ClusterRoleBinding/sparkplace-controller",
		"Role/sparkplace-controller-leader-election", "RoleBinding/sparkplace-controller-leader-election",
		"ClusterRole/sparkplace-spark-driver", "ClusterRole/sparkplace-job-submitter", "ClusterRole/sparkplace-job-viewer",
		"ServiceAccount/sparkplace-api", "Deployment/sparkplace-api", "ClusterRole/sparkplace-api", "ClusterRoleBinding/sparkplace-api",
		"Role/sparkplace-api-credentials", "RoleBinding/sparkplace-api-credentials",
	}
	cases := map[string]struct {
		overlay  string
		extra    []string
		wantArgs []string
	}{
		"self-signed: the webhook manages its CA": {
			overlay: manifests.OverlaySelfSigned,
			extra: []string{"Role/sparkplace-webhook-certs", "RoleBinding/sparkplace-webhook-certs",
				"ClusterRole/sparkplace-webhook-cabundle", "ClusterRoleBinding/sparkplace-webhook-cabundle"},
			wantArgs: []string{"--cert-mode=self-managed", "--cert-secret=" + secretName, "--service-name=" + serviceName,
				"--service-namespace=$(POD_NAMESPACE)", "--webhook-config-name=" + webhookName},
		},
		"cert-manager: the webhook mounts cert-manager's Secret": {
			overlay: manifests.OverlayCertManager,
			extra: []string{"Issuer/sparkplace-selfsigned", "Certificate/sparkplace-ca", "Issuer/sparkplace-ca",
				"Certificate/sparkplace-webhook", "Certificate/sparkplace-api", "Service/sparkplace-api"},
			wantArgs: []string{"--cert-mode=files", "--tls-cert-file=/etc/sparkplace/tls/tls.crt",
				"--tls-key-file=/etc/sparkplace/tls/tls.key", "--tls-ca-file=/etc/sparkplace/tls/ca.crt"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := render(t, tc.overlay)
			var got []string
			for k, o := range r {
				got = append(got, k)
				if ns := o.GetNamespace(); ns != "" && ns != namespace {
					t.Errorf("%s is in namespace %s, want %s", k, ns, namespace)
				}
			}
			want := append(slices.Clone(common), tc.extra...)
			slices.Sort(got)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("rendered objects (-want +got):\n%s", diff)
			}

			d := get(t, r, "Deployment", serviceName, &appsv1.Deployment{})
			args := d.Spec.Template.Spec.Containers[0].Args
			for _, a := range tc.wantArgs {
				if !slices.Contains(args, a) {
					t.Errorf("container args %q lack %s", args, a)
				}
			}
			checkDeployment(t, d)
			checkWebhook(t, get(t, r, "MutatingWebhookConfiguration", webhookName, &admissionregistrationv1.MutatingWebhookConfiguration{}))
			svc := get(t, r, "Service", serviceName, &corev1.Service{})
			if svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.String() != "webhook" {
				t.Errorf("Service port %d -> %s, want 443 -> webhook (9443)", svc.Spec.Ports[0].Port, svc.Spec.Ports[0].TargetPort.String())
			}
		})
	}
}

func checkDeployment(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	checks := map[string]bool{
		"two replicas":                    d.Spec.Replicas != nil && *d.Spec.Replicas == 2,
		"spread across nodes":             len(spec.TopologySpreadConstraints) > 0 && spec.TopologySpreadConstraints[0].TopologyKey == corev1.LabelHostname && spec.TopologySpreadConstraints[0].WhenUnsatisfiable == corev1.DoNotSchedule,
		"pod runs as non-root":            spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot,
		"seccomp RuntimeDefault":          spec.SecurityContext.SeccompProfile != nil && spec.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault,
		"read-only root filesystem":       c.SecurityContext.ReadOnlyRootFilesystem != nil && *c.SecurityContext.ReadOnlyRootFilesystem,
		"no privilege escalation":         c.SecurityContext.AllowPrivilegeEscalation != nil && !*c.SecurityContext.AllowPrivilegeEscalation,
		"all capabilities dropped":        c.SecurityContext.Capabilities != nil && slices.Equal(c.SecurityContext.Capabilities.Drop, []corev1.Capability{"ALL"}),
		"readiness probe on /readyz":      c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path == "/readyz",
		"its own ServiceAccount":          spec.ServiceAccountName == saName,
		"rollouts keep every replica":     d.Spec.Strategy.RollingUpdate != nil && d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() == 0,
		"memory limit":                    !c.Resources.Limits.Memory().IsZero(),
		"selector matches the pod labels": d.Spec.Selector.MatchLabels["app.kubernetes.io/component"] == d.Spec.Template.Labels["app.kubernetes.io/component"],
		"policy and config ConfigMaps":    len(spec.Volumes) >= 2 && spec.Volumes[0].ConfigMap != nil && spec.Volumes[1].ConfigMap != nil,
		"namespace from the downward API": len(c.Env) > 0 && c.Env[0].ValueFrom != nil && c.Env[0].ValueFrom.FieldRef.FieldPath == "metadata.namespace",
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("Deployment: not %s", what)
		}
	}
}

func checkWebhook(t *testing.T, cfg *admissionregistrationv1.MutatingWebhookConfiguration) {
	t.Helper()
	if len(cfg.Webhooks) != 1 {
		t.Fatalf("%d webhooks, want 1", len(cfg.Webhooks))
	}
	w := cfg.Webhooks[0]
	svc := w.ClientConfig.Service
	checks := map[string]bool{
		"calls the Service on 443":             svc != nil && svc.Name == serviceName && svc.Namespace == namespace && svc.Port != nil && *svc.Port == 443,
		"calls /mutate-spark-pods":             svc != nil && svc.Path != nil && *svc.Path == "/mutate-spark-pods",
		"CREATE of pods only":                  len(w.Rules) == 1 && slices.Equal(w.Rules[0].Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}) && slices.Equal(w.Rules[0].Resources, []string{"pods"}),
		"Spark driver and executor pods only":  w.ObjectSelector != nil && len(w.ObjectSelector.MatchExpressions) == 1 && w.ObjectSelector.MatchExpressions[0].Key == "spark-role" && slices.Equal(w.ObjectSelector.MatchExpressions[0].Values, []string{"driver", "executor"}),
		"not its own namespace or kube-system": w.NamespaceSelector != nil && len(w.NamespaceSelector.MatchExpressions) == 1 && w.NamespaceSelector.MatchExpressions[0].Operator == "NotIn" && slices.Equal(w.NamespaceSelector.MatchExpressions[0].Values, []string{namespace, "kube-system"}),
		"explicit timeout":                     w.TimeoutSeconds != nil && *w.TimeoutSeconds <= 10,
		"explicit failure policy":              w.FailurePolicy != nil,
		"reinvoked if needed":                  w.ReinvocationPolicy != nil && *w.ReinvocationPolicy == admissionregistrationv1.IfNeededReinvocationPolicy,
		"no side effects":                      w.SideEffects != nil && *w.SideEffects == admissionregistrationv1.SideEffectClassNone,
		"no caBundle in the manifests":         len(w.ClientConfig.CABundle) == 0,
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("webhook %s: not %s", w.Name, what)
		}
	}
}

// controllerRules are the job-run controller's, in every overlay.
var controllerRules = []string{
	"ClusterRole: sparkplace.io/jobruns get,list,watch,delete",
	"ClusterRole: sparkplace.io/virtualclusters get,list,watch",
	"ClusterRole: sparkplace.io/jobruns/status update,patch",
	"ClusterRole: sparkplace.io/virtualclusters/status update,patch",
	"ClusterRole: sparkplace.io/jobruns/finalizers update",
	"ClusterRole: sparkplace.io/virtualclusters/finalizers update",
	"ClusterRole: /pods get,list,watch,create,delete,deletecollection",
	"ClusterRole: /configmaps create",
	"ClusterRole: /services create",
	"ClusterRole: /serviceaccounts create",
	"ClusterRole: rbac.authorization.k8s.io/rolebindings create",
	"ClusterRole: rbac.authorization.k8s.io/clusterroles[sparkplace-spark-driver] bind",
	"ClusterRole: /namespaces get",
	"ClusterRole: /events create,patch",
	"Role sparkplace: coordination.k8s.io/leases get,list,watch,create,update,patch",
}

// apiRules are the emr-containers API's, in every overlay.
var apiRules = []string{
	"ClusterRole: sparkplace.io/virtualclusters get,list,watch",
	"ClusterRole: /namespaces get",
	"ClusterRole: /users impersonate",
	"ClusterRole: /groups impersonate",
	"Role sparkplace: /secrets get,list,watch",
}

// TestRBACIsExactlyWhatTheWebhookNeeds lists every rule bound to each ServiceAccount in each overlay: the
// webhook's and the job-run controller's.
func TestRBACIsExactlyWhatTheWebhookNeeds(t *testing.T) {
	read := []string{"get", "list", "watch"}
	common := []string{
		"ClusterRole: /pods " + strings.Join(read, ","),
		"ClusterRole: /nodes " + strings.Join(read, ","),
		"ClusterRole: /namespaces " + strings.Join(read, ","),
		// Bounded strictness replaces executors stranded on a full zone.
		"ClusterRole: /pods patch,delete",
		"ClusterRole: apps/daemonsets list,watch", // their requests count against free capacity
		// Bounded strictness sweeps only the namespaces its own webhook configuration selects.
		"ClusterRole: admissionregistration.k8s.io/mutatingwebhookconfigurations[" + webhookName + "] get",
	}
	cases := map[string]struct {
		overlay string
		extra   []string
	}{
		"self-signed adds its own Secret and webhook configuration": {
			overlay: manifests.OverlaySelfSigned,
			extra: []string{
				"Role sparkplace: /secrets create",
				"Role sparkplace: /secrets[" + secretName + "] get,update",
				"ClusterRole: admissionregistration.k8s.io/mutatingwebhookconfigurations[" + webhookName + "] update",
			},
		},
		"cert-manager adds nothing": {overlay: manifests.OverlayCertManager},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := render(t, tc.overlay)
			got := map[string][]string{}
			for _, o := range r {
				var subjects []rbacv1.Subject
				var ref rbacv1.RoleRef
				switch o.GetKind() {
				case "ClusterRoleBinding":
					b := get(t, r, o.GetKind(), o.GetName(), &rbacv1.ClusterRoleBinding{})
					subjects, ref = b.Subjects, b.RoleRef
				case "RoleBinding":
					b := get(t, r, o.GetKind(), o.GetName(), &rbacv1.RoleBinding{})
					subjects, ref = b.Subjects, b.RoleRef
				default:
					continue
				}
				if len(subjects) != 1 || subjects[0].Kind != "ServiceAccount" || subjects[0].Namespace != namespace {
					t.Errorf("%s/%s binds %v, want one ServiceAccount of %s", o.GetKind(), o.GetName(), subjects, namespace)
					continue
				}
				sa := subjects[0].Name
				var rules []rbacv1.PolicyRule
				scope := "ClusterRole:"
				if ref.Kind == "Role" {
					rules = get(t, r, "Role", ref.Name, &rbacv1.Role{}).Rules
					scope = "Role " + o.GetNamespace() + ":"
				} else {
					rules = get(t, r, "ClusterRole", ref.Name, &rbacv1.ClusterRole{}).Rules
				}
				for _, rule := range rules {
					for _, g := range rule.APIGroups {
						for _, res := range rule.Resources {
							names := ""
							if len(rule.ResourceNames) > 0 {
								names = "[" + strings.Join(rule.ResourceNames, ",") + "]"
							}
							got[sa] = append(got[sa], scope+" "+g+"/"+res+names+" "+strings.Join(rule.Verbs, ","))
						}
					}
				}
			}
			want := map[string][]string{
				saName:                  append(slices.Clone(common), tc.extra...),
				"sparkplace-controller": slices.Clone(controllerRules),
				"sparkplace-api":        slices.Clone(apiRules),
			}
			for _, rules := range [](map[string][]string){got, want} {
				for _, list := range rules {
					slices.Sort(list)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("rules bound to the ServiceAccounts (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCertManagerObjectsMatchTheTypes: overlays/cert-manager/certificates.yaml is what certs.CertManagerObjects
// builds from cert-manager's API types, and the webhook configuration's inject annotation names its Certificate.
func TestCertManagerObjectsMatchTheTypes(t *testing.T) {
	objs, inject, err := certs.CertManagerObjects(certs.CertManagerOptions{Namespace: namespace, ServiceName: serviceName, SecretName: secretName})
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	want.WriteString("# Generated by `go test ./manifests -update` from certs.CertManagerObjects; do not edit.\n")
	for i, o := range objs {
		if i > 0 {
			want.WriteString("---\n")
		}
		want.Write(toYAML(t, o))
	}
	golden := filepath.Join("overlays", "cert-manager", "certificates.yaml")
	if *update {
		if err := os.WriteFile(golden, want.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.String(), string(got)); diff != "" {
		t.Errorf("%s is stale; run go test ./manifests -update (-want +got):\n%s", golden, diff)
	}

	r := render(t, manifests.OverlayCertManager)
	for _, o := range objs {
		u, ok := r[o.GetObjectKind().GroupVersionKind().Kind+"/"+o.GetName()]
		if !ok {
			t.Errorf("%s/%s not rendered", o.GetObjectKind().GroupVersionKind().Kind, o.GetName())
			continue
		}
		var wantMap map[string]any
		if err := yaml.Unmarshal(toYAML(t, o), &wantMap); err != nil {
			t.Fatal(err)
		}
		var gotMap map[string]any // through JSON like wantMap, so numbers compare as float64
		if b, err := json.Marshal(u.Object); err != nil || json.Unmarshal(b, &gotMap) != nil {
			t.Fatalf("re-encoding %s: %v", o.GetName(), err)
		}
		if diff := cmp.Diff(wantMap, gotMap); diff != "" {
			t.Errorf("rendered %s differs from the Go types (-want +got):\n%s", o.GetName(), diff)
		}
	}
	cfg := get(t, r, "MutatingWebhookConfiguration", webhookName, &admissionregistrationv1.MutatingWebhookConfiguration{})
	if got := cfg.Annotations[certs.InjectCAAnnotation]; got != inject {
		t.Errorf("%s = %q, want %q", certs.InjectCAAnnotation, got, inject)
	}
}

// toYAML is o as YAML without the fields an API server fills in (status, creationTimestamp).
func toYAML(t *testing.T, o client.Object) []byte {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "status")
	if meta, ok := m["metadata"].(map[string]any); ok {
		delete(meta, "creationTimestamp")
	}
	y, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// TestNodeAgentRenders: the node agent runs on NVMe nodes in a namespace of its own, reads pods and nothing
// else, and holds root with CAP_DAC_OVERRIDE only, with the NVMe root as its only host path.
func TestNodeAgentRenders(t *testing.T) {
	r := render(t, manifests.OverlayNodeAgent)
	var got []string
	for k, o := range r {
		got = append(got, k)
		if ns := o.GetNamespace(); ns != "" && ns != "sparkplace-node-agent" {
			t.Errorf("%s is in namespace %s, want sparkplace-node-agent", k, ns)
		}
	}
	slices.Sort(got)
	want := []string{"ClusterRole/sparkplace-node-agent", "ClusterRoleBinding/sparkplace-node-agent", "DaemonSet/sparkplace-node-agent",
		"Namespace/sparkplace-node-agent", "NetworkPolicy/sparkplace-node-agent", "ServiceAccount/sparkplace-node-agent"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rendered objects (-want +got):\n%s", diff)
	}
	role := get(t, r, "ClusterRole", "sparkplace-node-agent", &rbacv1.ClusterRole{})
	if diff := cmp.Diff([]rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}, role.Rules); diff != "" {
		t.Errorf("ClusterRole rules (-want +got):\n%s", diff)
	}
	ds := get(t, r, "DaemonSet", "sparkplace-node-agent", &appsv1.DaemonSet{})
	spec := ds.Spec.Template.Spec
	c := spec.Containers[0]
	if c.Args[0] != "node-agent" || !slices.Contains(c.Args, "--root=/pv-disks/local") {
		t.Errorf("args %q", c.Args)
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Privileged != nil && *sc.Privileged || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"DAC_OVERRIDE"}) {
		t.Errorf("securityContext %+v: want no escalation, read-only root, ALL dropped and only DAC_OVERRIDE added", sc)
	}
	if len(spec.Volumes) != 1 || spec.Volumes[0].HostPath == nil || spec.Volumes[0].HostPath.Path != "/pv-disks/local" {
		t.Errorf("volumes %+v: want the NVMe root only", spec.Volumes)
	}
	if spec.HostNetwork || spec.HostPID || spec.NodeSelector["disk"] != "nvme" {
		t.Errorf("host namespaces or node selector: %+v", spec)
	}
	ns := get(t, r, "Namespace", "sparkplace-node-agent", &corev1.Namespace{})
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace labels %v", ns.Labels)
	}
}
