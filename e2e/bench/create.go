package bench

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
	"github.com/sparkplace/sparkplace/placement"
)

// unscheduled is a scheduler name no scheduler serves: the executors of the create measurement stay Pending
// and cost the scheduler nothing, so that the creates are measured alone.
const unscheduled = "sparkplace-bench-unscheduled"

// CreateRound is one variant's create measurement in one repetition.
type CreateRound struct {
	Variant Variant
	Rep     int
	// Serial are the latencies of the creates made one at a time.
	Serial []time.Duration
	// Parallel are the latencies of the creates made by Scale.Clients clients at once, in Scale.Blocks blocks
	// (see createRep); ParallelWall the time the blocks took, each from its first create to its last, summed;
	// Created how many succeeded.
	Parallel     []time.Duration
	ParallelWall time.Duration
	Created      int
	// APIServerCPU and WebhookCPU are the CPU time the kube-apiserver and the webhook process spent during the
	// parallel creates. SparkplaceCPU is sparkplace's: for sparkplace its WebhookCPU, for the baselines what
	// it spent meanwhile, taking their pods in (its informer watches every Spark pod, whoever admitted it).
	APIServerCPU, WebhookCPU, SparkplaceCPU time.Duration
	// Others is the CPU (cores) the machine's other processes (not the run's) used during the parallel creates.
	Others float64
	// SerialCall and ParallelCall are the mean time of the API server's call to the webhook, by its own
	// histogram (apiserver_admission_webhook_admission_duration_seconds: sending the review, the webhook,
	// reading the answer), over the serial and the parallel creates.
	SerialCall, ParallelCall time.Duration
	// HandlerMean is, for sparkplace, the mean of its own admission histogram (the handler); ServerMean, for
	// every webhook, the mean of controller-runtime's webhook latency (decoding the review, the handler,
	// encoding the answer); over the parallel creates, and SerialHandler, SerialServer over the serial ones.
	HandlerMean, ServerMean, SerialHandler, SerialServer time.Duration
	// Failed creates (serial and parallel); Placed pods carry sparkplace's placement annotation.
	Failed, Placed int
	FirstFailure   error
}

// CreatesPerSecond is the parallel throughput.
func (r *CreateRound) CreatesPerSecond() float64 { return createsPerSecond(r) }

// createsPerSecond is the parallel throughput of rounds together: their creates over their blocks' summed time.
func createsPerSecond(rounds ...*CreateRound) float64 {
	return perSecond(rounds, func(r *CreateRound) (int, time.Duration) { return r.Created, r.ParallelWall })
}

// MeasureCreates measures executor creates through each of Variants, Scale.Reps times (see createRep).
func (e *Env) MeasureCreates(ctx context.Context) ([]CreateRound, error) {
	var rounds []CreateRound
	for rep := range e.Scale.Reps {
		rs, err := e.createRep(ctx, rep)
		if err != nil {
			return rounds, fmt.Errorf("create measurement, repetition %d: %w", rep+1, err)
		}
		for _, r := range rs {
			perCreate := func(d time.Duration) float64 { return ms(d) / float64(r.Created) }
			e.Logf("create rep %d %-10s serial p50 %s p99 %s, %.0f creates/s, CPU per create: API server %.2f ms, webhook %.2f, sparkplace %.2f; others %.2f cores; %d failed",
				rep+1, r.Variant, percentile(r.Serial, .5).Round(10*time.Microsecond), percentile(r.Serial, .99).Round(10*time.Microsecond),
				r.CreatesPerSecond(), perCreate(r.APIServerCPU), perCreate(r.WebhookCPU), perCreate(r.SparkplaceCPU), r.Others, r.Failed)
			rounds = append(rounds, *r)
		}
	}
	return rounds, nil
}

// createTarget is one variant's namespace of a repetition, the executors to create in it, and what its
// parallel blocks measured so far.
type createTarget struct {
	v    Variant
	ns   string
	pods []*corev1.Pod
	r    *CreateRound
	mu   sync.Mutex
	// otherCPU is the CPU of the machine's other processes over otherElapsed, summed over the blocks.
	otherCPU, otherElapsed time.Duration
}

