package zonecapacity

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const zoneKey = "topology.kubernetes.io/zone"

var (
	spotTaint  = corev1.Taint{Key: "spot", Value: "true", Effect: corev1.TaintEffectNoSchedule}
	sparkTaint = corev1.Taint{Key: "noderole", Value: "spark", Effect: corev1.TaintEffectNoSchedule}
	// spotPool is what the default policies give a spot executor.
	spotPool = Pool{
		ZoneKey:      zoneKey,
		NodeSelector: map[string]string{"eks.amazonaws.com/capacityType": "SPOT", "noderole": "spark"},
		Tolerations: []corev1.Toleration{
			{Key: "spot", Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule},
			{Key: "noderole", Operator: corev1.TolerationOpEqual, Value: "spark", Effect: corev1.TaintEffectNoSchedule},
		},
	}
	oneCPU = Resources{MilliCPU: 1000, Memory: 4 << 30}
)

// nodeBuilder makes EKS-like nodes: a 16-CPU, 128-GiB spot Spark node by default.
type nodeBuilder struct{ n *corev1.Node }

func spotNode(name, zone, instanceType string) *nodeBuilder {
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("128Gi"), corev1.ResourcePods: resource.MustParse("234")}
	return &nodeBuilder{&corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			zoneKey: zone, "node.kubernetes.io/instance-type": instanceType,
			"eks.amazonaws.com/capacityType": "SPOT", "noderole": "spark",
		}},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{sparkTaint, spotTaint}},
		Status: corev1.NodeStatus{
			Allocatable: res, Capacity: res,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}}
}

func (b *nodeBuilder) onDemand() *nodeBuilder {
	b.n.Labels["eks.amazonaws.com/capacityType"] = "ON_DEMAND"
	b.n.Spec.Taints = []corev1.Taint{sparkTaint}
	return b
}
func (b *nodeBuilder) cordoned() *nodeBuilder { b.n.Spec.Unschedulable = true; return b }
func (b *nodeBuilder) notReady() *nodeBuilder {
	b.n.Status.Conditions[0].Status = corev1.ConditionFalse
	return b
}
func (b *nodeBuilder) taint(t corev1.Taint) *nodeBuilder {
	b.n.Spec.Taints = append(b.n.Spec.Taints, t)
	return b
}
func (b *nodeBuilder) Obj() *corev1.Node { return b.n }

// executor is a Spark executor pod of app requesting cpu/memory, bound to node ("" for unbound).
func executor(app string, id int, node string, cpu, memory string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "spark-jobs", Name: fmt.Sprintf("%s-exec-%d", app, id), Labels: map[string]string{
			"spark-role": "executor", "spark-app-selector": app, "spark-exec-id": fmt.Sprint(id),
		}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "spark-kubernetes-executor",
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(memory)},
			},
		}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func driver(app, node string) *corev1.Pod {
	p := executor(app, 0, node, "1", "1408Mi")
	p.Name = app + "-driver"
	p.Labels = map[string]string{"spark-role": "driver", "spark-app-selector": app}
	return p
}

// fleet is 2 / 1 / 6 spot nodes over three zones and three instance types, plus an on-demand node per zone.
func fleet(x *Index) {
	types := []string{"m5.4xlarge", "m5a.4xlarge", "m6i.4xlarge"}
	for zone, count := range map[string]int{"us-east-1a": 2, "us-east-1b": 1, "us-east-1c": 6} {
		for i := range count {
			x.UpsertNode(spotNode(fmt.Sprintf("spot-%s-%d", zone, i), zone, types[i%3]).Obj())
		}
		x.UpsertNode(spotNode("od-"+zone, zone, "m5.2xlarge").onDemand().Obj())
	}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// spot is spotPool's ID: newIndex registers it first, before any event, so its sums are built by events alone.
const spot PoolID = 0

func newIndex() (*Index, *fakeClock) {
	c := &fakeClock{t: time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC)}
	x := New(Options{Now: c.now})
	if id := x.Pool(spotPool); id != spot {
		panic(fmt.Sprintf("first pool has ID %d", id))
	}
	return x, c
}

