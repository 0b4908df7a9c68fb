package bench

import (
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/pprof/profile"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
)

func TestPercentile(t *testing.T) {
	ds := func(ms ...int) []time.Duration {
		out := make([]time.Duration, len(ms))
		for i, m := range ms {
			out[i] = time.Duration(m) * time.Millisecond
		}
		return out
	}
	tests := map[string]struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		"none":                    {q: .5, want: 0},
		"median of an odd count":  {in: ds(5, 1, 3), q: .5, want: 3 * time.Millisecond},
		"p99 of 100 is the 99th":  {in: ds(seq(100)...), q: .99, want: 99 * time.Millisecond},
		"p99 of 10 is the max":    {in: ds(seq(10)...), q: .99, want: 10 * time.Millisecond},
		"p0 is the min, unsorted": {in: ds(7, 2, 9), q: 0, want: 2 * time.Millisecond},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := percentile(tc.in, tc.q); got != tc.want {
				t.Errorf("percentile(%v, %v) = %s, want %s", tc.in, tc.q, got, tc.want)
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestSpreadOf(t *testing.T) {
	if got, want := spreadOf([]float64{3, 1, 2, 10}), (Spread{Min: 1, Median: 2.5, Max: 10, N: 4}); got != want {
		t.Errorf("spreadOf = %+v, want %+v", got, want)
	}
	if got := spreadCell(spreadOf([]float64{0.8, 0.9, 1}), "%.2f"); got != "0.80 – 0.90 – 1.00" {
		t.Errorf("spreadCell = %q", got)
	}
	if got := spreadCell(Spread{}, "%.2f"); got != "—" {
		t.Errorf("spreadCell of nothing = %q", got)
	}
}

func mustParseMetrics(t *testing.T, text string) Metrics {
	t.Helper()
	m, err := parseMetrics("test", text)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const histogramBefore = `# TYPE sparkplace_admission_duration_seconds histogram
sparkplace_admission_duration_seconds_bucket{role="executor",le="0.001"} 10
sparkplace_admission_duration_seconds_bucket{role="executor",le="0.01"} 10
sparkplace_admission_duration_seconds_bucket{role="executor",le="+Inf"} 10
sparkplace_admission_duration_seconds_sum{role="executor"} 0.005
sparkplace_admission_duration_seconds_count{role="executor"} 10
sparkplace_admission_duration_seconds_bucket{role="driver",le="0.001"} 0
sparkplace_admission_duration_seconds_bucket{role="driver",le="0.01"} 5
sparkplace_admission_duration_seconds_bucket{role="driver",le="+Inf"} 5
sparkplace_admission_duration_seconds_sum{role="driver"} 0.02
sparkplace_admission_duration_seconds_count{role="driver"} 5
# TYPE sparkplace_decision_cache_lookups_total counter
sparkplace_decision_cache_lookups_total{result="hit"} 8
sparkplace_decision_cache_lookups_total{result="miss"} 2
`

// 100 more executor admissions: 90 under 1 ms, 10 between 1 and 10 ms.
const histogramAfter = `# TYPE sparkplace_admission_duration_seconds histogram
sparkplace_admission_duration_seconds_bucket{role="executor",le="0.001"} 100
sparkplace_admission_duration_seconds_bucket{role="executor",le="0.01"} 110
sparkplace_admission_duration_seconds_bucket{role="executor",le="+Inf"} 110
sparkplace_admission_duration_seconds_sum{role="executor"} 0.105
sparkplace_admission_duration_seconds_count{role="executor"} 110
sparkplace_admission_duration_seconds_bucket{role="driver",le="0.001"} 0
sparkplace_admission_duration_seconds_bucket{role="driver",le="0.01"} 5
sparkplace_admission_duration_seconds_bucket{role="driver",le="+Inf"} 5
sparkplace_admission_duration_seconds_sum{role="driver"} 0.02
sparkplace_admission_duration_seconds_count{role="driver"} 5
# TYPE sparkplace_decision_cache_lookups_total counter
sparkplace_decision_cache_lookups_total{result="hit"} 107
sparkplace_decision_cache_lookups_total{result="miss"} 3
`

func TestHistogramBetweenScrapes(t *testing.T) {
	before, after := mustParseMetrics(t, histogramBefore), mustParseMetrics(t, histogramAfter)
	executor := map[string]string{"role": "executor"}
	tests := map[string]struct {
		q    float64
		want float64
	}{
		"p50 within the first bucket":   {q: .5, want: 0.001 * 50 / 90},
		"p90 at the first bucket's end": {q: .9, want: 0.001},
		"p99 within the second bucket":  {q: .99, want: 0.001 + 0.009*(99-90)/10},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, n := HistogramQuantile(before, after, metricAdmissionTimes, executor, tc.q)
			if n != 100 || math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("quantile %v = %v over %v observations, want %v over 100", tc.q, got, n, tc.want)
			}
		})
	}
	if got := HistogramMean(before, after, metricAdmissionTimes, executor); math.Abs(got-0.001) > 1e-12 {
		t.Errorf("mean = %v, want 0.001", got)
	}
	hits, _ := after.Value(metricCacheLookups, map[string]string{"result": "hit"})
	all, ok := after.Value(metricCacheLookups, nil)
	if hits != 107 || all != 110 || !ok {
		t.Errorf("cache lookups: %v hits of %v (%v), want 107 of 110", hits, all, ok)
	}
	if _, ok := Metrics(map[string]*dto.MetricFamily{}).Value(metricCacheLookups, nil); ok {
		t.Error("a missing family is reported present")
	}
}

