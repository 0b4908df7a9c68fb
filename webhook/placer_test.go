package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sparkplace/sparkplace/cluster"
	"github.com/sparkplace/sparkplace/policies"
)

// TestApplicationsShareExecutorDecisions: the executors of different applications that run in one zone, of
// one shape, share one cached decision: the first executor of the first application is the only cache miss,
// in cluster mode (drivers bound to different nodes of the zone, or not yet bound) and in client mode (no
// driver pod: the first executors, and the later ones that follow their application's bound executors).
// Each executor is still placed with its own application: the terms the decision selects by matchLabelKeys
// name its own app id, as they did when the decision named it.
func TestApplicationsShareExecutorDecisions(t *testing.T) {
	const zone = "us-east-1a"
	apps := []int{11, 12}
	appID := func(app int) string { return fmt.Sprintf("spark-%032x", app) }
	driver := func(app int, node string) *corev1.Pod {
		d := sparkDriver(t, app)
		d.UID = types.UID(fmt.Sprintf("driver-uid-%d", app))
		d.Spec.NodeName = node
		return d
	}
	// executor is executor id of app as Spark names it, the owner reference left to the case.
	executor := func(mode, app, id int) *corev1.Pod {
		p := sparkExecutor(t, mode, app, id)
		p.Name = fmt.Sprintf("app-%d-0123456789abcdef-exec-%d", app, id)
		p.Spec.Hostname = p.Name
		return p
	}
	ownedBy := func(exec, d *corev1.Pod) *corev1.Pod {
		exec.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: d.Name, UID: d.UID, Controller: new(true)}}
		return exec
	}
	// The nodes of the application's drivers (cluster mode) or of a bound executor (client mode).
	nodes := map[int]string{11: "od-" + zone, 12: "spot-" + zone + "-1"}
	cases := map[string]struct {
		// setup adds the cluster state of application app; pod makes its executor id.
		setup func(s *cluster.State, app int)
		pod   func(app, id int) *corev1.Pod
		// want is what the placed executor carries: the zone requirement, or the pod affinity term's selector.
		wantZone     string
		wantAffinity map[string]string
	}{
		"cluster mode, drivers on two nodes of the zone": {
			setup: func(s *cluster.State, app int) { s.SetPod(driver(app, nodes[app])) },
			pod: func(app, id int) *corev1.Pod {
				return ownedBy(executor(clusterMode, app, id), driver(app, nodes[app]))
			},
			wantZone: zone,
		},
		"cluster mode, drivers not scheduled yet": {
			setup: func(s *cluster.State, app int) { s.SetPod(driver(app, "")) },
			pod: func(app, id int) *corev1.Pod {
				return ownedBy(executor(clusterMode, app, id), driver(app, ""))
			},
			wantAffinity: map[string]string{LabelRole: RoleDriver},
		},
		"client mode, the first executors": {
			setup: func(*cluster.State, int) {},
			pod: func(app, id int) *corev1.Pod {
				p := executor(clientMode, app, id)
				p.OwnerReferences = nil
				return p
			},
			wantAffinity: map[string]string{LabelRole: RoleExecutor},
		},
		"client mode, executors after the first is bound": {
			setup: func(s *cluster.State, app int) {
				bound := executor(clientMode, app, 1)
				bound.OwnerReferences, bound.Spec.NodeName = nil, nodes[app]
				s.SetPod(bound)
			},
			pod: func(app, id int) *corev1.Pod {
				p := executor(clientMode, app, id)
				p.OwnerReferences = nil
				return p
			},
			wantZone: zone,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			state := zoneFleet(map[string]int{zone: 2, "us-east-1b": 2, "us-east-1c": 2})
			for _, app := range apps {
				tc.setup(state, app)
			}
			p := newZonePlacer(t, state, "")
			misses := func() uint64 { return p.Engine.(*policies.Engine).CacheStats().Misses }
			before := misses()
			for _, app := range apps {
				for id := 2; id <= 4; id++ {
					pod := tc.pod(app, id)
					if _, err := p.Place(context.Background(), pod, pod.Namespace, "CREATE"); err != nil {
						t.Fatal(err)
					}
					checkOwnApplication(t, pod, appID(app), tc.wantZone, tc.wantAffinity)
				}
			}
			if got := misses() - before; got != 1 {
				t.Errorf("%d decision-cache misses for the executors of %d applications, want 1 (the first executor's)", got, len(apps))
			}
		})
	}
}

