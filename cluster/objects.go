package cluster

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// FromObjects builds the state `policy eval --objects` evaluates against: the objects go through the same
// filter (Spark pods only) and transforms as the webhook's informers, so eval and the webhook see the same
// cluster. Pods that are not Spark pods are what the webhook would read from the API server: the owners an
// executor's ownerReference may name.
func FromObjects(pods []*corev1.Pod, nodes []*corev1.Node, namespaces []*corev1.Namespace) *State {
	others := objectPods{}
	s := NewState(others)
	for _, p := range pods {
		if !IsSparkPod(p) {
			others[types.NamespacedName{Namespace: p.Namespace, Name: p.Name}] = p
			continue
		}
		stripped, _ := StripPod(p) // a *corev1.Pod in, a *corev1.Pod out
		s.SetPod(stripped.(*corev1.Pod))
	}
	for _, n := range nodes {
		s.SetNode(n)
	}
	for _, ns := range namespaces {
		s.SetNamespace(ns.Name, ns.Labels)
	}
	return s
}

// objectPods answers owner reads from the objects of a file.
type objectPods map[types.NamespacedName]*corev1.Pod

func (o objectPods) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	return o[types.NamespacedName{Namespace: namespace, Name: name}], nil
}
