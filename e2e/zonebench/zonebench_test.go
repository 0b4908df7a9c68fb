package zonebench

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
)

var (
	full = flag.Bool("zonebench.full", false, "run at full scale (the README's table): 30 applications of 8 executors within a minute on 2/1/6 spot nodes")
	out  = flag.String("zonebench.out", "", "also write the result tables (Markdown) to this file")
)

// scale sizes one simulation.
type scale struct {
	// spot lists, per zone, the instance type of each spot node.
	spot            map[string][]string
	onDemandPerZone int
	apps, executors int
	// window: every application starts within it, evenly spaced.
	window time.Duration
	// pendingAfter: executors not running this long after the last application started count as Pending.
	pendingAfter time.Duration
	// timeout: the wait for every executor to run ends this long after the last application started.
	timeout time.Duration
}

var (
	// fullScale is the simulation: unequal spot capacity (2 / 1 / 6 nodes of three instance types,
	// 32 vCPU each), 30 applications of 8 one-core executors within a minute (240 cores asked, 280 free).
	fullScale = scale{
		spot: map[string][]string{
			"us-east-1a": {"m5.8xlarge", "m5a.8xlarge"},
			"us-east-1b": {"m5.8xlarge"},
			"us-east-1c": {"m5.8xlarge", "m5a.8xlarge", "m6i.8xlarge", "m5.8xlarge", "m5a.8xlarge", "m6i.8xlarge"},
		},
		onDemandPerZone: 3, apps: 30, executors: 8,
		window: time.Minute, pendingAfter: time.Minute, timeout: 3 * time.Minute,
	}
	// smallScale is what CI runs: the same shape, a few applications, seconds.
	smallScale = scale{
		spot: map[string][]string{
			"us-east-1a": {"m5.8xlarge", "m5a.8xlarge"},
			"us-east-1b": {"m5.8xlarge"},
			"us-east-1c": {"m5.8xlarge", "m5a.8xlarge", "m6i.8xlarge"},
		},
		onDemandPerZone: 1, apps: 4, executors: 4,
		window: 2 * time.Second, pendingAfter: 10 * time.Second, timeout: time.Minute,
	}
)

var zones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}

