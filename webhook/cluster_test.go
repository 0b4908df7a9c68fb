package webhook

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/policies"
)

func TestClusterStateDriver(t *testing.T) {
	const app = "spark-9f2c4e6a8b0d4f1e3a5c7e9b1d3f5a7c"
	driver := func(name, node string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "spark-jobs", Labels: map[string]string{LabelAppID: app, LabelRole: RoleDriver}},
			Spec:       corev1.PodSpec{NodeName: node},
		}
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-42-17.ec2.internal", Labels: map[string]string{ZoneLabel: "us-east-1b"}}}
	cases := map[string]struct {
		objects  []client.Object
		executor func(*corev1.Pod)
		want     policies.Driver
	}{
		"by ownerReference, with the zone of its node": {
			objects: []client.Object{driver("pi-5c0f4a93b1d2e7f8-driver", node.Name), node},
			want:    policies.Driver{Found: true, Name: "pi-5c0f4a93b1d2e7f8-driver", NodeName: node.Name, Zone: "us-east-1b"},
		},
		"by spark-app-selector when the owner is not known": {
			objects: []client.Object{driver("renamed-driver", node.Name), node},
			want:    policies.Driver{Found: true, Name: "renamed-driver", NodeName: node.Name, Zone: "us-east-1b"},
		},
		"by spark-app-selector when the executor has no owner": {
			objects:  []client.Object{driver("pi-5c0f4a93b1d2e7f8-driver", node.Name), node},
			executor: func(p *corev1.Pod) { p.OwnerReferences = nil },
			want:     policies.Driver{Found: true, Name: "pi-5c0f4a93b1d2e7f8-driver", NodeName: node.Name, Zone: "us-east-1b"},
		},
		"driver not yet scheduled": {
			objects: []client.Object{driver("pi-5c0f4a93b1d2e7f8-driver", "")},
			want:    policies.Driver{Found: true, Name: "pi-5c0f4a93b1d2e7f8-driver"},
		},
		"driver's node not known": {
			objects: []client.Object{driver("pi-5c0f4a93b1d2e7f8-driver", node.Name)},
			want:    policies.Driver{Found: true, Name: "pi-5c0f4a93b1d2e7f8-driver", NodeName: node.Name},
		},
		"driver of another application is not taken": {
			objects: []client.Object{func() *corev1.Pod {
				p := driver("other-driver", node.Name)
				p.Labels[LabelAppID] = "spark-00000000000000000000000000000000"
				return p
			}(), node},
			want: policies.Driver{},
		},
		"no driver at all": {want: policies.Driver{}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			executor := readFixture(t, "spark-3.5-executor")
			if tc.executor != nil {
				tc.executor(executor)
			}
			state := ClusterState{Reader: newObjectsReader(tc.objects)}
			got, err := state.Driver(context.Background(), "spark-jobs", executor)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("driver (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClusterStateNamespace(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "analytics", Labels: map[string]string{"sparkplace.io/profile": "nvme"}}}
	state := ClusterState{Reader: newObjectsReader([]client.Object{ns})}
	got, err := state.Namespace(context.Background(), "analytics")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(policies.Namespace{Name: "analytics", Labels: ns.Labels}, got); diff != "" {
		t.Errorf("namespace (-want +got):\n%s", diff)
	}
	got, err = state.Namespace(context.Background(), "unknown")
	if err != nil || got.Name != "unknown" || got.Labels != nil {
		t.Errorf("unknown namespace = %+v, %v; want its name and no labels", got, err)
	}
}
