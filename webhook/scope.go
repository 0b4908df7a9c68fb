package webhook

import (
	"context"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// servedNamespaces returns the relaxer's scope: the namespaces the MutatingWebhookConfiguration named
// configName sends Spark pods to this webhook from (the union of its webhooks' namespaceSelectors), matched
// against namespace labels as the cache holds them. It is read from the API server at each sweep, so a
// changed selector takes effect at the next one. Another sparkplace install (another configuration) on the
// cluster sweeps its own namespaces.
func servedNamespaces(reader client.Reader, configName string, namespaceLabels func(string) map[string]string) func(context.Context) (func(string) bool, error) {
	return func(ctx context.Context) (func(string) bool, error) {
		config := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := reader.Get(ctx, client.ObjectKey{Name: configName}, config); err != nil {
			return nil, fmt.Errorf("reading MutatingWebhookConfiguration %s: %w", configName, err)
		}
		selectors := make([]labels.Selector, 0, len(config.Webhooks))
		for _, w := range config.Webhooks {
			if w.NamespaceSelector == nil { // the API server defaults it to {}: every namespace
				selectors = append(selectors, labels.Everything())
				continue
			}
			s, err := metav1.LabelSelectorAsSelector(w.NamespaceSelector)
			if err != nil {
				return nil, fmt.Errorf("MutatingWebhookConfiguration %s, webhook %s: namespaceSelector: %w", configName, w.Name, err)
			}
			selectors = append(selectors, s)
		}
		return func(namespace string) bool {
			set := labels.Set(namespaceLabels(namespace))
			for _, s := range selectors {
				if s.Matches(set) {
					return true
				}
			}
			return false
		}, nil
	}
}