// Node labels and taints as on EKS managed node groups, which the default policies select on.
var (
	onDemandLabels  = map[string]string{framework.LabelEKSCapacityType: "ON_DEMAND", framework.LabelNodeRole: "spark"}
	spotLabels      = map[string]string{framework.LabelEKSCapacityType: "SPOT", framework.LabelNodeRole: "spark"}
	spotTolerations = []corev1.Toleration{
		{Key: framework.SparkTaint.Key, Operator: corev1.TolerationOpEqual, Value: framework.SparkTaint.Value, Effect: framework.SparkTaint.Effect},
		{Key: framework.SpotTaint.Key, Operator: corev1.TolerationOpEqual, Value: framework.SpotTaint.Value, Effect: framework.SpotTaint.Effect},
	}
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("zonebench: skipped in -short mode")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestZones runs the simulation and the reclaim drill. It asserts that they run, not what they measure:
// the figures are the README's, from `make bench-zones`.
func TestZones(t *testing.T) {
	sc := smallScale
	if *full {
		sc = fullScale
	}
	ctx := context.Background()
	cp, err := framework.Start(ctx, framework.Options{Logf: t.Logf})
	if err != nil {
		t.Fatalf("start control plane (make control-plane builds it): %v", err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})
	createFleet(t, cp, sc)
	webhook := startWebhook(t, cp)

	b := &bench{t: t, cp: cp, sc: sc}
	var rows []result
	for _, v := range []variant{
		{name: "no zone rule"},
		{name: "EMR on EKS recipe (executors' pod affinity to the driver's zone)", emr: true},
		{name: "sparkplace", sparkplace: true},
	} {
		res, apps := b.run(ctx, v)
		rows = append(rows, res)
		if v.sparkplace {
			drill := b.reclaim(ctx, apps)
			report(t, sc, rows, drill, webhook)
			return
		}
		b.cleanup(ctx, res.namespace)
	}
}

type variant struct {
	name       string
	emr        bool // the baseline pods carry EMR's required pod affinity
	sparkplace bool // the namespace is served by sparkplace's webhook
}

type result struct {
	variant   string
	namespace string
	// pending: executors not running pendingAfter after the last application started.
	pending int
	// allRunning: from the first driver's creation until every executor ran; 0 when they never all did.
	allRunning time.Duration
	left       int // executors not running when the wait ended
	// inDriverZone: running executors in their driver's zone / running executors; crossZonePairs: pairs of
	// one application's running executors in different zones / all such pairs.
	inDriverZone, crossZonePairs float64
}

type bench struct {
	t  *testing.T
	cp *framework.ControlPlane
	sc scale
}

func createFleet(t *testing.T, cp *framework.ControlPlane, sc scale) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, zone := range zones {
		groups := []framework.NodeGroup{{
			Name: "ondemand", Count: sc.onDemandPerZone, InstanceType: "m5.2xlarge", CPU: "7910m", Memory: "30310Mi", Pods: "58",
			Labels: onDemandLabels, Taints: []corev1.Taint{framework.SparkTaint},
		}}
		count := map[string]int{}
		for _, it := range sc.spot[zone] {
			count[it]++
		}
		for _, it := range slices.Sorted(maps.Keys(count)) {
			groups = append(groups, framework.NodeGroup{
				Name: "spot-" + strings.ReplaceAll(it, ".", "-"), Count: count[it], InstanceType: it,
				CPU: "31850m", Memory: "124644Mi", Pods: "234",
				Labels: spotLabels, Taints: []corev1.Taint{framework.SparkTaint, framework.SpotTaint},
			})
		}
		if err := cp.CreateFleet(ctx, framework.Fleet{Region: "us-east-1", Zones: []string{zone}, Groups: groups}); err != nil {
			t.Fatalf("create fleet in %s: %v", zone, err)
		}
	}
}

// startWebhook builds and starts sparkplace's webhook with its default policies, for namespaces labelled
// zonebench=sparkplace only: the baselines' pods are placed by what they carry.
func startWebhook(t *testing.T, cp *framework.ControlPlane) *framework.Webhook {
	t.Helper()
	root, err := framework.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(cp.Dir, "sparkplace")
	build := exec.Command("go", "build", "-o", bin, "./cmd/sparkplace")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sparkplace: %v\n%s", err, out)
	}
	w, err := cp.StartWebhook(context.Background(), framework.WebhookOptions{
		Command:           []string{bin, "webhook"},
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"zonebench": "sparkplace"}},
	})
	if err != nil {
		t.Fatalf("start webhook: %v", err)
	}
	return w
}

