package cluster

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/sparkplace/sparkplace/zonecapacity"
)

// Capacity is the index of free spot capacity per zone that steers drivers. The state feeds it every Spark
// pod and node it holds, and the DaemonSets (SetDaemonSet), so the webhook and `policy eval --objects` count
// the same.
func (s *State) Capacity() *zonecapacity.Index { return s.capacity }

// SetDaemonSet records a DaemonSet: its pods' requests count on the nodes it runs on. It strips ds itself
// (StripDaemonSet; a stripped one is left as it is), so `policy eval --objects` counts what the informer does.
func (s *State) SetDaemonSet(ds *appsv1.DaemonSet) {
	stripped, _ := StripDaemonSet(ds) // a *appsv1.DaemonSet in, one out
	s.capacity.UpsertDaemonSet(stripped.(*appsv1.DaemonSet))
}

// DeleteDaemonSet forgets a DaemonSet.
func (s *State) DeleteDaemonSet(namespace, name string) { s.capacity.DeleteDaemonSet(namespace, name) }

// DaemonSetHandler keeps the capacity index in step with an informer whose transform is StripDaemonSet.
func (s *State) DaemonSetHandler() toolscache.ResourceEventHandler {
	return handler(s.SetDaemonSet, func(ds *appsv1.DaemonSet) { s.DeleteDaemonSet(ds.Namespace, ds.Name) })
}

// StripDaemonSet is the cache transform for DaemonSets: identity, and of the pod template only what decides
// where its pods run and what they request (node selector, tolerations, container requests, overhead).
func StripDaemonSet(obj any) (any, error) {
	ds, ok := obj.(*appsv1.DaemonSet)
	if !ok {
		return obj, nil
	}
	tmpl := ds.Spec.Template.Spec
	out := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: ds.Name, Namespace: ds.Namespace, UID: ds.UID, ResourceVersion: ds.ResourceVersion}}
	out.Spec.Template.Spec = corev1.PodSpec{
		NodeSelector: tmpl.NodeSelector, Tolerations: tmpl.Tolerations, Overhead: tmpl.Overhead,
		Containers: requestsOnly(tmpl.Containers), InitContainers: requestsOnly(tmpl.InitContainers),
	}
	return out, nil
}
