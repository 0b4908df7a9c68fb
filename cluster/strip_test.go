package cluster

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestStripNodeKeepsWhatPlacementReads(t *testing.T) {
	in := decoded(eksNode(7))
	out, err := StripNode(in)
	if err != nil {
		t.Fatal(err)
	}
	n := out.(*corev1.Node)
	if diff := cmp.Diff(in.Labels, n.Labels); diff != "" {
		t.Errorf("labels (-in +stripped):\n%s", diff)
	}
	if diff := cmp.Diff(in.Spec.Taints, n.Spec.Taints); diff != "" {
		t.Errorf("taints (-in +stripped):\n%s", diff)
	}
	if !nodeReady(n) || n.Status.Allocatable.Cpu().Cmp(*in.Status.Allocatable.Cpu()) != 0 {
		t.Errorf("readiness or allocatable lost: %+v", n.Status)
	}
	if n.Annotations != nil || n.Status.Images != nil || n.ManagedFields != nil || n.Status.NodeInfo != (corev1.NodeSystemInfo{}) {
		t.Errorf("kept what placement never reads: %+v", n)
	}
}

// Nodes decoded one by one each bring their own copy of every string; the stripped ones share them.
func TestStripNodeSharesStrings(t *testing.T) {
	a, _ := StripNode(decoded(eksNode(0)))
	b, _ := StripNode(decoded(eksNode(3))) // same zone
	na, nb := a.(*corev1.Node), b.(*corev1.Node)
	for _, key := range []string{"topology.kubernetes.io/zone", "node.kubernetes.io/instance-type", "eks.amazonaws.com/capacityType"} {
		if unsafe.StringData(na.Labels[key]) != unsafe.StringData(nb.Labels[key]) {
			t.Errorf("label %s: each node has its own copy of %q", key, na.Labels[key])
		}
	}
	if unsafe.StringData(na.Spec.Taints[0].Key) != unsafe.StringData(nb.Spec.Taints[0].Key) {
		t.Errorf("taint key %q: each node has its own copy", na.Spec.Taints[0].Key)
	}
}

func TestInternerIsBounded(t *testing.T) {
	in := newInterner(4)
	for i := range 10 {
		in.intern(fmt.Sprintf("hostname-%d", i))
		if len(in.seen) > 4 {
			t.Fatalf("%d strings held, bound 4", len(in.seen))
		}
	}
	s := fmt.Sprintf("us-east-%d", 1)
	if got := in.intern(s); got != s {
		t.Errorf("intern(%q) = %q", s, got)
	}
}
