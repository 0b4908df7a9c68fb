package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
)

// SchedVariant is how executors are kept in their driver's zone in the scheduling measurement.
type SchedVariant string

const (
	// SchedNodeAffinity: the executors as sparkplace admits them (required node affinity to the zone).
	SchedNodeAffinity SchedVariant = "sparkplace node affinity"
	// SchedNoZone: the same without the zone requirement.
	SchedNoZone SchedVariant = "no zone rule"
	// SchedPodAffinity: no zone requirement, but EMR on EKS's recipe, a required pod affinity to the driver with
	// the zone as topology key.
	SchedPodAffinity SchedVariant = "EMR pod affinity"
)

// SchedVariants in the report's column order.
var SchedVariants = []SchedVariant{SchedNodeAffinity, SchedNoZone, SchedPodAffinity}

// SchedRound is one variant's scheduling measurement in one repetition.
type SchedRound struct {
	Variant SchedVariant
	Rep     int
	// Pods executors were bound, Wall is the time from kube-scheduler's resumption to the last binding;
	// Unbound executors were still waiting bindingLimit after it.
	Pods, Unbound int
	Wall          time.Duration
	// InDriverZone counts executors bound in their driver's zone.
	InDriverZone int
	// SchedulerCPU and APIServerCPU are kube-scheduler's and kube-apiserver's CPU time (from /proc) from the
	// scheduler's resumption to the last binding.
	SchedulerCPU, APIServerCPU time.Duration
	// CPU is the CPU time of each of the run's processes (by framework process name: etcd, kwok, the
	// webhooks, ...) over the same time; WebhookCPU is sparkplace's (its informers see every pod).
	CPU        map[string]time.Duration
	WebhookCPU time.Duration
	// CycleCPU is kube-scheduler's CPU in scheduling cycles (placing pods, not binding them), from a CPU
	// profile of the round (cycleCPU); HasCycleCPU is false when the profile did not hold the whole round.
	CycleCPU    time.Duration
	HasCycleCPU bool
	// Requests are the API server's requests (apiserver_request_total) from kube-scheduler's resumption to the
	// last binding; StatusWrites those that write a pod's status (kwok marking executors running).
	Requests, StatusWrites float64
	// BindingCall is the API server's mean time for a binding (POST pods/binding, its
	// apiserver_request_duration_seconds), the API server's side of the scheduler's Bind.
	BindingCall time.Duration
	// Others is the CPU (cores) the machine's other processes (not the run's) used during the round.
	Others float64
	// Scheduler is what kube-scheduler's own metrics say about the round.
	Scheduler SchedulerStats
}

// SchedulerStats are kube-scheduler's metrics over a scheduling round.
type SchedulerStats struct {
	// Attempts are scheduling attempts (scheduler_schedule_attempts_total, all results); more than one per pod
	// means pods found no node and were retried.
	Attempts float64
	// Points is the mean time (seconds) per scheduling cycle of each extension point
	// (scheduler_framework_extension_point_duration_seconds), by extension point.
	Points map[string]float64
	// Plugins is the time (seconds) each plugin spent over its extension points of the scheduling cycle
	// (not binding), in the cycles the scheduler samples for scheduler_plugin_execution_duration_seconds
	// (a share of all cycles).
	Plugins map[string]float64
}

// schedulerStats is the difference of two scrapes of kube-scheduler's metrics.
func schedulerStats(before, after Metrics) SchedulerStats {
	s := SchedulerStats{Points: map[string]float64{}, Plugins: map[string]float64{}}
	a0, _ := before.Value("scheduler_schedule_attempts_total", nil)
	a1, _ := after.Value("scheduler_schedule_attempts_total", nil)
	s.Attempts = a1 - a0
	for _, point := range schedulerPoints {
		s.Points[point] = HistogramMean(before, after, "scheduler_framework_extension_point_duration_seconds", map[string]string{"extension_point": point})
	}
	// The scheduling cycle's plugins only: binding (PreBind, Bind, PostBind) runs apart and mostly waits
	// on the API server.
	cycle := func(m *dto.Metric) bool {
		for _, l := range m.GetLabel() {
			if l.GetName() == "extension_point" {
				return !strings.HasSuffix(l.GetValue(), "Bind")
			}
		}
		return true
	}
	const plugins = "scheduler_plugin_execution_duration_seconds"
	sum0, sum1 := before.histogramSums(plugins, "plugin", cycle), after.histogramSums(plugins, "plugin", cycle)
	for plugin, v := range sum1 {
		if d := v - sum0[plugin]; d > 0 {
			s.Plugins[plugin] = d
		}
	}
	return s
}