func request(app string, executors int) Request {
	return Request{App: "spark-jobs/" + app, Pool: spot, Executors: executors, PerExecutor: oneCPU, TTL: time.Minute}
}

func freeCPU(c Choice) map[string]int64 {
	out := map[string]int64{}
	for _, z := range c.Zones {
		out[z.Zone] = z.Free.MilliCPU
	}
	return out
}

func TestChooseByCapacity(t *testing.T) {
	cases := map[string]struct {
		events     func(x *Index)
		req        Request
		wantZone   string
		wantReason string
		wantFree   map[string]int64
	}{
		"the zone with the most free spot capacity": {
			events:     fleet,
			req:        request("app-1", 8),
			wantZone:   "us-east-1c",
			wantReason: ReasonCapacity,
			wantFree:   map[string]int64{"us-east-1a": 32000, "us-east-1b": 16000, "us-east-1c": 96000},
		},
		"running Spark pods and DaemonSets take capacity; finished pods do not": {
			events: func(x *Index) {
				fleet(x)
				for i := range 6 {
					// 15 of every 16 CPU of us-east-1c taken: 6 left there, 16 and 32 elsewhere.
					x.UpsertPod(executor("busy", i, fmt.Sprintf("spot-us-east-1c-%d", i), "14", "8Gi"))
				}
				done := executor("done", 1, "spot-us-east-1a-0", "16", "8Gi")
				done.Status.Phase = corev1.PodSucceeded
				x.UpsertPod(done)
				x.UpsertDaemonSet(newDaemonSet("node-agent", "1", spotPool.Tolerations))
				x.UpsertDaemonSet(newDaemonSet("untolerating", "4", nil))
			},
			req:        request("app-1", 8),
			wantZone:   "us-east-1a",
			wantReason: ReasonCapacity,
			wantFree:   map[string]int64{"us-east-1a": 30000, "us-east-1b": 15000, "us-east-1c": 6000},
		},
		"cordoned, not ready, untolerated and non-spot nodes do not count": {
			events: func(x *Index) {
				x.UpsertNode(spotNode("a-1", "us-east-1a", "m5.4xlarge").Obj())
				x.UpsertNode(spotNode("b-1", "us-east-1b", "m5.4xlarge").cordoned().Obj())
				x.UpsertNode(spotNode("b-2", "us-east-1b", "m5.4xlarge").notReady().Obj())
				x.UpsertNode(spotNode("b-3", "us-east-1b", "m5.4xlarge").taint(corev1.Taint{Key: "gpu", Effect: corev1.TaintEffectNoSchedule}).Obj())
				x.UpsertNode(spotNode("b-4", "us-east-1b", "m5.4xlarge").onDemand().Obj())
				x.UpsertNode(spotNode("b-5", "us-east-1b", "m5.4xlarge").taint(corev1.Taint{Key: "soft", Effect: corev1.TaintEffectPreferNoSchedule}).Obj())
			},
			req:        request("app-1", 8),
			wantZone:   "us-east-1a",
			wantReason: ReasonCapacity,
			// b-5's taint only prefers no scheduling, so b-5 counts; a and b tie and the first turn takes a.
			wantFree: map[string]int64{"us-east-1a": 16000, "us-east-1b": 16000},
		},
		"a job that fits nowhere whole goes where most of it fits": {
			events:     fleet,
			req:        Request{App: "spark-jobs/big", Pool: spot, Executors: 40, PerExecutor: Resources{MilliCPU: 4000, Memory: 8 << 30}, TTL: time.Minute},
			wantZone:   "us-east-1c",
			wantReason: ReasonCapacity,
			wantFree:   map[string]int64{"us-east-1a": 32000, "us-east-1b": 16000, "us-east-1c": 96000},
		},
		"unbound executors pinned to a zone are counted there": {
			events: func(x *Index) {
				fleet(x)
				for i := range 20 {
					p := executor("waiting", i, "", "4", "8Gi")
					p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
						NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: zoneKey, Operator: corev1.NodeSelectorOpIn, Values: []string{"us-east-1c"}}}}},
					}}}
					x.UpsertPod(p)
				}
			},
			req:        request("app-1", 8),
			wantZone:   "us-east-1a",
			wantReason: ReasonCapacity,
			wantFree:   map[string]int64{"us-east-1a": 32000, "us-east-1b": 16000, "us-east-1c": 16000},
		},
		"a deleted node and its deleted pods leave no trace": {
			events: func(x *Index) {
				fleet(x)
				x.UpsertPod(executor("gone", 1, "spot-us-east-1c-0", "8", "8Gi"))
				for i := range 6 {
					x.DeleteNode(fmt.Sprintf("spot-us-east-1c-%d", i))
				}
				x.DeletePod("spark-jobs", "gone-exec-1")
			},
			req:        request("app-1", 8),
			wantZone:   "us-east-1a",
			wantReason: ReasonCapacity,
			wantFree:   map[string]int64{"us-east-1a": 32000, "us-east-1b": 16000},
		},
		"pods seen before their node count once it comes": {
			events: func(x *Index) {
				x.UpsertPod(executor("early", 1, "a-1", "12", "8Gi"))
				x.UpsertNode(spotNode("a-1", "us-east-1a", "m5.4xlarge").Obj())
				x.UpsertNode(spotNode("b-1", "us-east-1b", "m5.4xlarge").Obj())
			},
			req:        request("app-1", 8),
			wantZone:   "us-east-1b",
			wantReason: ReasonCapacity,
			wantFree:   map[string]int64{"us-east-1a": 4000, "us-east-1b": 16000},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			x, _ := newIndex()
			tc.events(x)
			got := x.Choose(tc.req)
			if got.Zone != tc.wantZone || got.Reason != tc.wantReason {
				t.Errorf("Choose() = %s (%s), want %s (%s); zones %+v", got.Zone, got.Reason, tc.wantZone, tc.wantReason, got.Zones)
			}
			if diff := cmp.Diff(tc.wantFree, freeCPU(got)); diff != "" {
				t.Errorf("free CPU by zone (-want +got):\n%s", diff)
			}
		})
	}
}

