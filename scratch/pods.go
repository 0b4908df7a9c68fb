package scratch

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// ClientPods reads pods through client-go.
type ClientPods struct {
	Client kubernetes.Interface
}

var _ Pods = ClientPods{}

// OnNode lists the node's pods with a field selector on spec.nodeName, from the API server's watch cache
// (resourceVersion 0): cheap for every node every interval, and Get checks what it misses.
func (c ClientPods) OnNode(ctx context.Context, node string) ([]corev1.Pod, error) {
	list, err := c.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("spec.nodeName", node).String(),
		ResourceVersion: "0",
	})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// Get reads the pod from the API server (a quorum read); nil when it does not exist.
func (c ClientPods) Get(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	pod, err := c.Client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return pod, err
}