// The API server's histogram of its webhook calls, one series per webhook (and per operation, rejection and
// type), before and after 10 calls to sparkplace (40 ms in all) and 20 to the same-patch webhook (20 ms).
const webhookCallsBefore = `# TYPE apiserver_admission_webhook_admission_duration_seconds histogram
apiserver_admission_webhook_admission_duration_seconds_sum{name="pods.sparkplace.io",operation="CREATE",rejected="false",type="admit"} 1
apiserver_admission_webhook_admission_duration_seconds_count{name="pods.sparkplace.io",operation="CREATE",rejected="false",type="admit"} 100
apiserver_admission_webhook_admission_duration_seconds_sum{name="same-patch.bench.sparkplace.io",operation="CREATE",rejected="false",type="admit"} 2
apiserver_admission_webhook_admission_duration_seconds_count{name="same-patch.bench.sparkplace.io",operation="CREATE",rejected="false",type="admit"} 200
`

const webhookCallsAfter = `# TYPE apiserver_admission_webhook_admission_duration_seconds histogram
apiserver_admission_webhook_admission_duration_seconds_sum{name="pods.sparkplace.io",operation="CREATE",rejected="false",type="admit"} 1.04
apiserver_admission_webhook_admission_duration_seconds_count{name="pods.sparkplace.io",operation="CREATE",rejected="false",type="admit"} 110
apiserver_admission_webhook_admission_duration_seconds_sum{name="same-patch.bench.sparkplace.io",operation="CREATE",rejected="false",type="admit"} 2.02
apiserver_admission_webhook_admission_duration_seconds_count{name="same-patch.bench.sparkplace.io",operation="CREATE",rejected="false",type="admit"} 220
`

func TestWebhookCallMeanByVariant(t *testing.T) {
	before, after := mustParseMetrics(t, webhookCallsBefore), mustParseMetrics(t, webhookCallsAfter)
	for v, want := range map[Variant]time.Duration{Sparkplace: 4 * time.Millisecond, SamePatch: time.Millisecond, NoOp: 0, NoWebhook: 0} {
		if got := webhookCallMean(before, after, v); got != want {
			t.Errorf("%s: webhook call mean %s, want %s", v, got, want)
		}
	}
}

func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	if _, err := processCPU(pid); err != nil {
		t.Error(err)
	}
	if r, err := processResident(pid); err != nil || r.RSS <= 0 || r.Anon <= 0 || r.Peak < r.RSS {
		t.Errorf("resident = %+v, %v", r, err)
	}
	if _, err := machineCPU(); err != nil {
		t.Error(err)
	}
	if _, err := processCPU(-1); err == nil {
		t.Error("cpu time of pid -1: no error")
	}
}