// createRep is one repetition: every variant gets a fresh namespace with a running driver; then the serial
// creates go one at a time to the variants in turn (a create of each variant, the next of each, ...); then
// the parallel creates, in Scale.Blocks blocks per variant that also take turns (a block of each variant, the
// next of each, ..., the first variant of each round the next one), each block after the control plane
// settled. So a change in the machine's load hits every variant alike, at both scales of time: within a
// create for the serial ones, within a few seconds for the parallel ones. The order of the variants is
// rotated per repetition.
func (e *Env) createRep(ctx context.Context, rep int) (_ []*CreateRound, err error) {
	order := make([]Variant, len(Variants))
	for k := range Variants {
		order[k] = Variants[(rep+k)%len(Variants)]
	}
	targets := make([]*createTarget, len(order))
	defer func() {
		for _, t := range targets {
			if t == nil {
				continue
			}
			if derr := e.deleteNamespace(ctx, t.ns); err == nil {
				err = derr
			}
		}
	}()
	for k, v := range order {
		if targets[k], err = e.createTarget(ctx, rep, v); err != nil {
			return nil, fmt.Errorf("%s: %w", v, err)
		}
	}

	if err := e.settle(ctx, PartCreate); err != nil {
		return nil, err
	}
	before, err := e.scrapeTargets(ctx, targets)
	if err != nil {
		return nil, err
	}
	for i := range e.Scale.Serial {
		for k := range targets {
			t := targets[(i+k)%len(targets)]
			if took, err := e.create(ctx, t, t.pods[i]); err == nil {
				t.r.Serial = append(t.r.Serial, took)
			}
		}
	}
	after, err := e.scrapeTargets(ctx, targets)
	if err != nil {
		return nil, err
	}
	for k, t := range targets {
		t.r.SerialCall, t.r.SerialHandler, t.r.SerialServer = after.means(before, k, t.v)
	}

	// A variant's histograms move only in its own blocks: the scrapes before the blocks (those after the serial
	// creates) and after them give each variant's means over its blocks alone.
	before = after
	blocks := blockBounds(e.Scale.Parallel, e.Scale.Blocks)
	for j, block := range blocks {
		for k := range targets {
			t := targets[(j+k)%len(targets)]
			if err := e.createBlock(ctx, t, t.pods[e.Scale.Serial+block[0]:e.Scale.Serial+block[1]]); err != nil {
				return nil, fmt.Errorf("%s, parallel block %d: %w", t.v, j+1, err)
			}
		}
	}
	if after, err = e.scrapeTargets(ctx, targets); err != nil {
		return nil, err
	}
	rounds := make([]*CreateRound, len(targets))
	for k, t := range targets {
		t.r.ParallelCall, t.r.HandlerMean, t.r.ServerMean = after.means(before, k, t.v)
		t.r.Others = coresOf(t.otherCPU, t.otherElapsed)
		rounds[k] = t.r
	}
	return rounds, nil
}

// blockBounds splits n creates into blocks ([start, end) of each) of sizes that differ by one at most.
func blockBounds(n, blocks int) [][2]int {
	blocks = max(min(blocks, n), 1)
	out := make([][2]int, blocks)
	for j := range out {
		out[j] = [2]int{j * n / blocks, (j + 1) * n / blocks}
	}
	return out
}

// targetMetrics are the API server's metrics and each target's webhook's, scraped together.
type targetMetrics struct {
	api      Metrics
	webhooks []Metrics
}

func (e *Env) scrapeTargets(ctx context.Context, targets []*createTarget) (targetMetrics, error) {
	var m targetMetrics
	var err error
	if m.api, err = e.scrapeAPIServer(ctx); err != nil {
		return m, err
	}
	m.webhooks = make([]Metrics, len(targets))
	for k, t := range targets {
		if m.webhooks[k], err = e.scrapeVariant(ctx, t.v); err != nil {
			return m, err
		}
	}
	return m, nil
}

// means are, between the scrapes before and m, the API server's mean call to target k's webhook (variant v)
// and the webhook's handler and server means (see webhookMeans).
func (m targetMetrics) means(before targetMetrics, k int, v Variant) (call, handler, server time.Duration) {
	handler, server = webhookMeans(before.webhooks[k], m.webhooks[k], v)
	return webhookCallMean(before.api, m.api, v), handler, server
}

