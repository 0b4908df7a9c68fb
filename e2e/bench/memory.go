package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
)

// MemoryResult is sparkplace's memory and admission latency at cluster scale.
type MemoryResult struct {
	// Nodes and OtherPods were added to the cluster; SparkPods were then created (drivers and executors).
	Nodes, OtherPods, SparkPods int
	// Before and After are the webhook's memory before the cluster grew, and after.
	Before, After MemorySample
	// GOGC and GOMEMLIMIT are the webhook's Go runtime settings as it reports them (go_gc_gogc_percent,
	// go_gc_gomemlimit_bytes); GoEnv what the benchmark set, from the Deployment.
	GOGC, GOMEMLIMIT float64
	GoEnv            []string
	// CreateP50, CreateP99 are the executor create latencies; AdmissionMean, AdmissionP99 sparkplace's own.
	CreateP50, CreateP99, AdmissionMean, AdmissionP99 time.Duration
	Failures                                          int
}

// MeasureMemory grows the cluster by Scale.MemNodes nodes (not managed by kwok: on 2 cores kwok cannot keep
// 5,000 node leases fresh, and flapping nodes would measure the flapping; they are cordoned, so that no pod
// is bound where no kubelet runs it, which changes nothing for what the webhook caches) and Scale.MemPods
// other pods (never scheduled), then has
// Scale.MemDrivers drivers allocate Scale.MemExecutors executors each, and reads the webhook's memory.
func (e *Env) MeasureMemory(ctx context.Context) (*MemoryResult, error) {
	pid := e.Sparkplace.Process().Pid()
	res := &MemoryResult{}
	var err error
	if res.Before, err = e.sparkplaceMemory(ctx, pid); err != nil {
		return nil, err
	}
	nodes := scaleNodes(e.Zones, e.Scale.MemNodes)
	errs := parallel(len(nodes), e.Scale.Clients, func(i int) error {
		_, err := e.Client.CoreV1().Nodes().Create(ctx, nodes[i], metav1.CreateOptions{})
		return err
	})
	if n, err := firstError(errs); n > 0 {
		return nil, fmt.Errorf("%d node creates failed: %w", n, err)
	}
	res.Nodes = len(nodes)
	other, err := e.newNamespace(ctx, "other", NoWebhook)
	if err != nil {
		return nil, err
	}
	errs = parallel(e.Scale.MemPods, e.Scale.Clients, func(i int) error {
		_, err := e.Client.CoreV1().Pods(other).Create(ctx, otherPod(other, i), metav1.CreateOptions{})
		return err
	})
	if n, err := firstError(errs); n > 0 {
		return nil, fmt.Errorf("%d pod creates failed: %w", n, err)
	}
	res.OtherPods = e.Scale.MemPods
	e.Logf("memory: %d nodes and %d other pods created", res.Nodes, res.OtherPods)

	ns, err := e.newNamespace(ctx, "spark", Sparkplace)
	if err != nil {
		return nil, err
	}
	before, err := e.scrapeSparkplace(ctx)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var latencies []time.Duration
	var wg sync.WaitGroup
	var runErr error
	for i := range e.Scale.MemDrivers {
		app := sparksim.NewApp(fmt.Sprintf("scale-%d", i+1), ns).WithDriverZone(e.Zones[i%len(e.Zones)])
		if _, err := e.Client.CoreV1().Pods(ns).Create(ctx, app.DriverPod(), metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create driver: %w", err)
		}
		wg.Go(func() {
			r, err := (&sparksim.Allocator{Client: e.Client, App: app}).Run(ctx, e.Scale.MemExecutors)
			mu.Lock()
			defer mu.Unlock()
			if r == nil {
				runErr = err
				return
			}
			latencies = append(latencies, r.Latencies...)
			res.Failures += len(r.Failures)
			res.SparkPods += 1 + len(r.Created)
		})
	}
	wg.Wait()
	if runErr != nil {
		return nil, runErr
	}
	after, err := e.scrapeSparkplace(ctx)
	if err != nil {
		return nil, err
	}
	executor := map[string]string{"role": "executor"}
	p99, _ := HistogramQuantile(before, after, metricAdmissionTimes, executor, .99)
	res.AdmissionP99 = time.Duration(p99 * float64(time.Second))
	res.AdmissionMean = time.Duration(HistogramMean(before, after, metricAdmissionTimes, executor) * float64(time.Second))
	res.CreateP50, res.CreateP99 = percentile(latencies, .5), percentile(latencies, .99)
	// Let the informers take in the last events (executors bound, started) before reading memory.
	time.Sleep(5 * time.Second)
	if res.After, err = e.sparkplaceMemory(ctx, pid); err != nil {
		return nil, err
	}
	res.GOGC, res.GOMEMLIMIT, res.GoEnv = res.After.gogc, res.After.memLimit, e.GoEnv
	return res, nil
}