func TestZoneVariants(t *testing.T) {
	zoneAndSpot := func() *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{
					{Key: framework.LabelZone, Operator: corev1.NodeSelectorOpIn, Values: []string{"us-east-1a"}},
					{Key: framework.LabelEKSCapacityType, Operator: corev1.NodeSelectorOpIn, Values: []string{"SPOT"}},
				},
			}}},
		}}}}
	}
	p := zoneAndSpot()
	withoutZone(p)
	want := []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
		{Key: framework.LabelEKSCapacityType, Operator: corev1.NodeSelectorOpIn, Values: []string{"SPOT"}},
	}}}
	if diff := cmp.Diff(want, p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms); diff != "" {
		t.Errorf("without zone (-want +got):\n%s", diff)
	}

	zoneOnly := zoneAndSpot()
	zoneOnly.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions =
		zoneOnly.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[:1]
	withoutZone(zoneOnly)
	if zoneOnly.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		t.Errorf("a zone-only requirement left %+v", zoneOnly.Spec.Affinity.NodeAffinity)
	}

	withDriverPodAffinity(p, "spark-0123")
	term := p.Spec.Affinity.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0]
	if term.TopologyKey != framework.LabelZone || term.LabelSelector.MatchLabels["spark-app-selector"] != "spark-0123" ||
		term.LabelSelector.MatchLabels["spark-role"] != "driver" {
		t.Errorf("pod affinity %+v", term)
	}
}

func TestScaleNodes(t *testing.T) {
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	for _, want := range []int{300, 5000} {
		if got := len(scaleNodes(zones, want)); got != want {
			t.Errorf("%d nodes, want %d", got, want)
		}
	}
	nodes := scaleNodes(zones, 300)
	names := map[string]bool{}
	for _, n := range nodes {
		if _, ok := n.Annotations[framework.KwokNodeAnnotation]; ok {
			t.Fatalf("node %s is left to kwok", n.Name)
		}
		if !n.Spec.Unschedulable {
			t.Fatalf("node %s is not cordoned: pods bound there would never run", n.Name)
		}
		if names[n.Name] {
			t.Fatalf("node name %s twice", n.Name)
		}
		names[n.Name] = true
	}
}

const schedulerBefore = `# TYPE scheduler_schedule_attempts_total counter
scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"} 100
scheduler_schedule_attempts_total{profile="default-scheduler",result="unschedulable"} 2
# TYPE scheduler_framework_extension_point_duration_seconds histogram
scheduler_framework_extension_point_duration_seconds_bucket{extension_point="Filter",profile="default-scheduler",status="Success",le="+Inf"} 100
scheduler_framework_extension_point_duration_seconds_sum{extension_point="Filter",profile="default-scheduler",status="Success"} 0.1
scheduler_framework_extension_point_duration_seconds_count{extension_point="Filter",profile="default-scheduler",status="Success"} 100
# TYPE scheduler_plugin_execution_duration_seconds histogram
scheduler_plugin_execution_duration_seconds_bucket{extension_point="Score",plugin="PodTopologySpread",status="Success",le="+Inf"} 10
scheduler_plugin_execution_duration_seconds_sum{extension_point="Score",plugin="PodTopologySpread",status="Success"} 0.01
scheduler_plugin_execution_duration_seconds_count{extension_point="Score",plugin="PodTopologySpread",status="Success"} 10
`

