package charts_test

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/sparkplace/sparkplace/charts"
	"github.com/sparkplace/sparkplace/manifests"
)

// helmLabels are the labels Helm's conventions add for its own bookkeeping; the kustomize overlays do not
// carry them, and nothing selects on them.
var helmLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}

// TestChartMatchesKustomize renders the chart and the kustomize overlay that installs the same thing and
// compares them object by object, whole: names, namespaces, labels, RBAC rules and bindings, the webhook
// configuration, the Deployment's args, probes and security contexts. Only Helm's bookkeeping labels are
// dropped, and config.yaml is compared as YAML data (the overlay's has comments).
func TestChartMatchesKustomize(t *testing.T) {
	cases := map[string]struct {
		values  map[string]any
		overlay string
	}{
		"default values install what overlays/self-signed installs": {
			values:  map[string]any{"namespace": map[string]any{"create": true}},
			overlay: manifests.OverlaySelfSigned,
		},
		"certificates.mode=cert-manager installs what overlays/cert-manager installs": {
			values:  map[string]any{"namespace": map[string]any{"create": true}, "certificates": map[string]any{"mode": "cert-manager"}},
			overlay: manifests.OverlayCertManager,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			want := byKindName(t, mustRender(t, func() ([]*unstructured.Unstructured, error) { return manifests.Render(tc.overlay) }))
			got := byKindName(t, mustRender(t, func() ([]*unstructured.Unstructured, error) {
				return charts.Render(charts.Options{Values: tc.values})
			}))
			if diff := cmp.Diff(slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got))); diff != "" {
				t.Fatalf("objects (-kustomize +chart):\n%s", diff)
			}
			for k := range want {
				if diff := cmp.Diff(want[k], got[k]); diff != "" {
					t.Errorf("%s differs (-kustomize +chart):\n%s", k, diff)
				}
			}
		})
	}
}

// TestDefaultValuesLeaveTheNamespaceToHelm: `helm install` cannot install into a namespace the chart also
// creates, so by default the chart renders everything the overlay does but the Namespace.
func TestDefaultValuesLeaveTheNamespaceToHelm(t *testing.T) {
	withNS := byKindName(t, mustRender(t, func() ([]*unstructured.Unstructured, error) {
		return charts.Render(charts.Options{Values: map[string]any{"namespace": map[string]any{"create": true}}})
	}))
	defaults := byKindName(t, mustRender(t, func() ([]*unstructured.Unstructured, error) { return charts.Render(charts.Options{}) }))
	var only []string
	for k := range withNS {
		if _, ok := defaults[k]; !ok {
			only = append(only, k)
		}
	}
	if !slices.Equal(only, []string{"Namespace/sparkplace"}) || len(defaults) != len(withNS)-1 {
		t.Errorf("namespace.create=true adds %v to the defaults, want only Namespace/sparkplace", only)
	}
}

func mustRender(t *testing.T, render func() ([]*unstructured.Unstructured, error)) []*unstructured.Unstructured {
	t.Helper()
	objs, err := render()
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// byKindName normalizes objects for comparison, keyed by kind/name: through JSON (so numbers compare alike),
// without Helm's bookkeeping labels, with config.yaml parsed.
func byKindName(t *testing.T, objs []*unstructured.Unstructured) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, o := range objs {
		b, err := json.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		meta := m["metadata"].(map[string]any)
		if labels, ok := meta["labels"].(map[string]any); ok {
			for _, l := range helmLabels {
				delete(labels, l)
			}
		}
		if data, ok := m["data"].(map[string]any); ok && o.GetKind() == "ConfigMap" {
			if cfg, ok := data["config.yaml"].(string); ok {
				var parsed any
				if err := yaml.Unmarshal([]byte(cfg), &parsed); err != nil {
					t.Fatalf("%s: config.yaml: %v", o.GetName(), err)
				}
				data["config.yaml"] = parsed
			}
		}
		key := o.GetKind() + "/" + o.GetName()
		if _, dup := out[key]; dup {
			t.Fatalf("%s rendered twice", key)
		}
		out[key] = m
	}
	return out
}