func newDaemonSet(name, cpu string, tolerations []corev1.Toleration) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name}}
	ds.Spec.Template.Spec = corev1.PodSpec{
		Tolerations: tolerations,
		Containers: []corev1.Container{{Name: name, Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("128Mi"),
		}}}},
	}
	return ds
}

// A burst of drivers that arrive before any executor exists lands where the jobs fit: each driver's size hint
// counts against its zone at once, so 18 jobs of 8 one-CPU executors fill 32/16/96 free CPUs exactly.
func TestBurstSpreadsByCapacity(t *testing.T) {
	x, _ := newIndex()
	fleet(x)
	got := map[string]int{}
	for i := range 18 {
		c := x.Choose(request(fmt.Sprintf("app-%d", i), 8))
		if c.Reason != ReasonCapacity {
			t.Fatalf("driver %d: reason %s, want capacity", i, c.Reason)
		}
		got[c.Zone]++
	}
	want := map[string]int{"us-east-1a": 4, "us-east-1b": 2, "us-east-1c": 12}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("drivers per zone (-want +got):\n%s", diff)
	}
	// The 19th job fits nowhere: every zone is reserved full, so the choice falls back to round robin.
	if c := x.Choose(request("app-18", 8)); c.Reason != ReasonRoundRobin {
		t.Errorf("19th driver: reason %s, want round-robin; zones %+v", c.Reason, c.Zones)
	}
}