const schedulerAfter = `# TYPE scheduler_schedule_attempts_total counter
scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"} 1100
scheduler_schedule_attempts_total{profile="default-scheduler",result="unschedulable"} 12
# TYPE scheduler_framework_extension_point_duration_seconds histogram
scheduler_framework_extension_point_duration_seconds_bucket{extension_point="Filter",profile="default-scheduler",status="Success",le="+Inf"} 1100
scheduler_framework_extension_point_duration_seconds_sum{extension_point="Filter",profile="default-scheduler",status="Success"} 2.1
scheduler_framework_extension_point_duration_seconds_count{extension_point="Filter",profile="default-scheduler",status="Success"} 1100
# TYPE scheduler_plugin_execution_duration_seconds histogram
scheduler_plugin_execution_duration_seconds_bucket{extension_point="Score",plugin="PodTopologySpread",status="Success",le="+Inf"} 110
scheduler_plugin_execution_duration_seconds_sum{extension_point="Score",plugin="PodTopologySpread",status="Success"} 0.31
scheduler_plugin_execution_duration_seconds_count{extension_point="Score",plugin="PodTopologySpread",status="Success"} 110
scheduler_plugin_execution_duration_seconds_bucket{extension_point="Filter",plugin="NodeAffinity",status="Success",le="+Inf"} 5
scheduler_plugin_execution_duration_seconds_sum{extension_point="Filter",plugin="NodeAffinity",status="Success"} 0.05
scheduler_plugin_execution_duration_seconds_count{extension_point="Filter",plugin="NodeAffinity",status="Success"} 5
scheduler_plugin_execution_duration_seconds_bucket{extension_point="Bind",plugin="DefaultBinder",status="Success",le="+Inf"} 5
scheduler_plugin_execution_duration_seconds_sum{extension_point="Bind",plugin="DefaultBinder",status="Success"} 5
scheduler_plugin_execution_duration_seconds_count{extension_point="Bind",plugin="DefaultBinder",status="Success"} 5
`

func TestSchedulerStatsBetweenScrapes(t *testing.T) {
	got := schedulerStats(mustParseMetrics(t, schedulerBefore), mustParseMetrics(t, schedulerAfter))
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if !near(got.Attempts, 1010) {
		t.Errorf("attempts %v, want 1010 (scheduled and unschedulable)", got.Attempts)
	}
	if !near(got.Points["Filter"], 0.002) {
		t.Errorf("Filter mean %v, want 2 ms per cycle", got.Points["Filter"])
	}
	if got.Points["Score"] != 0 {
		t.Errorf("Score mean %v without observations", got.Points["Score"])
	}
	if !near(got.Plugins["PodTopologySpread"], 0.3) || !near(got.Plugins["NodeAffinity"], 0.05) || len(got.Plugins) != 2 {
		t.Errorf("plugin times %v, want PodTopologySpread 0.3 s, NodeAffinity 0.05 s and not the binder", got.Plugins)
	}
}

func TestMarkdownRowsSpreadOverRepetitions(t *testing.T) {
	r := &Report{Scale: SmallScale}
	for rep, wall := range []time.Duration{2 * time.Second, 4 * time.Second, time.Second} {
		for _, v := range Variants {
			r.Creates = append(r.Creates, CreateRound{Variant: v, Rep: rep, Created: 100, ParallelWall: wall, SparkplaceCPU: 20 * time.Millisecond, Others: 0.1})
		}
		for _, v := range SchedVariants {
			r.Sched = append(r.Sched, SchedRound{Variant: v, Rep: rep, Pods: 100, Wall: wall})
		}
	}
	r.Idle = 0.04
	r.Quiets = []Quiet{
		{Part: PartCreate, Waited: time.Second}, {Part: PartCreate, Waited: 3 * time.Second},
		{Part: PartSched, Waited: 2 * time.Second}, {Part: PartSched, Waited: quietLimit, TimedOut: true}, {Part: PartSched, Waited: 4 * time.Second},
	}
	md := r.Markdown("make bench-cluster", ChartFile)
	reportHas(t, md, []string{
		"the 0.04 cores measured at rest after setup): waits of 1.0 – 2.0 – 3.0 s.",
		"waits of 2.0 – 4.0 – 60.0 s; 1 of 3 did not settle within 1m0s and were measured all the same.",
		"| creates/s, 16 clients | 25 – 50 – 100 | 25 – 50 – 100 | 25 – 50 – 100 | 25 – 50 – 100 |",
		"| executors bound per second | 25 – 50 – 100 | 25 – 50 – 100 | 25 – 50 – 100 |",
		"| creates/s, sparkplace / same-patch | 1.00 | 1.00 | ≥ 0.95 |",
		"| sparkplace CPU per create (its process, during these creates), ms | 0.20 | 0.20 | 0.20 | 0.20 |",
		"| other processes on the machine (during these creates), cores | 0.10 | 0.10 | 0.10 | 0.10 |",
	})
}

