package webhook

import (
	"context"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestServedNamespaces(t *testing.T) {
	namespaces := map[string]map[string]string{
		"spark-jobs": {"kubernetes.io/metadata.name": "spark-jobs", "team": "analytics"},
		"other-team": {"kubernetes.io/metadata.name": "other-team", "sparkplace.io/exclude": "true"},
		"ml":         {"kubernetes.io/metadata.name": "ml"},
	}
	selector := func(s metav1.LabelSelector) *metav1.LabelSelector { return &s }
	cases := map[string]struct {
		selectors []*metav1.LabelSelector // one webhook each
		want      map[string]bool
	}{
		"an opt-out label, as the manifests install it": {
			selectors: []*metav1.LabelSelector{selector(metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "sparkplace.io/exclude", Operator: metav1.LabelSelectorOpDoesNotExist}}})},
			want:      map[string]bool{"spark-jobs": true, "other-team": false, "ml": true},
		},
		"one namespace by name": {
			selectors: []*metav1.LabelSelector{selector(metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "ml"}})},
			want:      map[string]bool{"spark-jobs": false, "other-team": false, "ml": true},
		},
		"the union of the configuration's webhooks": {
			selectors: []*metav1.LabelSelector{
				selector(metav1.LabelSelector{MatchLabels: map[string]string{"team": "analytics"}}),
				selector(metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "ml"}}),
			},
			want: map[string]bool{"spark-jobs": true, "other-team": false, "ml": true},
		},
		"no selector: every namespace": {
			selectors: []*metav1.LabelSelector{nil},
			want:      map[string]bool{"spark-jobs": true, "other-team": true, "ml": true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			config := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "sparkplace"}}
			for i, s := range tc.selectors {
				config.Webhooks = append(config.Webhooks, admissionregistrationv1.MutatingWebhook{Name: string(rune('a'+i)) + ".sparkplace.io", NamespaceSelector: s})
			}
			reader := fake.NewClientBuilder().WithScheme(admissionScheme(t)).WithObjects(config).Build()
			inScope, err := servedNamespaces(reader, "sparkplace", func(ns string) map[string]string { return namespaces[ns] })(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for ns, want := range tc.want {
				if got := inScope(ns); got != want {
					t.Errorf("namespace %s served: %v, want %v", ns, got, want)
				}
			}
		})
	}
	t.Run("a configuration that cannot be read is an error, not every namespace", func(t *testing.T) {
		reader := fake.NewClientBuilder().WithScheme(admissionScheme(t)).Build()
		if _, err := servedNamespaces(reader, "sparkplace", func(string) map[string]string { return nil })(context.Background()); err == nil {
			t.Error("no error for a missing MutatingWebhookConfiguration")
		}
	})
}

func admissionScheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	if err := admissionregistrationv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}