func TestReservationLifecycle(t *testing.T) {
	x, clock := newIndex()
	fleet(x)
	first := x.Choose(request("app-1", 8))
	if first.Zone != "us-east-1c" {
		t.Fatalf("first choice %s, want us-east-1c", first.Zone)
	}
	// A reinvoked admission of the same driver gets the same answer and reserves nothing more.
	if again := x.Choose(request("app-1", 8)); again.Zone != first.Zone || x.Stats().Reservations != 1 {
		t.Errorf("second Choose for app-1 = %s with %d reservations, want %s and 1", again.Zone, x.Stats().Reservations, first.Zone)
	}
	free := func() int64 { return freeCPU(x.Choose(Request{Pool: spot, PerExecutor: oneCPU}))["us-east-1c"] }
	if got := free(); got != 88000 {
		t.Errorf("free in us-east-1c with the reservation = %d, want 88000", got)
	}
	// Its executors appear, pending then bound: they take over from the hint, nothing is counted twice.
	playSpark(t, x, "app-1", 8)
	if got := free(); got != 88000 {
		t.Errorf("free in us-east-1c with 8 executors running = %d, want 88000", got)
	}
	// The hint is gone once used up; the driver finishing ends the reservation.
	x.DeletePod("spark-jobs", "app-1-driver")
	if n := x.Stats().Reservations; n != 0 {
		t.Errorf("%d reservations after the driver is gone, want 0", n)
	}
	// A reservation whose executors never come expires.
	x.Choose(request("app-2", 8))
	clock.t = clock.t.Add(59 * time.Second)
	if got := free(); got != 80000 {
		t.Errorf("free before expiry = %d, want 80000", got)
	}
	clock.t = clock.t.Add(2 * time.Second)
	if got := free(); got != 88000 {
		t.Errorf("free after expiry = %d, want 88000", got)
	}
	// Forget gives the zone back at once.
	x.Choose(request("app-3", 8))
	x.Forget("spark-jobs/app-3")
	if got := free(); got != 88000 {
		t.Errorf("free after Forget = %d, want 88000", got)
	}
}

// playSpark plays Spark: the driver runs, n executors appear unbound and pinned to
// us-east-1c, then are bound there.
func playSpark(t *testing.T, x *Index, app string, n int) {
	t.Helper()
	x.UpsertPod(driver(app, "od-us-east-1c"))
	for i := 1; i <= n; i++ {
		p := executor(app, i, "", "1", "4Gi")
		p.Spec.NodeSelector = map[string]string{zoneKey: "us-east-1c"}
		x.UpsertPod(p)
	}
	for i := 1; i <= n; i++ {
		x.UpsertPod(executor(app, i, fmt.Sprintf("spot-us-east-1c-%d", i%6), "1", "4Gi"))
	}
}

func TestChooseScaledToZero(t *testing.T) {
	// Spot capacity scaled to zero: only on-demand nodes exist, one per zone.
	onDemandOnly := func(x *Index) {
		for _, z := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
			x.UpsertNode(spotNode("od-"+z, z, "m5.2xlarge").onDemand().Obj())
		}
	}
	cases := map[string]struct {
		zones      map[string]ZoneHint
		drivers    int
		wantReason string
		wantCounts map[string]int
	}{
		"round robin over the zones that have nodes": {
			drivers:    6,
			wantReason: ReasonRoundRobin,
			wantCounts: map[string]int{"us-east-1a": 2, "us-east-1b": 2, "us-east-1c": 2},
		},
		"weights share drivers out in proportion, only over the configured zones": {
			zones:      map[string]ZoneHint{"us-east-1a": {Weight: 2}, "us-east-1b": {Weight: 1}, "us-east-1d": {Weight: 1}},
			drivers:    8,
			wantReason: ReasonWeight,
			wantCounts: map[string]int{"us-east-1a": 4, "us-east-1b": 2, "us-east-1d": 2},
		},
		"a zone of weight 0 gets nothing": {
			zones:      map[string]ZoneHint{"us-east-1a": {Weight: 1}, "us-east-1b": {Weight: 0}},
			drivers:    3,
			wantReason: ReasonWeight,
			wantCounts: map[string]int{"us-east-1a": 3},
		},
		"capacity hints fill zones as free capacity would": {
			zones:      map[string]ZoneHint{"us-east-1a": {Capacity: Resources{MilliCPU: 16000, Memory: 128 << 30}}, "us-east-1b": {Capacity: Resources{MilliCPU: 48000, Memory: 384 << 30}}},
			drivers:    8,
			wantReason: ReasonHint,
			wantCounts: map[string]int{"us-east-1a": 2, "us-east-1b": 6},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			x, _ := newIndex()
			onDemandOnly(x)
			got := map[string]int{}
			for i := range tc.drivers {
				req := request(fmt.Sprintf("app-%d", i), 8)
				req.Zones = tc.zones
				c := x.Choose(req)
				if c.Reason != tc.wantReason {
					t.Fatalf("driver %d: reason %s, want %s", i, c.Reason, tc.wantReason)
				}
				got[c.Zone]++
			}
			if diff := cmp.Diff(tc.wantCounts, got); diff != "" {
				t.Errorf("drivers per zone (-want +got):\n%s", diff)
			}
		})
	}
}

