package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
)

// DeployMode is spark-submit's --deploy-mode.
type DeployMode string

const (
	// ClusterMode: the driver runs in a spark-role=driver pod, which owns its executors.
	ClusterMode DeployMode = "cluster"
	// ClientMode: the driver runs outside the cluster (a notebook, spark-shell): no driver pod, executors
	// without an owner, each with a fresh local dir.
	ClientMode DeployMode = "client"
)

// BurstResult is the Spark-shaped burst: applications (cluster mode: their drivers over the zones), each
// allocating executors as Spark does.
type BurstResult struct {
	Mode                        DeployMode
	Drivers, ExecutorsPerDriver int
	// Failures are refused executor creates (Spark retries them in its next round).
	Failures     int
	FirstFailure string
	// Latencies of the successful executor creates.
	Latencies []time.Duration
	// Created is the time from the first create to the last, Running from the first create until every
	// executor ran.
	Created, Running time.Duration
	// InAppZone counts running executors in their application's zone: their driver's in cluster mode; in
	// client mode, with no driver pod, the zone most of the application's executors run in (all of them
	// when the application keeps to one zone). OnSpot counts those on spot capacity.
	Executors, InAppZone, OnSpot int
	// CacheHits and CacheLookups are sparkplace's decision-cache counters over the burst (-1 when it has none).
	CacheHits, CacheLookups float64
	// AdmissionMean and AdmissionP99 are sparkplace's own executor admission times (its histogram).
	AdmissionMean, AdmissionP99 time.Duration
}

// Placement is what a pod carries for the scheduler.
type Placement struct {
	NodeSelector map[string]string
	Affinity     *corev1.Affinity
	Tolerations  []corev1.Toleration
	Spread       []corev1.TopologySpreadConstraint
}

// ZonePlacement pairs a driver's and an executor's placement in one zone.
type ZonePlacement struct{ Driver, Executor Placement }

func placementOf(p *corev1.Pod) Placement {
	return Placement{NodeSelector: p.Spec.NodeSelector, Affinity: p.Spec.Affinity, Tolerations: p.Spec.Tolerations, Spread: p.Spec.TopologySpreadConstraints}
}

func (pl Placement) applyTo(p *corev1.Pod) {
	c := (&corev1.Pod{Spec: corev1.PodSpec{
		NodeSelector: pl.NodeSelector, Affinity: pl.Affinity, Tolerations: pl.Tolerations, TopologySpreadConstraints: pl.Spread,
	}}).DeepCopy()
	p.Spec.NodeSelector, p.Spec.Affinity, p.Spec.Tolerations = c.Spec.NodeSelector, c.Spec.Affinity, c.Spec.Tolerations
	p.Spec.TopologySpreadConstraints = c.Spec.TopologySpreadConstraints
}

// decision-cache counters sparkplace exports (absent before it had them).
const (
	metricCacheLookups   = "sparkplace_decision_cache_lookups_total"
	metricAdmissionTimes = "sparkplace_admission_duration_seconds"
)