// createTarget creates variant v's namespace and driver and prepares its executors (for the same-patch
// webhook, their patches).
func (e *Env) createTarget(ctx context.Context, rep int, v Variant) (*createTarget, error) {
	ns, err := e.newNamespace(ctx, "create-"+string(v), v)
	if err != nil {
		return nil, err
	}
	t := &createTarget{v: v, ns: ns, r: &CreateRound{Variant: v, Rep: rep}}
	// One driver, in the first zone for every variant, so that sparkplace's patches are alike in all rounds.
	// The drivers of a repetition run side by side, those of the baselines on the zone's one untainted node:
	// small ones (spark.kubernetes.driver.request.cores=100m, spark.driver.memory=384m) fit.
	app := sparksim.NewApp("bench-create", ns).WithDriverZone(e.Zones[0])
	app.DriverMemoryMiB = 384
	driverPod := app.DriverPod()
	for i := range driverPod.Spec.Containers {
		if c := &driverPod.Spec.Containers[i]; c.Name == sparksim.DriverContainer {
			c.Resources.Requests[corev1.ResourceCPU] = resource.MustParse("100m")
		}
	}
	if _, err := e.Client.CoreV1().Pods(ns).Create(ctx, driverPod, metav1.CreateOptions{}); err != nil {
		return t, fmt.Errorf("create driver: %w", err)
	}
	driver, err := sparksim.WaitForPod(ctx, e.Client, ns, app.DriverName(), 3*time.Minute, sparksim.PodRunning)
	if err != nil {
		return t, err
	}
	t.pods = make([]*corev1.Pod, e.Scale.Serial+e.Scale.Parallel)
	for i := range t.pods {
		t.pods[i] = app.ExecutorPod(driver, i+1)
		t.pods[i].Spec.SchedulerName = unscheduled
	}
	if v == Sparkplace || v == SamePatch {
		if err := e.waitDriverZoneKnown(ctx, t.pods[0]); err != nil {
			return t, err
		}
	}
	if v == SamePatch {
		if err := e.precomputePatches(ctx, t.pods); err != nil {
			return t, err
		}
	}
	return t, nil
}

// create creates pod in t's namespace and records a failure or the placement in t's round.
func (e *Env) create(ctx context.Context, t *createTarget, pod *corev1.Pod) (time.Duration, error) {
	start := time.Now()
	created, err := e.Client.CoreV1().Pods(t.ns).Create(ctx, pod, metav1.CreateOptions{})
	took := time.Since(start)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.r.Failed++
		if t.r.FirstFailure == nil {
			t.r.FirstFailure = fmt.Errorf("create %s: %w", pod.Name, err)
		}
		return took, err
	}
	if _, ok := created.Annotations[placement.AnnotationKey]; ok {
		t.r.Placed++
	}
	return took, nil
}