// schedulerPoints are the extension points the report shows, in the order of a scheduling cycle.
var schedulerPoints = []string{"PreFilter", "Filter", "PreScore", "Score", "Reserve", "Permit", "PreBind", "Bind"}

// cpuPerPod lists each process's CPU per executor bound, in ms, by name.
func (r *SchedRound) cpuPerPod() string {
	names := slices.Sorted(maps.Keys(r.CPU))
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %.2f ms", name, ms(r.CPU[name])/float64(max(r.Pods, 1)))
	}
	return strings.Join(parts, ", ")
}

// TotalCPU is the CPU time of all the run's processes over the round.
func (r *SchedRound) TotalCPU() time.Duration {
	var sum time.Duration
	for _, c := range r.CPU {
		sum += c
	}
	return sum
}

// PodsPerSecond is the scheduling rate.
func (r *SchedRound) PodsPerSecond() float64 { return podsPerSecond(r) }

// podsPerSecond is the rate of rounds together: their executors bound over their summed time.
func podsPerSecond(rounds ...*SchedRound) float64 {
	return perSecond(rounds, func(r *SchedRound) (int, time.Duration) { return r.Pods, r.Wall })
}

// MeasureScheduling measures how fast kube-scheduler binds executors placed each way, from placements (by
// zone, as sparkplace admitted a driver and an executor there), Scale.SchedReps times, interleaved in the order
// of schedOrder, after one round that is not counted (warmUp).
func (e *Env) MeasureScheduling(ctx context.Context, placements map[string]ZonePlacement) ([]SchedRound, error) {
	var rounds []SchedRound
	warm, err := e.schedRound(ctx, -1, warmUp, placements)
	if err != nil {
		return nil, fmt.Errorf("scheduling measurement, warm-up round: %w", err)
	}
	e.Logf("scheduling warm-up (%s, not counted): %d executors bound in %s (%.0f/s)",
		warmUp, warm.Pods, warm.Wall.Round(time.Millisecond), warm.PodsPerSecond())
	for rep := range e.Scale.SchedReps {
		for _, v := range schedOrder(rep) {
			r, err := e.schedRound(ctx, rep, v, placements)
			if err != nil {
				return rounds, fmt.Errorf("scheduling measurement, repetition %d, %s: %w", rep+1, v, err)
			}
			e.Logf("scheduling rep %d %-25s %d executors bound in %s (%.0f/s), %d in their driver's zone; %.0f API requests, %.0f pod status writes; CPU per executor: %s",
				rep+1, v, r.Pods, r.Wall.Round(time.Millisecond), r.PodsPerSecond(), r.InDriverZone, r.Requests, r.StatusWrites, r.cpuPerPod())
			rounds = append(rounds, *r)
		}
	}
	return rounds, nil
}

// warmUp is the variant of the round run before the measured ones and not counted: the first round of a run
// was slower than the same variant's later rounds in 5 of 6 runs (e.g. 104 executors/s against 194 and 191),
// and the rotation gave it to sparkplace node affinity every time.
const warmUp = SchedNoZone

// schedOrder is the order of the variants in repetition rep: sparkplace node affinity and no zone rule, the
// pair the target compares, run back to back (drift between rounds hits them least), each first in every
// other repetition; EMR pod affinity before the pair in two repetitions of four, after it in the others.
func schedOrder(rep int) []SchedVariant {
	pair := []SchedVariant{SchedNodeAffinity, SchedNoZone}
	if rep%2 == 1 {
		pair[0], pair[1] = pair[1], pair[0]
	}
	if (rep/2)%2 == 1 {
		return append([]SchedVariant{SchedPodAffinity}, pair...)
	}
	return append(pair, SchedPodAffinity)
}

