package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
)

// TestFourDriversTwoHundredExecutors runs four applications whose drivers are pinned to four different zones
// (spark.kubernetes.driver.node.selector), each allocating 50 executors in Spark-sized batches (10 every 1s,
// Spark 4.0's defaults) at the same time: 200 executor admissions. Every executor must be admitted (no
// refused create, no webhook error) and run on spot capacity in its own driver's zone, so the four jobs'
// executors stay apart. Wall time and create latencies are logged, not asserted (shared CI machines are noisy).
func TestFourDriversTwoHundredExecutors(t *testing.T) {
	w := requireWebhook(t)
	const (
		drivers      = 4
		perDriver    = 50
		batchSize    = 10
		batchDelay   = time.Second
		runningLimit = 5 * time.Minute
	)
	if len(zones) < drivers {
		t.Fatalf("fleet has %d zones, the test needs %d", len(zones), drivers)
	}
	ctx := context.Background()
	ns := newNamespace(t, nil)
	errorsBefore := admissionCount(t, w, "executor", "error") + admissionCount(t, w, "executor", "denied")

	apps := make([]*sparksim.App, drivers)
	for i := range apps {
		apps[i] = sparksim.NewApp(fmt.Sprintf("etl-%d", i+1), ns).WithDriverZone(zones[i])
		if _, err := cp.Client.CoreV1().Pods(ns).Create(ctx, apps[i].DriverPod(), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create driver %d: %v", i+1, err)
		}
	}
	start := time.Now()
	results := make([]*sparksim.Result, drivers)
	errs := make([]error, drivers)
	var wg sync.WaitGroup
	for i, app := range apps {
		wg.Go(func() {
			al := sparksim.Allocator{Client: cp.Client, App: app, BatchSize: batchSize, BatchDelay: batchDelay}
			results[i], errs[i] = al.Run(ctx, perDriver)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("driver %d: %v", i+1, err)
		}
	}
	var latencies []time.Duration
	var created time.Duration // until every executor of every driver existed
	for i, res := range results {
		created = max(created, res.AllCreated)
		if len(res.Failures) > 0 {
			t.Errorf("driver %d: %d executor creates refused, first: %v", i+1, len(res.Failures), res.Failures[0])
		}
		latencies = append(latencies, res.Latencies...)
	}

	for i, app := range apps {
		driver := waitRunning(t, ns, app.DriverName())
		if driver.zone() != zones[i] || driver.capacity() != "ON_DEMAND" {
			t.Errorf("driver %d on %s (%s, %s), want ON_DEMAND in %s", i+1, driver.Node.Name, driver.zone(), driver.capacity(), zones[i])
		}
		execs := waitAppRunning(t, app, perDriver, runningLimit)
		if len(execs) != perDriver {
			t.Errorf("driver %d has %d executors, want %d", i+1, len(execs), perDriver)
		}
		misplaced := 0
		for _, e := range execs {
			if e.zone() != driver.zone() || e.capacity() != "SPOT" ||
				!slices.Contains([]string{framework.GroupSpot, framework.GroupSpotNVMe}, e.group()) ||
				!slices.Contains(e.rules(t), "zone.executor-follows-driver") {
				misplaced++
				if misplaced <= 5 {
					t.Errorf("executor %s on %s (%s, %s, rules %v), want SPOT in its driver's zone %s by zone.executor-follows-driver",
						e.Pod.Name, e.Node.Name, e.zone(), e.capacity(), e.rules(t), driver.zone())
				}
			}
		}
		if misplaced > 0 {
			t.Errorf("driver %d: %d of %d executors misplaced", i+1, misplaced, len(execs))
		}
	}
	running := time.Since(start)
	if n := admissionCount(t, w, "executor", "error") + admissionCount(t, w, "executor", "denied") - errorsBefore; n != 0 {
		t.Errorf("webhook reports %v executor admissions denied or failed", n)
	}

	slices.Sort(latencies)
	t.Logf("%d executors from %d drivers (batches of %d every %s): all created in %s, all running in %s; "+
		"create latency p50 %s p99 %s max %s",
		len(latencies), drivers, batchSize, batchDelay, created.Round(time.Millisecond), running.Round(time.Millisecond),
		percentile(latencies, 0.50), percentile(latencies, 0.99), percentile(latencies, 1))
}

// percentile of sorted durations, rounded for the log.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)-1) + 0.5)
	return sorted[i].Round(100 * time.Microsecond)
}