// run starts the applications of one variant in a namespace of their own and measures them.
func (b *bench) run(ctx context.Context, v variant) (result, []*sparksim.App) {
	t, sc := b.t, b.sc
	label := "baseline"
	if v.sparkplace {
		label = "sparkplace"
	}
	ns := fmt.Sprintf("zonebench-%d", time.Now().UnixNano()%1e6)
	if _, err := b.cp.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"zonebench": label}}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	waitServiceAccount(t, b.cp, ns)

	var apps []*sparksim.App
	for i := range sc.apps {
		app := sparksim.NewApp(fmt.Sprintf("job-%02d", i), ns)
		app.DriverCores, app.DriverMemoryMiB = 1, 2048
		app.ExecutorCores, app.ExecutorMemoryMiB = 1, 1024
		if v.sparkplace {
			// What `sparkplace submit` sets from spark.executor.* (spark-submit users: spark.kubernetes.driver.annotation.*).
			app.DriverAnnotations = map[string]string{
				"sparkplace.io/executors": fmt.Sprint(sc.executors), "sparkplace.io/executor-cpu": "1", "sparkplace.io/executor-memory": "1408Mi",
			}
		}
		apps = append(apps, app)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(apps))
	for i, app := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sleepUntil(ctx, start.Add(sc.window*time.Duration(i)/time.Duration(sc.apps))); err != nil {
				errs <- err
				return
			}
			errs <- b.runApp(ctx, app, v)
		}()
	}
	lastStart := start.Add(sc.window * time.Duration(sc.apps-1) / time.Duration(sc.apps))
	res := result{variant: v.name, namespace: ns}
	want := sc.apps * sc.executors
	pendingAt, deadline := lastStart.Add(sc.pendingAfter), lastStart.Add(sc.timeout)
	counted := false
	for {
		running := b.runningExecutors(ctx, ns)
		now := time.Now()
		if !counted && !now.Before(pendingAt) {
			res.pending, counted = want-running, true
		}
		if running == want && res.allRunning == 0 {
			res.allRunning = now.Sub(start)
		}
		if (counted && res.allRunning > 0) || now.After(deadline) {
			res.left = want - running
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("%s: %v", v.name, err)
		}
	}
	res.inDriverZone, res.crossZonePairs = b.zoneShares(ctx, ns, apps)
	t.Logf("%s: %d pending after %s, all running after %s (%d left), %.0f%% in the driver's zone, %.0f%% cross-zone pairs",
		v.name, res.pending, sc.pendingAfter, res.allRunning.Round(100*time.Millisecond), res.left, 100*res.inDriverZone, 100*res.crossZonePairs)
	return res, apps
}

// runApp plays spark-submit and the driver: it creates the driver pod, waits until it runs, then creates
// the executors as Spark 3.5's allocator does (rounds of 5, one second apart).
func (b *bench) runApp(ctx context.Context, app *sparksim.App, v variant) error {
	pods := b.cp.Client.CoreV1().Pods(app.Namespace)
	driver := app.DriverPod()
	if !v.sparkplace {
		driver.Spec.NodeSelector = map[string]string{framework.LabelEKSCapacityType: "ON_DEMAND", framework.LabelNodeRole: "spark"}
		driver.Spec.Tolerations = spotTolerations[:1]
	}
	if _, err := pods.Create(ctx, driver, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create driver %s: %w", driver.Name, err)
	}
	running, err := sparksim.WaitForPod(ctx, b.cp.Client, app.Namespace, app.DriverName(), 3*time.Minute, sparksim.PodRunning)
	if err != nil {
		return fmt.Errorf("driver %s: %w", app.DriverName(), err)
	}
	for id := 1; id <= b.sc.executors; id++ {
		if id > 1 && (id-1)%5 == 0 {
			time.Sleep(time.Second)
		}
		exec := app.ExecutorPod(running, id)
		if !v.sparkplace {
			exec.Spec.NodeSelector = spotLabels
			exec.Spec.Tolerations = spotTolerations
		}
		if v.emr {
			// EMR on EKS's single-AZ pod template: required pod affinity to the driver's zone.
			exec.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{sparksim.LabelAppSelector: app.ID, sparksim.LabelRole: sparksim.RoleDriver}},
				TopologyKey:   framework.LabelZone,
			}}}}
		}
		if _, err := pods.Create(ctx, exec, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create executor %s: %w", exec.Name, err)
		}
	}
	return nil
}

func (b *bench) runningExecutors(ctx context.Context, ns string) int {
	list, err := b.cp.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sparksim.LabelRole + "=" + sparksim.RoleExecutor})
	if err != nil {
		return 0
	}
	n := 0
	for i := range list.Items {
		if sparksim.PodRunning(&list.Items[i]) {
			n++
		}
	}
	return n
}

// placement is where one application's pods run: the driver's zone, and each running executor's node.
type placement struct {
	driverZone string
	executors  map[string]string // executor pod name → node name
}