func (e *Env) schedRound(ctx context.Context, rep int, v SchedVariant, placements map[string]ZonePlacement) (_ *SchedRound, err error) {
	// No webhook: the pods carry their placement as created.
	ns, err := e.newNamespace(ctx, "sched", NoWebhook)
	if err != nil {
		return nil, err
	}
	r := &SchedRound{Variant: v, Rep: rep}
	var profiles *roundProfiles
	defer func() {
		if derr := e.deleteNamespace(ctx, ns); err == nil {
			err = derr
		}
		// The profiles run on while the pods are deleted (which starts no scheduling cycle).
		if profiles != nil {
			if perr := e.finishProfiles(profiles, r, fmt.Sprintf("sched-%d-%s", rep+1, v)); err == nil {
				err = perr
			}
		}
	}()
	// The drivers are created at once, then waited for.
	apps := make([]*sparksim.App, e.Scale.SchedDrivers)
	driverZones := make([]string, len(apps))
	for i := range apps {
		driverZones[i] = e.Zones[i%len(e.Zones)]
		pl, ok := placements[driverZones[i]]
		if !ok {
			return nil, fmt.Errorf("no sparkplace placement seen in zone %s (the burst had too few drivers)", driverZones[i])
		}
		apps[i] = sparksim.NewApp(fmt.Sprintf("sched-%d", i+1), ns)
		driver := apps[i].DriverPod()
		pl.Driver.applyTo(driver)
		if _, err := e.Client.CoreV1().Pods(ns).Create(ctx, driver, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create driver: %w", err)
		}
	}
	var executors []*corev1.Pod
	driverZone := map[string]string{} // executor name → its driver's zone
	for i, app := range apps {
		driver, err := sparksim.WaitForPod(ctx, e.Client, ns, app.DriverName(), 3*time.Minute, sparksim.PodRunning)
		if err != nil {
			return nil, err
		}
		for id := 1; id <= e.Scale.SchedExecutors; id++ {
			p := app.ExecutorPod(driver, id)
			placements[driverZones[i]].Executor.applyTo(p)
			switch v {
			case SchedNoZone:
				withoutZone(p)
			case SchedPodAffinity:
				withoutZone(p)
				withDriverPodAffinity(p, app.ID)
			}
			executors = append(executors, p)
			driverZone[p.Name] = driverZones[i]
		}
	}
	// kube-scheduler is paused while the executors are created, so that all wait when it resumes and it, not
	// the creates (nor releasing them one API call at a time), sets the pace.
	// Its metrics before the round; it serves none while paused.
	before, err := e.scrapeScheduler(ctx)
	if err != nil {
		return nil, err
	}
	scheduler := e.CP.Process("kube-scheduler").Pid()
	if err := syscall.Kill(scheduler, syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("pause kube-scheduler: %w", err)
	}
	resumed := false
	resume := func() error {
		if resumed {
			return nil
		}
		resumed = true
		return syscall.Kill(scheduler, syscall.SIGCONT)
	}
	defer func() {
		if rerr := resume(); err == nil && rerr != nil {
			err = fmt.Errorf("resume kube-scheduler: %w", rerr)
		}
	}()
	errs := parallel(len(executors), e.Scale.Clients, func(i int) error {
		_, err := e.Client.CoreV1().Pods(ns).Create(ctx, executors[i], metav1.CreateOptions{})
		return err
	})
	if n, err := firstError(errs); n > 0 {
		return nil, fmt.Errorf("%d executor creates failed: %w", n, err)
	}
	list, err := e.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	bound := newBindingWatch(len(executors))
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go bound.run(watchCtx, e, ns, list.ResourceVersion)

	if err := e.settle(ctx, PartSched); err != nil {
		return nil, err
	}
	api0, err := e.scrapeAPIServer(ctx)
	if err != nil {
		return nil, err
	}
	load, err := startLoad(e.CP.Dir)
	if err != nil {
		return nil, err
	}
	cpu0 := e.childrenCPU()
	start := time.Now()
	if err := resume(); err != nil {
		return nil, fmt.Errorf("resume kube-scheduler: %w", err)
	}
	profiles = e.startProfiles(ctx)
	r.Pods = len(executors)
	last, nodes, err := bound.wait(ctx, bindingLimit)
	if err != nil {
		return nil, err
	}
	r.Pods, r.Unbound = len(nodes), len(executors)-len(nodes)
	r.Wall = last.Sub(start)
	cpu1 := e.childrenCPU()
	r.CPU = map[string]time.Duration{}
	for name, c := range cpu1 {
		r.CPU[name] = c - cpu0[name]
	}
	r.SchedulerCPU, r.APIServerCPU = r.CPU["kube-scheduler"], r.CPU["kube-apiserver"]
	r.WebhookCPU = r.CPU[e.Sparkplace.Process().Name]
	if m, err := load.end(); err == nil {
		r.Others = coresOf(m.Others, m.Elapsed)
	}
	api1, err := e.scrapeAPIServer(ctx)
	if err != nil {
		return nil, err
	}
	binding := HistogramMean(api0, api1, "apiserver_request_duration_seconds",
		map[string]string{"verb": "POST", "resource": "pods", "subresource": "binding"})
	r.BindingCall = time.Duration(binding * float64(time.Second))
	r.Requests = counterDelta(api0, api1, "apiserver_request_total", nil)
	r.StatusWrites = counterDelta(api0, api1, "apiserver_request_total", map[string]string{"resource": "pods", "subresource": "status"}) -
		counterDelta(api0, api1, "apiserver_request_total", map[string]string{"resource": "pods", "subresource": "status", "verb": "GET"})
	after, err := e.scrapeScheduler(ctx)
	if err != nil {
		return nil, err
	}
	r.Scheduler = schedulerStats(before, after)
	zones, _, err := e.nodeLabels(ctx)
	if err != nil {
		return nil, err
	}
	for name, node := range nodes {
		if zones[node] == driverZone[name] {
			r.InDriverZone++
		}
	}
	return r, nil
}