// checkOwnApplication checks that pod, an executor of application app, was pinned (to zone, or by a pod
// affinity term selecting its own application's pods with the labels of wantAffinity) and spread over the
// spot pools among its own application's executors.
func checkOwnApplication(t *testing.T, pod *corev1.Pod, app, zone string, wantAffinity map[string]string) {
	t.Helper()
	aff := pod.Spec.Affinity
	if zone != "" {
		want := &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpIn, Values: []string{zone}},
		}}}}
		if aff == nil || aff.NodeAffinity == nil || !cmp.Equal(want, aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution) {
			t.Errorf("%s: affinity %+v, want zone %s required", pod.Name, aff, zone)
		}
	}
	if wantAffinity != nil {
		want := []corev1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelAppID: app, LabelRole: wantAffinity[LabelRole]}},
			TopologyKey:   corev1.LabelTopologyZone,
		}}
		if aff == nil || aff.PodAffinity == nil {
			t.Errorf("%s: no pod affinity, want %+v", pod.Name, want)
		} else if diff := cmp.Diff(want, aff.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution); diff != "" {
			t.Errorf("%s: pod affinity (-want +got):\n%s", pod.Name, diff)
		}
	}
	wantSpread := []corev1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: corev1.LabelInstanceTypeStable, WhenUnsatisfiable: corev1.ScheduleAnyway,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelAppID: app, LabelRole: RoleExecutor}},
	}}
	if diff := cmp.Diff(wantSpread, pod.Spec.TopologySpreadConstraints); diff != "" {
		t.Errorf("%s: spread (-want +got):\n%s", pod.Name, diff)
	}
}

// TestPlacingLeavesCachedDecisionsAlone: Place works on the decision the cache holds, not a copy
// (Outcome.Decision), so nothing it or the handler does may change it. Every fixture under every profile (and
// the nvme fixtures with a sidecar, a tmpfs, a PVC and a user's hostPath local dir) is admitted through the
// handler and admitted again patched (a reinvocation); then each decision the cache holds must still be what
// a fresh evaluation of its input gives.
func TestPlacingLeavesCachedDecisionsAlone(t *testing.T) {
	ctx := context.Background()
	placer := newTestPlacer(t, policies.Options{})
	h := &Handler{Placer: placer, Metrics: NewMetrics(nil), OnPolicyError: PolicyErrorDeny}
	fresh := newTestPlacer(t, policies.Options{CacheSize: -1}).Engine.Current()
	type placed struct {
		name string
		out  *Outcome
	}
	var all []placed
	pods := map[string]*corev1.Pod{}
	for _, fixture := range fixtures {
		for _, profile := range profiles {
			pods[fixture+"/"+profileName(profile)] = withProfile(readFixture(t, fixture), profile)
		}
	}
	for _, fixture := range nvmeFixtures {
		pods[fixture+"/nvme"] = withProfile(readFixture(t, fixture), "nvme")
	}
	for name, pod := range pods {
		pod.Namespace = "spark-jobs" // as admit sends it
		raw, err := json.Marshal(pod)
		if err != nil {
			t.Fatal(err)
		}
		patched, _ := admit(t, h, raw)
		admit(t, h, patched)
		out, err := placer.Place(ctx, pod.DeepCopy(), pod.Namespace, "CREATE")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		all = append(all, placed{name, out})
	}
	for _, p := range all {
		want, err := fresh.Decide(ctx, p.out.Input)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, p.out.Decision, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
			t.Errorf("%s: the cached decision was changed by placing pods (-fresh +cached):\n%s", p.name, diff)
		}
	}
}
