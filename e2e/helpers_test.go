package e2e

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
)

// getNode reads a node or fails the test.
func getNode(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n, err := cp.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node %q: %v", name, err)
	}
	return n
}

// nodeGroup is the fleet group a node belongs to (its EKS node group, or "fargate").
func nodeGroup(n *corev1.Node) string {
	if n.Labels[framework.LabelComputeType] == "fargate" {
		return framework.GroupFargate
	}
	return n.Labels[framework.LabelEKSNodeGroup]
}