// bindingLimit bounds a round: executors not bound by then are counted apart (Unbound), the round's rate is
// that of the others.
const bindingLimit = 2 * time.Minute

// withoutZone drops the zone requirement from a pod's required node affinity.
func withoutZone(p *corev1.Pod) {
	a := p.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return
	}
	req := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	var terms []corev1.NodeSelectorTerm
	for _, t := range req.NodeSelectorTerms {
		var exprs []corev1.NodeSelectorRequirement
		for _, r := range t.MatchExpressions {
			if r.Key != framework.LabelZone {
				exprs = append(exprs, r)
			}
		}
		t.MatchExpressions = exprs
		if len(t.MatchExpressions) > 0 || len(t.MatchFields) > 0 {
			terms = append(terms, t)
		}
	}
	if len(terms) == 0 {
		a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = nil
	} else {
		req.NodeSelectorTerms = terms
	}
}

// withDriverPodAffinity adds EMR on EKS's single-zone recipe: a required pod affinity to the application's
// driver, topology key zone.
func withDriverPodAffinity(p *corev1.Pod, appID string) {
	if p.Spec.Affinity == nil {
		p.Spec.Affinity = &corev1.Affinity{}
	}
	p.Spec.Affinity.PodAffinity = &corev1.PodAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{
				sparksim.LabelAppSelector: appID, sparksim.LabelRole: sparksim.RoleDriver,
			}},
			TopologyKey: framework.LabelZone,
		}},
	}
}

// bindingWatch records when each executor of a namespace gets a node.
type bindingWatch struct {
	want  int
	mu    sync.Mutex
	nodes map[string]string
	last  time.Time
	done  chan struct{}
	err   error
}

func newBindingWatch(want int) *bindingWatch {
	return &bindingWatch{want: want, nodes: map[string]string{}, done: make(chan struct{})}
}

// run watches from resourceVersion, restarting the watch when the API server ends it, until all are bound.
func (b *bindingWatch) run(ctx context.Context, e *Env, ns, resourceVersion string) {
	defer close(b.done)
	for {
		w, err := e.Client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{
			LabelSelector: sparksim.LabelRole + "=" + sparksim.RoleExecutor, ResourceVersion: resourceVersion,
		})
		if err != nil {
			b.fail(err)
			return
		}
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Error {
				continue
			}
			resourceVersion = pod.ResourceVersion
			if pod.Spec.NodeName == "" {
				continue
			}
			now := time.Now()
			b.mu.Lock()
			if _, seen := b.nodes[pod.Name]; !seen {
				b.nodes[pod.Name], b.last = pod.Spec.NodeName, now
			}
			n := len(b.nodes)
			b.mu.Unlock()
			if n >= b.want {
				w.Stop()
				return
			}
		}
		if ctx.Err() != nil {
			b.fail(ctx.Err())
			return
		}
	}
}

func (b *bindingWatch) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = err
}

// wait returns the time of the last binding and the node of each executor bound, once all are or timeout
// passed (the executors still unbound then are left out); an error when none was bound or the watch failed.
func (b *bindingWatch) wait(ctx context.Context, timeout time.Duration) (time.Time, map[string]string, error) {
	select {
	case <-b.done:
	case <-time.After(timeout):
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.nodes) == 0 || (len(b.nodes) < b.want && b.err != nil) {
		return time.Time{}, nil, fmt.Errorf("%d of %d executors bound (%v)", len(b.nodes), b.want, b.err)
	}
	return b.last, maps.Clone(b.nodes), nil
}