// A pool registered after the events starts from one walk over the nodes and gets the same sums as one
// kept by the events; it then follows events like any other.
func TestPoolRegisteredLate(t *testing.T) {
	x, _ := newIndex()
	fleet(x)
	x.UpsertPod(executor("busy", 1, "spot-us-east-1c-0", "10", "8Gi"))
	late := spotPool
	late.Tolerations = append(late.Tolerations, corev1.Toleration{Key: "gpu", Operator: corev1.TolerationOpExists})
	id := x.Pool(late)
	if again := x.Pool(late); again != id || id == spot {
		t.Fatalf("Pool() = %d then %d, want one new ID", id, again)
	}
	x.UpsertPod(executor("busy", 2, "spot-us-east-1a-0", "4", "8Gi"))
	want := freeCPU(x.Choose(Request{Pool: spot, PerExecutor: oneCPU}))
	got := freeCPU(x.Choose(Request{Pool: id, PerExecutor: oneCPU}))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("late pool's free CPU (-event-kept +late):\n%s", diff)
	}
	if c := x.Choose(Request{Pool: 7, PerExecutor: oneCPU}); c.Zone != "" {
		t.Errorf("Choose with an unknown pool = %+v, want no zone", c)
	}
}

func TestChooseNoZones(t *testing.T) {
	x, _ := newIndex()
	if c := x.Choose(request("app-1", 8)); c.Zone != "" || x.Stats().Reservations != 0 {
		t.Errorf("Choose on an empty cluster = %+v with %d reservations, want no zone and none", c, x.Stats().Reservations)
	}
}

func TestPodRequests(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	req := func(cpu, mem string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}}
	}
	cases := map[string]struct {
		spec corev1.PodSpec
		want Resources
	}{
		"Spark container after a sidecar": {
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "sidecar", Resources: req("100m", "64Mi")}, {Name: "spark-kubernetes-executor", Resources: req("4", "9Gi")}}},
			want: Resources{MilliCPU: 4100, Memory: 9<<30 + 64<<20},
		},
		"a large init container sets the floor": {
			spec: corev1.PodSpec{InitContainers: []corev1.Container{{Resources: req("8", "1Gi")}}, Containers: []corev1.Container{{Resources: req("1", "2Gi")}}},
			want: Resources{MilliCPU: 8000, Memory: 2 << 30},
		},
		"sidecar init containers run beside the others, overhead on top": {
			spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Resources: req("500m", "1Gi"), RestartPolicy: &always}},
				Containers:     []corev1.Container{{Resources: req("1", "2Gi")}},
				Overhead:       corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
			},
			want: Resources{MilliCPU: 1750, Memory: 3 << 30},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := PodRequests(&tc.spec); got != tc.want {
				t.Errorf("PodRequests() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	x, _ := newIndex()
	fleet(x)
	got := x.Choose(request("app-1", 8)).Explain(8)
	want := "us-east-1c: most free spot capacity (8 of 8 executors fit); free CPU by zone: us-east-1a=32 us-east-1b=16 us-east-1c=96"
	if got != want {
		t.Errorf("Explain() = %q, want %q", got, want)
	}
}