// The ratios over the whole run pool the repetitions: one slow repetition moves them, not the median.
func TestRatiosOverTheWholeRun(t *testing.T) {
	r := &Report{Scale: SmallScale}
	r.Scale.Reps, r.Scale.SchedReps = 3, 3
	for rep, w := range []struct{ sparkplace, samePatch, pinned, unpinned time.Duration }{
		{time.Second, time.Second, time.Second, 2 * time.Second},
		{time.Second, time.Second, time.Second, time.Second},
		{4 * time.Second, time.Second, 4 * time.Second, time.Second},
	} {
		serial := []time.Duration{time.Duration(rep+1) * time.Millisecond}
		r.Creates = append(r.Creates,
			CreateRound{Variant: Sparkplace, Rep: rep, Created: 100, ParallelWall: w.sparkplace, Serial: serial},
			CreateRound{Variant: SamePatch, Rep: rep, Created: 100, ParallelWall: w.samePatch, Serial: []time.Duration{time.Millisecond}})
		r.Sched = append(r.Sched,
			SchedRound{Variant: SchedNodeAffinity, Rep: rep, Pods: 100, Wall: w.pinned},
			SchedRound{Variant: SchedNoZone, Rep: rep, Pods: 100, Wall: w.unpinned})
	}
	reportHas(t, r.Markdown("make bench-cluster", ChartFile), []string{
		// 300 creates in 6 s against 300 in 3 s.
		"| creates/s, sparkplace / same-patch | 0.25 – 1.00 – 1.00 | 0.50 | ≥ 0.95 |",
		// The p50 of 1, 2 and 3 ms against that of three 1 ms.
		"| serial p50, sparkplace / same-patch | 1.00 – 2.00 – 3.00 | 2.00 | ≤ 1.05 |",
		// 300 executors in 6 s against 300 in 4 s; pinned faster in the first repetition only.
		"sparkplace node affinity / no zone rule (target ≥ 0.95): 0.25 – 1.00 – 2.00 within each repetition, 0.67 over the whole run",
		"the pinned executors bound faster in 1 of 3 repetitions.",
	})
}

func TestSchedOrderPairsTheTargetVariants(t *testing.T) {
	first := map[SchedVariant]int{}
	emrFirst := 0
	for rep := range 4 {
		order := schedOrder(rep)
		if len(order) != len(SchedVariants) {
			t.Fatalf("repetition %d: order %v, want each of %v once", rep, order, SchedVariants)
		}
		for _, v := range SchedVariants {
			if !slices.Contains(order, v) {
				t.Fatalf("repetition %d: order %v lacks %s", rep, order, v)
			}
		}
		i, j := slices.Index(order, SchedNodeAffinity), slices.Index(order, SchedNoZone)
		if i-j != 1 && j-i != 1 {
			t.Errorf("repetition %d: order %v, want %s and %s back to back", rep, order, SchedNodeAffinity, SchedNoZone)
		}
		first[order[min(i, j)]]++
		if order[0] == SchedPodAffinity {
			emrFirst++
		}
	}
	if first[SchedNodeAffinity] != 2 || first[SchedNoZone] != 2 || emrFirst != 2 {
		t.Errorf("over 4 repetitions: first of the pair %v, EMR first %d times; want 2 each", first, emrFirst)
	}
}

func TestSchedReportCPURows(t *testing.T) {
	r := &Report{Scale: SmallScale}
	r.Scale.SchedReps = 1
	for _, v := range SchedVariants {
		r.Sched = append(r.Sched, SchedRound{Variant: v, Pods: 100, Wall: time.Second, WebhookCPU: 20 * time.Millisecond, Requests: 215, StatusWrites: 12,
			CPU: map[string]time.Duration{"kwok": 100 * time.Millisecond, "kube-apiserver": 400 * time.Millisecond, "sparkplace-webhook": 20 * time.Millisecond}})
	}
	r.Sched[0].CPU["kube-apiserver"] = 480 * time.Millisecond
	r.Sched[0].CycleCPU, r.Sched[0].HasCycleCPU = 70*time.Millisecond, true
	r.Sched[1].CycleCPU, r.Sched[1].HasCycleCPU = 100*time.Millisecond, true
	md := r.Markdown("make bench-cluster", ChartFile)
	reportHas(t, md, []string{
		"| kwok CPU per executor, ms | 1.00 | 1.00 | 1.00 |",
		"| sparkplace webhook (its informers) CPU per executor, ms | 0.20 | 0.20 | 0.20 |",
		"| all the run's processes CPU per executor, ms | 6.00 | 5.20 | 5.20 |",
		"all the run's processes' 1.15.",
		"| kube-scheduler CPU in scheduling cycles per executor (CPU profile), ms | 0.70 | 1.00 | — |",
		"kube-scheduler's in scheduling cycles 0.70,",
		"| API server requests during the round, per executor | 2.15 | 2.15 | 2.15 |",
		"| of them pod status writes (kwok marking executors running), per executor | 0.12 | 0.12 | 0.12 |",
	})
}

