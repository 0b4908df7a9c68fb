package webhook

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/sparkplace/sparkplace/policies"
)

// TestExecutorsShareOneInput: the policy input, and so the cached decision, is the same for every executor of
// one application however Spark set its local dirs, and differs where the decision may differ.
func TestExecutorsShareOneInput(t *testing.T) {
	input := func(pod *corev1.Pod) string {
		t.Helper()
		driver := policies.Driver{Found: true, Name: "pi-5c0f4a93b1d2e7f8-driver", Role: RoleDriver, NodeName: "ip-10-0-42-17.ec2.internal", Zone: "us-east-1b"}
		in := buildInput(pod, RoleExecutor, "CREATE", policies.Namespace{Name: pod.Namespace}, driver, policies.Zone{Value: "us-east-1b", Source: "driver"})
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tmpfs := func(p *corev1.Pod) *corev1.Pod {
		for i := range p.Spec.Volumes {
			if p.Spec.Volumes[i].Name == "spark-local-dir-1" {
				p.Spec.Volumes[i].EmptyDir.Medium = corev1.StorageMediumMemory
			}
		}
		return p
	}
	tests := map[string]struct {
		a, b *corev1.Pod
		same bool
	}{
		"client mode: a fresh local dir per executor": {
			a: sparkExecutor(t, clientMode, 0, 2), b: sparkExecutor(t, clientMode, 0, 3), same: true,
		},
		"cluster mode: the driver's local dirs in another order": {
			a: sparkExecutor(t, clusterMode, 0, 2), b: sparkExecutor(t, clusterMode, 0, 3), same: true,
		},
		"another application": {
			a: sparkExecutor(t, clientMode, 0, 2), b: sparkExecutor(t, clientMode, 7, 2), same: false,
		},
		"one local dir or two": {
			a: sparkExecutor(t, clientMode, 0, 2), b: sparkExecutor(t, clusterMode, 0, 2), same: false,
		},
		"a tmpfs local dir": {
			a: sparkExecutor(t, clientMode, 0, 2), b: tmpfs(sparkExecutor(t, clientMode, 0, 3)), same: false,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a, b := input(tc.a), input(tc.b)
			if (a == b) != tc.same {
				t.Errorf("inputs equal: %v, want %v\n%s\n%s", a == b, tc.same, a, b)
			}
		})
	}
}
