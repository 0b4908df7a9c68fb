package webhook

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// objectsReader is a read-only client.Reader over a fixed set of Nodes, Pods and Namespaces: the cluster
// state of `policy eval --objects` (and of tests and benchmarks). It answers exactly the reads ClusterState
// makes of the informer cache, with the same semantics: copies out, NotFound errors, label-selected lists.
type objectsReader struct {
	pods       map[client.ObjectKey]*corev1.Pod
	nodes      map[string]*corev1.Node
	namespaces map[string]*corev1.Namespace
}

var _ client.Reader = &objectsReader{}

func newObjectsReader(objs []client.Object) *objectsReader {
	r := &objectsReader{pods: map[client.ObjectKey]*corev1.Pod{}, nodes: map[string]*corev1.Node{}, namespaces: map[string]*corev1.Namespace{}}
	for _, obj := range objs {
		switch o := obj.(type) {
		case *corev1.Pod:
			r.pods[client.ObjectKeyFromObject(o)] = o
		case *corev1.Node:
			r.nodes[o.Name] = o
		case *corev1.Namespace:
			r.namespaces[o.Name] = o
		}
	}
	return r
}

func (r *objectsReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	switch out := obj.(type) {
	case *corev1.Pod:
		pod, ok := r.pods[key]
		if !ok {
			return apierrors.NewNotFound(corev1.Resource("pods"), key.Name)
		}
		pod.DeepCopyInto(out)
		return nil
	case *metav1.PartialObjectMetadata:
		var meta *metav1.ObjectMeta
		switch kind := out.GroupVersionKind().Kind; kind {
		case "Node":
			if node, ok := r.nodes[key.Name]; ok {
				meta = &node.ObjectMeta
			}
		case "Namespace":
			if ns, ok := r.namespaces[key.Name]; ok {
				meta = &ns.ObjectMeta
			}
		default:
			return fmt.Errorf("objects reader: metadata of %s is not supported", kind)
		}
		if meta == nil {
			return apierrors.NewNotFound(schema.GroupResource{Resource: out.GroupVersionKind().Kind}, key.Name)
		}
		meta.DeepCopyInto(&out.ObjectMeta)
		return nil
	}
	return fmt.Errorf("objects reader: %T is not supported", obj)
}

func (r *objectsReader) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	out, ok := list.(*corev1.PodList)
	if !ok {
		return fmt.Errorf("objects reader: %T is not supported", list)
	}
	o := (&client.ListOptions{}).ApplyOptions(opts)
	out.Items = out.Items[:0]
	for key, pod := range r.pods {
		if o.Namespace != "" && key.Namespace != o.Namespace {
			continue
		}
		if o.LabelSelector != nil && !o.LabelSelector.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out.Items = append(out.Items, *pod.DeepCopy())
	}
	return nil
}

// EmptyCluster is the cluster state of `policy eval` without --objects: no drivers, nodes or namespaces.
func EmptyCluster() client.Reader { return newObjectsReader(nil) }
