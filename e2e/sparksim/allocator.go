package sparksim

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Allocator plays a running driver's ExecutorPodsAllocator.
type Allocator struct {
	Client kubernetes.Interface
	App    *App
	// BatchSize is spark.kubernetes.allocation.batch.size. Defaults to 10 (Spark 4.0-4.1; 5 before, 20 from 4.2).
	BatchSize int
	// BatchDelay is spark.kubernetes.allocation.batch.delay. Defaults to 1s.
	BatchDelay time.Duration
	// MaxFailures stops Run after this many refused creates. Defaults to the number of executors requested.
	MaxFailures int
	// DriverTimeout bounds the wait for the driver to be running. Defaults to 3 minutes (a loaded scheduler).
	DriverTimeout time.Duration
}

// Result is what Run did.
type Result struct {
	// Created are the executor pods as the API server returned them (after admission).
	Created []*corev1.Pod
	// Failures are the refused creates, in order (Spark logs them and retries with a new executor id).
	Failures []error
	// Latencies are the durations of the successful create calls: what every executor's start waits on.
	Latencies []time.Duration
	// Elapsed is the wall time from the first create to the last.
	Elapsed time.Duration
}

// Run waits until the driver pod is Running, as a driver only allocates executors once it runs, then creates n
// executors the way Spark does: one synchronous create at a time, BatchSize per round, a round every
// BatchDelay. Executor ids start at 1 and grow with every attempt, refused ones included (Spark's counter).
func (al *Allocator) Run(ctx context.Context, n int) (*Result, error) {
	batch, delay, maxFailures := al.BatchSize, al.BatchDelay, al.MaxFailures
	if batch <= 0 {
		batch = 10
	}
	if delay <= 0 {
		delay = time.Second
	}
	if maxFailures <= 0 {
		maxFailures = n
	}
	driver, err := WaitForPod(ctx, al.Client, al.App.Namespace, al.App.DriverName(), al.driverTimeout(), PodRunning)
	if err != nil {
		return nil, fmt.Errorf("driver %s: %w", al.App.DriverName(), err)
	}
	res := &Result{}
	start := time.Now()
	nextID := 1
	for len(res.Created) < n {
		round := time.Now()
		for i := 0; i < batch && len(res.Created) < n; i++ {
			pod := al.App.ExecutorPod(driver, nextID)
			nextID++
			t0 := time.Now()
			created, err := al.Client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
			if err != nil {
				res.Failures = append(res.Failures, fmt.Errorf("create %s: %w", pod.Name, err))
				if len(res.Failures) >= maxFailures || ctx.Err() != nil {
					res.Elapsed = time.Since(start)
					return res, fmt.Errorf("%d executor creates refused, last: %w", len(res.Failures), err)
				}
				continue
			}
			res.Latencies = append(res.Latencies, time.Since(t0))
			res.Created = append(res.Created, created)
		}
		if len(res.Created) >= n {
			break
		}
		select {
		case <-ctx.Done():
			res.Elapsed = time.Since(start)
			return res, fmt.Errorf("allocating executors: %w", ctx.Err())
		case <-time.After(time.Until(round.Add(delay))):
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
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