// placements reads where each application's pods run, and every node's zone and instance type.
func (b *bench) placements(ctx context.Context, ns string, apps []*sparksim.App) (map[string]*placement, map[string]*corev1.Node) {
	t := b.t
	nodeList, err := b.cp.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list nodes: %v", err)
	}
	nodes := map[string]*corev1.Node{}
	for i := range nodeList.Items {
		nodes[nodeList.Items[i].Name] = &nodeList.Items[i]
	}
	podList, err := b.cp.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	byApp := map[string]*placement{}
	for _, app := range apps {
		byApp[app.ID] = &placement{executors: map[string]string{}}
	}
	for i := range podList.Items {
		p := &podList.Items[i]
		pl := byApp[p.Labels[sparksim.LabelAppSelector]]
		if pl == nil || !sparksim.PodRunning(p) {
			continue
		}
		switch p.Labels[sparksim.LabelRole] {
		case sparksim.RoleDriver:
			if n := nodes[p.Spec.NodeName]; n != nil {
				pl.driverZone = n.Labels[framework.LabelZone]
			}
		case sparksim.RoleExecutor:
			pl.executors[p.Name] = p.Spec.NodeName
		}
	}
	return byApp, nodes
}

func (b *bench) zoneShares(ctx context.Context, ns string, apps []*sparksim.App) (inDriverZone, crossPairs float64) {
	byApp, nodes := b.placements(ctx, ns, apps)
	var inZone, execs, cross, pairs int
	for _, pl := range byApp {
		var zs []string
		for _, node := range pl.executors {
			z := nodes[node].Labels[framework.LabelZone]
			zs = append(zs, z)
			execs++
			if z == pl.driverZone {
				inZone++
			}
		}
		for i := range zs {
			for j := i + 1; j < len(zs); j++ {
				pairs++
				if zs[i] != zs[j] {
					cross++
				}
			}
		}
	}
	return ratio(inZone, execs), ratio(cross, pairs)
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// drillRow is the reclaim of one instance type in one zone.
type drillRow struct {
	zone, instanceType string
	pools              int // spot instance types in the zone
	apps               int // applications with executors in the zone
	maxLost, meanLost  float64
}

// reclaim plays a spot reclaim in every zone with executors running: every node of the zone's instance type
// that holds the most executors (the worst case) is deleted at once, and each application with executors
// there loses those on the deleted nodes.
func (b *bench) reclaim(ctx context.Context, apps []*sparksim.App) []drillRow {
	byApp, nodes := b.placements(ctx, apps[0].Namespace, apps)
	var rows []drillRow
	for _, zone := range zones {
		perType := map[string]int{}
		types := map[string]bool{}
		for _, n := range nodes {
			if n.Labels[framework.LabelZone] == zone && n.Labels[framework.LabelEKSCapacityType] == "SPOT" {
				types[n.Labels[framework.LabelInstanceType]] = true
			}
		}
		for _, pl := range byApp {
			for _, node := range pl.executors {
				if n := nodes[node]; n.Labels[framework.LabelZone] == zone {
					perType[n.Labels[framework.LabelInstanceType]]++
				}
			}
		}
		if len(perType) == 0 {
			continue
		}
		victim := ""
		for _, it := range slices.Sorted(maps.Keys(perType)) {
			if victim == "" || perType[it] > perType[victim] {
				victim = it
			}
		}
		row := drillRow{zone: zone, instanceType: victim, pools: len(types)}
		var sum float64
		for _, pl := range byApp {
			lost, here := 0, 0
			for _, node := range pl.executors {
				n := nodes[node]
				if n.Labels[framework.LabelZone] != zone {
					continue
				}
				here++
				if n.Labels[framework.LabelInstanceType] == victim {
					lost++
				}
			}
			if here == 0 {
				continue
			}
			share := ratio(lost, len(pl.executors))
			row.apps++
			sum += share
			row.maxLost = max(row.maxLost, share)
		}
		row.meanLost = sum / float64(row.apps)
		for name, n := range nodes {
			if n.Labels[framework.LabelZone] == zone && n.Labels[framework.LabelInstanceType] == victim && n.Labels[framework.LabelEKSCapacityType] == "SPOT" {
				if err := b.cp.Client.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					b.t.Errorf("reclaim %s: %v", name, err)
				}
			}
		}
		b.t.Logf("reclaim of %s in %s (%d spot pools): %d applications, at most %.0f%% of a job's executors lost (mean %.0f%%)",
			victim, zone, row.pools, row.apps, 100*row.maxLost, 100*row.meanLost)
		rows = append(rows, row)
	}
	return rows
}