// MemorySample is the webhook's memory at one point.
type MemorySample struct {
	Resident
	// HeapAlloc is go_memstats_heap_alloc_bytes (live objects and garbage not yet collected); NextGC the heap
	// size at which the next collection starts.
	HeapAlloc, NextGC float64
	gogc, memLimit    float64
}

// sparkplaceMemory reads the webhook's resident memory and its Go heap.
func (e *Env) sparkplaceMemory(ctx context.Context, pid int) (MemorySample, error) {
	var s MemorySample
	var err error
	if s.Resident, err = processResident(pid); err != nil {
		return s, err
	}
	m, err := e.scrapeSparkplace(ctx)
	if err != nil {
		return s, err
	}
	for name, dst := range map[string]*float64{
		"go_memstats_heap_alloc_bytes": &s.HeapAlloc, "go_memstats_next_gc_bytes": &s.NextGC,
		"go_gc_gogc_percent": &s.gogc, "go_gc_gomemlimit_bytes": &s.memLimit,
	} {
		v, ok := m.Value(name, nil)
		if !ok {
			return s, fmt.Errorf("sparkplace exports no %s", name)
		}
		*dst = v
	}
	return s, nil
}

// scaleNodes are n nodes of a large EKS cluster over zones: general-purpose on-demand nodes, and Spark's
// on-demand and spot node groups, labelled and tainted like framework.DefaultFleet's.
func scaleNodes(zones []string, n int) []*corev1.Node {
	defaults := framework.DefaultFleet()
	byName := map[string]framework.NodeGroup{}
	for _, g := range defaults.Groups {
		byName[g.Name] = g
	}
	// Of every 10 nodes: 6 general, 1 Spark on-demand, 3 Spark spot.
	shares := []struct {
		from string
		per  int
	}{{framework.GroupSystem, 6}, {framework.GroupOnDemand, 1}, {framework.GroupSpot, 3}}
	perZone := max((n+len(zones)-1)/len(zones), 1)
	var groups []framework.NodeGroup
	left := perZone
	for i, s := range shares {
		g := byName[s.from]
		g.Name = "scale-" + g.Name
		g.Count = perZone * s.per / 10
		if i == len(shares)-1 {
			g.Count = left
		}
		left -= g.Count
		groups = append(groups, g)
	}
	nodes := framework.Fleet{Region: defaults.Region, Zones: zones, Groups: groups}.Nodes()
	nodes = nodes[:min(n, len(nodes))]
	for _, node := range nodes {
		// Not managed by kwok, and cordoned: no kubelet would run a pod bound there (see MeasureMemory).
		delete(node.Annotations, framework.KwokNodeAnnotation)
		node.Spec.Unschedulable = true
	}
	return nodes
}

// otherPod is a web application's pod, as a Deployment makes it: two containers, probes, config; never
// scheduled (no scheduler serves its scheduler name).
func otherPod(ns string, i int) *corev1.Pod {
	app := "web-" + strconv.Itoa(i%50)
	hash := fmt.Sprintf("%010x", i%50*7919)
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s-%s-%05d", app, hash[:10], i), Namespace: ns,
			Labels:      map[string]string{"app.kubernetes.io/name": app, "pod-template-hash": hash, "tier": "frontend"},
			Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
		},
		Spec: corev1.PodSpec{
			SchedulerName: unscheduled,
			Containers: []corev1.Container{
				{
					Name: "app", Image: "registry.example.com/" + app + ":1.4.2",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
					Env: []corev1.EnvVar{
						{Name: "APP_ENV", Value: "production"}, {Name: "LOG_LEVEL", Value: "info"},
						{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						{Name: "DB_HOST", Value: "db.internal.example.com"},
					},
					Resources:      res,
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}},
					VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}},
				},
				{Name: "proxy", Image: "envoyproxy/envoy:v1.31.0", Resources: res, Ports: []corev1.ContainerPort{{Name: "proxy", ContainerPort: 15001}}},
			},
			Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: app + "-config"},
			}}}},
		},
	}
}