// MeasureBurst runs Scale.BurstDrivers applications in mode (cluster mode: their drivers round-robin over the
// zones), each allocating Scale.BurstExecutors executors through sparksim's allocator at once, and waits until
// every executor runs. In cluster mode it also returns, by zone, a driver's and an executor's placement as
// sparkplace admitted them, which the scheduling measurement starts from.
func (e *Env) MeasureBurst(ctx context.Context, mode DeployMode) (*BurstResult, map[string]ZonePlacement, error) {
	ns, err := e.newNamespace(ctx, "burst-"+string(mode), Sparkplace)
	if err != nil {
		return nil, nil, err
	}
	res := &BurstResult{Mode: mode, Drivers: e.Scale.BurstDrivers, ExecutorsPerDriver: e.Scale.BurstExecutors}
	apps := make([]*sparksim.App, e.Scale.BurstDrivers)
	for i := range apps {
		apps[i] = sparksim.NewApp(fmt.Sprintf("burst-%d", i+1), ns)
		if mode == ClientMode {
			apps[i].InClientMode("")
			continue
		}
		apps[i].WithDriverZone(e.Zones[i%len(e.Zones)])
		if _, err := e.Client.CoreV1().Pods(ns).Create(ctx, apps[i].DriverPod(), metav1.CreateOptions{}); err != nil {
			return nil, nil, fmt.Errorf("create driver %d: %w", i+1, err)
		}
	}
	before, err := e.scrapeSparkplace(ctx)
	if err != nil {
		return nil, nil, err
	}
	results := make([]*sparksim.Result, len(apps))
	errs := make([]error, len(apps))
	start := time.Now()
	var wg sync.WaitGroup
	for i, app := range apps {
		wg.Go(func() {
			// Batch size and delay: the allocator's defaults, Spark's for the app's version.
			al := sparksim.Allocator{Client: e.Client, App: app}
			results[i], errs[i] = al.Run(ctx, e.Scale.BurstExecutors)
		})
	}
	wg.Wait()
	for i, r := range results {
		if r == nil {
			return nil, nil, fmt.Errorf("application %d: %w", i+1, errs[i])
		}
		res.Latencies = append(res.Latencies, r.Latencies...)
		res.Failures += len(r.Failures)
		if len(r.Failures) > 0 && res.FirstFailure == "" {
			res.FirstFailure = r.Failures[0].Error()
		}
		res.Created = max(res.Created, r.Elapsed)
	}
	after, err := e.scrapeSparkplace(ctx)
	if err != nil {
		return nil, nil, err
	}
	executor := map[string]string{"role": "executor"}
	p99, _ := HistogramQuantile(before, after, metricAdmissionTimes, executor, .99)
	res.AdmissionP99 = time.Duration(p99 * float64(time.Second))
	res.AdmissionMean = time.Duration(HistogramMean(before, after, metricAdmissionTimes, executor) * float64(time.Second))
	res.CacheHits, res.CacheLookups = -1, -1
	if hits, ok := after.Value(metricCacheLookups, map[string]string{"result": "hit"}); ok {
		hits0, _ := before.Value(metricCacheLookups, map[string]string{"result": "hit"})
		all, _ := after.Value(metricCacheLookups, nil)
		all0, _ := before.Value(metricCacheLookups, nil)
		res.CacheHits, res.CacheLookups = hits-hits0, all-all0
	}

	want := e.Scale.BurstDrivers * e.Scale.BurstExecutors
	var pods []corev1.Pod
	err = poll(ctx, 10*time.Minute, fmt.Sprintf("%d executors running", want), func(ctx context.Context) (bool, error) {
		list, err := e.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sparksim.LabelRole + "=" + sparksim.RoleExecutor})
		if err != nil {
			return false, err
		}
		running := 0
		for i := range list.Items {
			if sparksim.PodRunning(&list.Items[i]) {
				running++
			}
		}
		pods = list.Items
		return running >= want, nil
	})
	res.Running = time.Since(start)
	if err != nil {
		return res, nil, err
	}
	zones, capacity, err := e.nodeLabels(ctx)
	if err != nil {
		return res, nil, err
	}
	// The application's zone: its driver's, or where most of its executors run.
	appZone := map[string]string{}
	drivers := map[string]*corev1.Pod{} // by application id
	if mode == ClusterMode {
		for _, app := range apps {
			d, err := e.Client.CoreV1().Pods(ns).Get(ctx, app.DriverName(), metav1.GetOptions{})
			if err != nil {
				return res, nil, err
			}
			drivers[app.ID], appZone[app.ID] = d, zones[d.Spec.NodeName]
		}
	} else {
		appZone = mostCommonZones(pods, zones)
	}
	placements := map[string]ZonePlacement{}
	for i := range pods {
		p := &pods[i]
		res.Executors++
		app := p.Labels[sparksim.LabelAppSelector]
		zone, ok := appZone[app]
		if ok && zones[p.Spec.NodeName] == zone {
			res.InAppZone++
		}
		if capacity[p.Spec.NodeName] == "SPOT" {
			res.OnSpot++
		}
		if _, seen := placements[zone]; !seen && drivers[app] != nil {
			placements[zone] = ZonePlacement{Driver: placementOf(drivers[app]), Executor: placementOf(p)}
		}
	}
	return res, placements, e.deleteNamespace(ctx, ns)
}

// mostCommonZones maps each application id to the zone most of its executors run in.
func mostCommonZones(executors []corev1.Pod, zones map[string]string) map[string]string {
	counts := map[string]map[string]int{}
	for i := range executors {
		app := executors[i].Labels[sparksim.LabelAppSelector]
		if counts[app] == nil {
			counts[app] = map[string]int{}
		}
		counts[app][zones[executors[i].Spec.NodeName]]++
	}
	out := map[string]string{}
	for app, byZone := range counts {
		best := -1
		for zone, n := range byZone {
			if n > best || (n == best && zone < out[app]) {
				out[app], best = zone, n
			}
		}
	}
	return out
}

// nodeLabels maps node names to their zone and EKS capacity type.
func (e *Env) nodeLabels(ctx context.Context) (zones, capacity map[string]string, err error) {
	nodes, err := e.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list nodes: %w", err)
	}
	zones, capacity = map[string]string{}, map[string]string{}
	for _, n := range nodes.Items {
		zones[n.Name] = n.Labels[framework.LabelZone]
		capacity[n.Name] = n.Labels[framework.LabelEKSCapacityType]
	}
	return zones, capacity, nil
}
