package cluster

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/zonecapacity"
)

func TestStripNodeKeepsWhatPlacementReads(t *testing.T) {
	in := decoded(eksNode(7))
	in.Spec.Unschedulable = true
	out, err := StripNode(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &Node{
		TypeMeta:   metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: in.Name, UID: in.UID, ResourceVersion: in.ResourceVersion, Labels: in.Labels},
		Taints:     in.Spec.Taints, Unschedulable: true, Ready: true,
		Allocatable: zonecapacity.Resources{MilliCPU: 16000, Memory: 63870448 << 10},
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("stripped node (-want +got):\n%s", diff)
	}
	if again, _ := StripNode(out); again != out {
		t.Error("a stripped node is not left as it is")
	}
	if cp := out.(*Node).DeepCopyObject(); !cmp.Equal(cp, out) {
		t.Errorf("deep copy differs: %s", cmp.Diff(out, cp))
	}
}

// Nodes decoded one by one each bring their own copy of every string; the stripped ones share them.
func TestStripNodeSharesStrings(t *testing.T) {
	a, _ := StripNode(decoded(eksNode(0)))
	b, _ := StripNode(decoded(eksNode(3))) // same zone
	na, nb := a.(*Node), b.(*Node)
	for _, key := range []string{"topology.kubernetes.io/zone", "node.kubernetes.io/instance-type", "eks.amazonaws.com/capacityType"} {
		if unsafe.StringData(na.Labels[key]) != unsafe.StringData(nb.Labels[key]) {
			t.Errorf("label %s: each node has its own copy of %q", key, na.Labels[key])
		}
	}
	if unsafe.StringData(na.Taints[0].Key) != unsafe.StringData(nb.Taints[0].Key) {
		t.Errorf("taint key %q: each node has its own copy", na.Taints[0].Key)
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