// cleanup deletes a variant's namespace and waits until its pods are gone, so the next variant finds the
// fleet empty.
func (b *bench) cleanup(ctx context.Context, ns string) {
	zero := int64(0)
	if err := b.cp.Client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
		b.t.Fatalf("delete pods of %s: %v", ns, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		list, err := b.cp.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil && len(list.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("pods of %s not gone after 2 minutes", ns)
		}
		time.Sleep(500 * time.Millisecond)
	}
	_ = b.cp.Client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
}

func waitServiceAccount(t *testing.T, cp *framework.ControlPlane, ns string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := cp.Client.CoreV1().ServiceAccounts(ns).Get(context.Background(), "default", metav1.GetOptions{}); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s: no default ServiceAccount", ns)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func sleepUntil(ctx context.Context, at time.Time) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(at)):
		return nil
	}
}

// report prints the result tables, and writes them to -zonebench.out.
func report(t *testing.T, sc scale, rows []result, drill []drillRow, w *framework.Webhook) {
	var b strings.Builder
	fmt.Fprintf(&b, "%d applications × %d executors (1 core, 1408Mi) started within %s; spot nodes per zone: ", sc.apps, sc.executors, sc.window)
	for _, z := range zones {
		fmt.Fprintf(&b, "%s %d ", z, len(sc.spot[z]))
	}
	fmt.Fprintf(&b, "(32 vCPU, of %s)\n\n", strings.Join(instanceTypes(sc), ", "))
	fmt.Fprintf(&b, "| placement | executors Pending after %s | all executors running after | executors in their driver's zone | cross-zone executor pairs |\n|---|---|---|---|---|\n", sc.pendingAfter)
	for _, r := range rows {
		all := fmt.Sprintf("%.1f s", r.allRunning.Seconds())
		if r.allRunning == 0 {
			all = fmt.Sprintf("never (%d still Pending after %s)", r.left, sc.timeout+sc.window)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %.0f%% | %.0f%% |\n", r.variant, r.pending, all, 100*r.inDriverZone, 100*r.crossZonePairs)
	}
	fmt.Fprintf(&b, "\nReclaim drill (sparkplace's jobs running; every spot node of the zone's most used instance type deleted):\n\n")
	fmt.Fprintf(&b, "| zone | spot pools | instance type reclaimed | jobs hit | largest share of a job's executors lost | mean |\n|---|---|---|---|---|---|\n")
	for _, d := range drill {
		fmt.Fprintf(&b, "| %s | %d | %s | %d | %.0f%% | %.0f%% |\n", d.zone, d.pools, d.instanceType, d.apps, 100*d.maxLost, 100*d.meanLost)
	}
	t.Log("\n" + b.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
	if text, err := w.Metrics(context.Background()); err == nil {
		for _, line := range strings.Split(text, "\n") {
			if strings.HasPrefix(line, "sparkplace_driver_zone_choices_total") {
				t.Log(line)
			}
		}
	}
}

func instanceTypes(sc scale) []string {
	seen := map[string]bool{}
	for _, ts := range sc.spot {
		for _, it := range ts {
			seen[it] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}