// createBlock makes one block of t's parallel creates, pods, by Scale.Clients clients at once, once the
// control plane settled, and adds to t's round their latencies, their time and the CPU the API server, the
// webhook, sparkplace and the machine's other processes spent meanwhile.
func (e *Env) createBlock(ctx context.Context, t *createTarget, pods []*corev1.Pod) error {
	r := t.r
	if err := e.settle(ctx, PartCreate); err != nil {
		return err
	}
	pids := []int{e.apiServerPID(), e.webhookPID(t.v), e.webhookPID(Sparkplace)}
	cpu := func() ([]time.Duration, error) {
		out := make([]time.Duration, len(pids))
		for i, pid := range pids {
			if pid == 0 { // no webhook
				continue
			}
			var err error
			if out[i], err = processCPU(pid); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	load, err := startLoad(e.CP.Dir)
	if err != nil {
		return err
	}
	cpu0, err := cpu()
	if err != nil {
		return err
	}
	latencies := make([]time.Duration, len(pods))
	start := time.Now()
	errs := parallel(len(pods), e.Scale.Clients, func(i int) error {
		var err error
		latencies[i], err = e.create(ctx, t, pods[i])
		return err
	})
	r.ParallelWall += time.Since(start)
	cpu1, err := cpu()
	if err != nil {
		return err
	}
	r.APIServerCPU += cpu1[0] - cpu0[0]
	r.WebhookCPU += cpu1[1] - cpu0[1]
	r.SparkplaceCPU += cpu1[2] - cpu0[2]
	if m, err := load.end(); err == nil {
		t.otherCPU += m.Others
		t.otherElapsed += m.Elapsed
	}
	for i, err := range errs {
		if err == nil {
			r.Parallel = append(r.Parallel, latencies[i])
			r.Created++
		}
	}
	return nil
}

// scrapeVariant reads the metrics of variant v's webhook (none for NoWebhook).
func (e *Env) scrapeVariant(ctx context.Context, v Variant) (Metrics, error) {
	if v == NoWebhook {
		return nil, nil
	}
	return e.scrapeWebhook(ctx, v)
}

// webhookMeans are the mean of sparkplace's own executor admission histogram (0 for the baselines) and of
// controller-runtime's webhook latency between two scrapes of a webhook's metrics.
func webhookMeans(before, after Metrics, v Variant) (handler, server time.Duration) {
	seconds := func(name string, labels map[string]string) time.Duration {
		return time.Duration(HistogramMean(before, after, name, labels) * float64(time.Second))
	}
	if v == Sparkplace {
		handler = seconds(metricAdmissionTimes, map[string]string{"role": "executor"})
	}
	return handler, seconds("controller_runtime_webhook_latency_seconds", map[string]string{"webhook": framework.WebhookPath})
}

// webhookCallMean is the mean time of the API server's calls to variant v's webhook between two scrapes of
// its metrics (0 for none).
func webhookCallMean(before, after Metrics, v Variant) time.Duration {
	if v == NoWebhook {
		return 0
	}
	mean := HistogramMean(before, after, "apiserver_admission_webhook_admission_duration_seconds", map[string]string{"name": webhookName(v)})
	return time.Duration(mean * float64(time.Second))
}

// waitDriverZoneKnown waits until sparkplace pins an executor to its driver's zone, i.e. its informer has seen
// the driver bound: until then its patches would differ from the ones measured.
func (e *Env) waitDriverZoneKnown(ctx context.Context, executor *corev1.Pod) error {
	return poll(ctx, time.Minute, "sparkplace to see the driver's zone", func(ctx context.Context) (bool, error) {
		patch, err := e.sparkplacePatch(ctx, executor)
		return bytes.Contains(patch, []byte(framework.LabelZone)), err
	})
}

// precomputePatches asks sparkplace for the patch of each pod as the API server would send it: the pod as a
// dry-run create returns it (defaulted, with what the built-in admission plugins add, before any webhook
// changed it, since the same-patch webhook knows none of these pods yet), and loads them into the same-patch
// webhook.
func (e *Env) precomputePatches(ctx context.Context, pods []*corev1.Pod) error {
	patches := make([][]byte, len(pods))
	errs := parallel(len(pods), e.Scale.Clients, func(i int) error {
		admitted, err := e.Client.CoreV1().Pods(pods[i].Namespace).Create(ctx, pods[i], metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return fmt.Errorf("dry-run create %s: %w", pods[i].Name, err)
		}
		// What the storage layer sets after admission: the webhook never sees these.
		admitted.UID, admitted.CreationTimestamp, admitted.Generation, admitted.ResourceVersion = "", metav1.Time{}, 0, ""
		admitted.Status = corev1.PodStatus{}
		// On a loaded machine a policy evaluation may pass its deadline: ask again, the patch is what matters.
		for attempt := 1; ; attempt++ {
			if patches[i], err = e.sparkplacePatch(ctx, admitted); err == nil || attempt == 3 {
				return err
			}
		}
	})
	if n, err := firstError(errs); n > 0 {
		return fmt.Errorf("%d patches not computed: %w", n, err)
	}
	byName := make(map[string][]byte, len(pods))
	for i, p := range pods {
		byName[p.Namespace+"/"+p.Name] = patches[i]
	}
	return e.loadSamePatches(ctx, byName)
}
