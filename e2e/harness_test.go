package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
	"github.com/sparkplace/sparkplace/placement"
)

// TestPlainPodsAreUntouched checks the harness itself (a pod lands where its own selector says, on a Ready
// kwok node) and that the webhook leaves pods without Spark labels alone, with or without a selector.
func TestPlainPodsAreUntouched(t *testing.T) {
	ns := newNamespace(t, nil)
	ctx := context.Background()
	tests := map[string]struct {
		nodeSelector map[string]string
		tolerations  []corev1.Toleration
		wantGroups   []string
	}{
		"plain pod lands on an untainted system node": {
			wantGroups: []string{framework.GroupSystem},
		},
		"pod selecting spot capacity itself lands there": {
			nodeSelector: map[string]string{framework.LabelKarpenterCapacityType: "spot", framework.LabelZone: "us-east-1b"},
			tolerations: []corev1.Toleration{
				{Key: "spot", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
				{Key: framework.LabelNodeRole, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
			},
			// Both spot groups match the selector and carry the same taints.
			wantGroups: []string{framework.GroupSpot, framework.GroupSpotNVMe},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "plain-", Namespace: ns, Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{
					NodeSelector: tc.nodeSelector,
					Tolerations:  tc.tolerations,
					Containers:   []corev1.Container{{Name: "web", Image: "nginx:1.27"}},
				},
			}
			created, err := cp.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if _, ok := created.Annotations[placement.AnnotationKey]; ok {
				t.Errorf("pod without Spark labels got a placement annotation: %v", created.Annotations)
			}
			if diff := cmp.Diff(tc.nodeSelector, created.Spec.NodeSelector); diff != "" || created.Spec.Affinity != nil ||
				len(created.Spec.InitContainers) > 0 {
				t.Errorf("pod without Spark labels changed: nodeSelector (-sent +admitted):\n%s affinity %+v, init containers %v",
					diff, created.Spec.Affinity, created.Spec.InitContainers)
			}
			got, err := sparksim.WaitForPod(ctx, cp.Client, ns, created.Name, 3*time.Minute, sparksim.PodRunning)
			if err != nil {
				t.Fatal(err)
			}
			node := getNode(t, got.Spec.NodeName)
			if g := nodeGroup(node); !slices.Contains(tc.wantGroups, g) {
				t.Errorf("pod on node %s of group %q, want one of %q", node.Name, g, tc.wantGroups)
			}
		})
	}
}