func TestCycleCPUCountsSchedulingCyclesOnly(t *testing.T) {
	fn := func(id uint64, name string) *profile.Function { return &profile.Function{ID: id, Name: name} }
	scheduleOne := fn(1, "k8s.io/kubernetes/pkg/scheduler.(*Scheduler).ScheduleOne")
	worker := fn(2, "k8s.io/client-go/util/workqueue.ParallelizeUntil.func1")
	filter := fn(3, "k8s.io/kubernetes/pkg/scheduler/framework/plugins/nodeaffinity.(*NodeAffinity).Filter")
	bind := fn(4, "k8s.io/kubernetes/pkg/scheduler.(*Scheduler).bindingCycle")
	gc := fn(5, "runtime.gcBgMarkWorker")
	loc := func(id uint64, fns ...*profile.Function) *profile.Location {
		l := &profile.Location{ID: id}
		for _, f := range fns {
			l.Line = append(l.Line, profile.Line{Function: f})
		}
		return l
	}
	stack := func(ms int64, fns ...*profile.Function) *profile.Sample {
		s := &profile.Sample{Value: []int64{ms, ms * 1e6}}
		for i, f := range fns {
			s.Location = append(s.Location, loc(uint64(100*ms+int64(i)), f))
		}
		return s
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Sample: []*profile.Sample{
			stack(3, filter, worker), // a Filter worker
			stack(2, scheduleOne),    // the cycle itself
			stack(7, bind),           // binding: not the cycle
			stack(11, gc),            // garbage collection: not the cycle
		},
		Function: []*profile.Function{scheduleOne, worker, filter, bind, gc},
	}
	got, ok := cycleCPU(p)
	if !ok || got != 5*time.Millisecond {
		t.Errorf("cycle CPU %v (%v), want 5ms: the worker's and ScheduleOne's samples", got, ok)
	}
	p.Sample = p.Sample[2:]
	if got, ok := cycleCPU(p); ok {
		t.Errorf("cycle CPU %v from a profile without cycle functions, want none", got)
	}
}

func TestBlockBounds(t *testing.T) {
	tests := map[string]struct {
		n, blocks int
		want      [][2]int
	}{
		"even":                     {n: 500, blocks: 5, want: [][2]int{{0, 100}, {100, 200}, {200, 300}, {300, 400}, {400, 500}}},
		"uneven, by one at most":   {n: 10, blocks: 3, want: [][2]int{{0, 3}, {3, 6}, {6, 10}}},
		"more blocks than creates": {n: 2, blocks: 5, want: [][2]int{{0, 1}, {1, 2}}},
		"no block asked is one":    {n: 4, blocks: 0, want: [][2]int{{0, 4}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, blockBounds(tc.n, tc.blocks)); diff != "" {
				t.Errorf("blockBounds(%d, %d) (-want +got):\n%s", tc.n, tc.blocks, diff)
			}
		})
	}
}

func TestPartial(t *testing.T) {
	tests := map[string]struct {
		parts []string
		want  bool
	}{
		"none named is all":       {want: false},
		"all named, in any order": {parts: []string{PartMemory, PartSched, PartBurst, PartCreate}, want: false},
		"one":                     {parts: []string{PartCreate}, want: true},
		"all but one":             {parts: []string{PartCreate, PartBurst, PartSched}, want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := partial(tc.parts); got != tc.want {
				t.Errorf("partial(%v) = %v, want %v", tc.parts, got, tc.want)
			}
		})
	}
}

// reportHas fails t for each of wants the report md lacks.
func reportHas(t *testing.T, md string, wants []string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
