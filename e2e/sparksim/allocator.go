package sparksim

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Allocator plays a running driver's ExecutorPodsAllocator (Spark 3.5 and 4.0): it keeps a target number of
// executors, one synchronous create at a time, in rounds of BatchSize; a round stops at its first refused
// create (that executor id is spent); after each round it waits BatchDelay (a fixed delay after the round,
// not a rate); a new round starts only once every executor it created before has been seen in a pod
// listing (Spark's snapshot); an executor pod deleted while pending (by sparkplace, a user) is no longer
// counted and is replaced in the next round, as Spark does.
type Allocator struct {
	Client kubernetes.Interface
	App    *App
	// BatchSize is spark.kubernetes.allocation.batch.size. Defaults to Spark's default for App.SparkVersion:
	// 5 up to 3.5, 10 in 4.0-4.1, 20 from 4.2.
	BatchSize int
	// BatchDelay is spark.kubernetes.allocation.batch.delay. Defaults to 1s.
	BatchDelay time.Duration
	// MaxFailures stops Run after this many refused creates (Spark would go on forever). Defaults to the
	// number of executors requested.
	MaxFailures int
	// PodCreationTimeout is how long a created executor may go unseen before it is forgotten (and counted no
	// more), as Spark's max(5 × batch delay, spark.kubernetes.allocation.executor.timeout). Defaults to 10m.
	PodCreationTimeout time.Duration
	// DriverTimeout bounds the wait for the driver (or, in client mode, the pod it runs in) to be running.
	// Defaults to 3 minutes (a loaded scheduler).
	DriverTimeout time.Duration
}

// Result is what Run did.
type Result struct {
	// Created are the executor pods as the API server returned them (after admission), replacements included.
	Created []*corev1.Pod
	// Failures are the refused creates, in order.
	Failures []error
	// Latencies are the durations of the successful create calls: what every executor's start waits on.
	Latencies []time.Duration
	// AllCreated is the time from the first create until the target number of executors first existed.
	AllCreated time.Duration
	// Elapsed is the wall time from the first create until Run returned.
	Elapsed time.Duration
}

// DefaultBatchSize is Spark's spark.kubernetes.allocation.batch.size for a Spark version ("" is 3.0-3.2).
func DefaultBatchSize(version string) int {
	major, minor := 3, 0
	if parts := strings.SplitN(version, ".", 3); len(parts) >= 2 {
		major, _ = strconv.Atoi(parts[0])
		minor, _ = strconv.Atoi(parts[1])
	}
	switch {
	case major < 4:
		return 5
	case major == 4 && minor < 2:
		return 10
	}
	return 20
}

// Run keeps n executors requested until n of them run at once (or ctx is done, or MaxFailures creates
// were refused). It first waits for the driver pod to run (a driver allocates executors only once it
// runs); in client mode for the pod named by App.DriverPodName, if any, which then owns the executors.
// Executor ids start at 1 and grow with every attempt, refused ones included (Spark's counter).
func (al *Allocator) Run(ctx context.Context, n int) (*Result, error) {
	batch, delay, maxFailures := al.BatchSize, al.BatchDelay, al.MaxFailures
	if batch <= 0 {
		batch = DefaultBatchSize(al.App.SparkVersion)
	}
	if delay <= 0 {
		delay = time.Second
	}
	if maxFailures <= 0 {
		maxFailures = n
	}
	owner, err := al.owner(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	start := time.Now()
	finish := func(err error) (*Result, error) {
		res.Elapsed = time.Since(start)
		return res, err
	}
	creationTimeout := al.PodCreationTimeout
	if creationTimeout <= 0 {
		creationTimeout = max(5*delay, 10*time.Minute)
	}
	nextID := 1
	unseen := map[string]time.Time{} // created, not yet in a listing, with when

	selector := fmt.Sprintf("%s=%s,%s=%s", LabelAppSelector, al.App.ID, LabelRole, RoleExecutor)
	for {
		list, err := al.Client.CoreV1().Pods(al.App.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			if ctx.Err() != nil {
				return finish(fmt.Errorf("allocating executors: %w", ctx.Err()))
			}
			return finish(fmt.Errorf("listing executors: %w", err))
		}
		running, live := 0, 0
		for i := range list.Items {
			p := &list.Items[i]
			delete(unseen, p.Name)
			switch {
			case p.DeletionTimestamp != nil, p.Status.Phase == corev1.PodFailed, p.Status.Phase == corev1.PodSucceeded:
			case PodRunning(p):
				running++
				live++
			default:
				live++
			}
		}
		if res.AllCreated == 0 && live >= n {
			res.AllCreated = time.Since(start)
		}
		if running >= n {
			return finish(nil)
		}
		for name, at := range unseen {
			if time.Since(at) > creationTimeout {
				delete(unseen, name)
			}
		}
		if len(unseen) == 0 {
			for range min(batch, n-live) {
				pod := al.App.ExecutorPod(owner, nextID)
				nextID++
				t0 := time.Now()
				created, err := al.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
				if err != nil {
					res.Failures = append(res.Failures, fmt.Errorf("create %s: %w", pod.Name, err))
					if len(res.Failures) >= maxFailures || ctx.Err() != nil {
						return finish(fmt.Errorf("%d executor creates refused, last: %w", len(res.Failures), err))
					}
					break // Spark's round ends at its first refused create
				}
				res.Latencies = append(res.Latencies, time.Since(t0))
				res.Created = append(res.Created, created)
				unseen[created.Name] = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return finish(fmt.Errorf("allocating executors: %w", ctx.Err()))
		case <-time.After(delay):
		}
	}
}

// owner waits for the pod the driver runs in and returns it; nil in client mode without one.
func (al *Allocator) owner(ctx context.Context) (*corev1.Pod, error) {
	name := al.App.DriverName()
	if al.App.ClientMode {
		if name = al.App.DriverPodName; name == "" {
			return nil, nil
		}
	}
	pod, err := WaitForPod(ctx, al.Client, al.App.Namespace, name, al.driverTimeout(), PodRunning)
	if err != nil {
		return nil, fmt.Errorf("driver %s: %w", name, err)
	}
	return pod, nil
}
func (al *Allocator) driverTimeout() time.Duration {
	if al.DriverTimeout > 0 {
		return al.DriverTimeout
	}
	return 3 * time.Minute
}

// PodRunning is a WaitForPod condition: the pod is bound and Running.
func PodRunning(p *corev1.Pod) bool {
	return p.Spec.NodeName != "" && p.Status.Phase == corev1.PodRunning
}

// WaitForPod polls the pod every 100ms until cond holds, and returns it. It fails after timeout, with the
// pod's last state (and scheduling failure, if any) in the error.
func WaitForPod(ctx context.Context, c kubernetes.Interface, namespace, name string, timeout time.Duration, cond func(*corev1.Pod) bool) (*corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last *corev1.Pod
	var lastErr error
	for {
		p, err := c.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			if cond(p) {
				return p, nil
			}
			last = p
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("pod %s/%s: %w (%s)", namespace, name, ctx.Err(), describe(last, lastErr))
		case <-tick.C:
		}
	}
}

// describe summarises why a pod is not there yet.
func describe(p *corev1.Pod, err error) string {
	if p == nil {
		return fmt.Sprintf("last error: %v", err)
	}
	s := fmt.Sprintf("phase %q, node %q", p.Status.Phase, p.Spec.NodeName)
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
			s += fmt.Sprintf(", unschedulable: %s", c.Message)
		}
	}
	return s
}
