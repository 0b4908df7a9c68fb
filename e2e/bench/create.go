package bench

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
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
	// Parallel are the latencies of the creates made by Scale.Clients clients at once, ParallelWall the time
	// from the first to the last, Created how many succeeded.
	Parallel     []time.Duration
	ParallelWall time.Duration
	Created      int
	// APIServerCPU and WebhookCPU are the CPU time the kube-apiserver and the webhook process spent during the
	// parallel creates.
	APIServerCPU, WebhookCPU time.Duration
	// HandlerMean and ServerMean are, for sparkplace, the mean of its own admission histogram (the handler)
	// and of controller-runtime's webhook latency (decoding the review, the handler, encoding the answer)
	// over the parallel creates.
	HandlerMean, ServerMean time.Duration
	// Failed creates (serial and parallel); Placed pods carry sparkplace's placement annotation.
	Failed, Placed int
	FirstFailure   error
}

// CreatesPerSecond is the parallel throughput.
func (r *CreateRound) CreatesPerSecond() float64 {
	return float64(r.Created) / r.ParallelWall.Seconds()
}

// MeasureCreates measures executor creates through each of Variants, Scale.Reps times, the variants in a
// rotated order in each repetition so that a trend in the machine's load hits them alike.
func (e *Env) MeasureCreates(ctx context.Context) ([]CreateRound, error) {
	var rounds []CreateRound
	for rep := range e.Scale.Reps {
		for k := range Variants {
			v := Variants[(rep+k)%len(Variants)]
			r, err := e.createRound(ctx, rep, v)
			if err != nil {
				return rounds, fmt.Errorf("create measurement, repetition %d, %s: %w", rep+1, v, err)
			}
			e.Logf("create rep %d %-10s serial p50 %s p99 %s, %.0f creates/s, API server %.2f ms CPU/create, webhook %.2f ms, %d failed",
				rep+1, v, percentile(r.Serial, .5).Round(10*time.Microsecond), percentile(r.Serial, .99).Round(10*time.Microsecond),
				r.CreatesPerSecond(), ms(r.APIServerCPU)/float64(r.Created), ms(r.WebhookCPU)/float64(r.Created), r.Failed)
			rounds = append(rounds, *r)
		}
	}
	return rounds, nil
}

func (e *Env) createRound(ctx context.Context, rep int, v Variant) (_ *CreateRound, err error) {
	ns, err := e.newNamespace(ctx, "create-"+string(v), v)
	if err != nil {
		return nil, err
	}
	defer func() {
		if derr := e.deleteNamespace(ctx, ns); err == nil {
			err = derr
		}
	}()
	// One driver, in the first zone for every variant, so that sparkplace's patches are alike in all rounds.
	app := sparksim.NewApp("bench-create", ns).WithDriverZone(e.Zones[0])
	if _, err := e.Client.CoreV1().Pods(ns).Create(ctx, app.DriverPod(), metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create driver: %w", err)
	}
	driver, err := sparksim.WaitForPod(ctx, e.Client, ns, app.DriverName(), 3*time.Minute, sparksim.PodRunning)
	if err != nil {
		return nil, err
	}
	n := e.Scale.Serial + e.Scale.Parallel
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		pods[i] = app.ExecutorPod(driver, i+1)
		pods[i].Spec.SchedulerName = unscheduled
	}
	if v == Sparkplace || v == SamePatch {
		if err := e.waitDriverZoneKnown(ctx, pods[0]); err != nil {
			return nil, err
		}
	}
	if v == SamePatch {
		if err := e.precomputePatches(ctx, pods); err != nil {
			return nil, err
		}
	}
	r := &CreateRound{Variant: v, Rep: rep}
	var mu sync.Mutex
	create := func(pod *corev1.Pod) (time.Duration, error) {
		start := time.Now()
		created, err := e.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		took := time.Since(start)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			r.Failed++
			if r.FirstFailure == nil {
				r.FirstFailure = fmt.Errorf("create %s: %w", pod.Name, err)
			}
			return took, err
		}
		if _, ok := created.Annotations[placement.AnnotationKey]; ok {
			r.Placed++
		}
		return took, nil
	}
	for _, pod := range pods[:e.Scale.Serial] {
		if took, err := create(pod); err == nil {
			r.Serial = append(r.Serial, took)
		}
	}

	apiPID, webhookPID := e.apiServerPID(), e.webhookPID(v)
	api0, err := processCPU(apiPID)
	if err != nil {
		return nil, err
	}
	var wh0 time.Duration
	if webhookPID != 0 {
		if wh0, err = processCPU(webhookPID); err != nil {
			return nil, err
		}
	}
	var metrics0 Metrics
	if v == Sparkplace {
		if metrics0, err = e.scrapeSparkplace(ctx); err != nil {
			return nil, err
		}
	}
	parallelPods := pods[e.Scale.Serial:]
	latencies := make([]time.Duration, len(parallelPods))
	start := time.Now()
	errs := parallel(len(parallelPods), e.Scale.Clients, func(i int) error {
		var err error
		latencies[i], err = create(parallelPods[i])
		return err
	})
	r.ParallelWall = time.Since(start)
	api1, err := processCPU(apiPID)
	if err != nil {
		return nil, err
	}
	r.APIServerCPU = api1 - api0
	if webhookPID != 0 {
		wh1, err := processCPU(webhookPID)
		if err != nil {
			return nil, err
		}
		r.WebhookCPU = wh1 - wh0
	}
	if v == Sparkplace {
		metrics1, err := e.scrapeSparkplace(ctx)
		if err != nil {
			return nil, err
		}
		seconds := func(name string, labels map[string]string) time.Duration {
			return time.Duration(HistogramMean(metrics0, metrics1, name, labels) * float64(time.Second))
		}
		r.HandlerMean = seconds(metricAdmissionTimes, map[string]string{"role": "executor"})
		r.ServerMean = seconds("controller_runtime_webhook_latency_seconds", map[string]string{"webhook": framework.WebhookPath})
	}
	for i, err := range errs {
		if err == nil {
			r.Parallel = append(r.Parallel, latencies[i])
			r.Created++
		}
	}
	return r, nil
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
