package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/sparkplace/sparkplace/charts"
	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
	"github.com/sparkplace/sparkplace/placement"
)

// The chart test's release: its own name and namespace, so that its cluster-wide objects (webhook
// configuration, ClusterRoles) never meet the suite's webhook or the self-signed overlay's test.
const (
	chartRelease   = "e2e-sparkplace"
	chartNamespace = "sparkplace-chart-e2e"
	chartFullname  = chartRelease // the release name contains "sparkplace"
	chartWebhook   = chartFullname + "-webhook"
)

// TestChartInstall renders the chart with its default values (plus namespace.create, the `helm template |
// kubectl apply --server-side` path), applies it with server-side apply, runs the webhook the chart's
// Deployment describes (its args, its ConfigMaps as files, its ServiceAccount's token) as a local process, and
// creates a Spark application through the real API server: the chart-installed webhook places it. Then it
// drives the failures the alerts are about (a policy error, a failed reload, the webhook unreachable with Fail
// and with Ignore) and checks that every metric the chart's dashboard and alerts name is exported by the
// webhook or the API server.
func TestChartInstall(t *testing.T) {
	requireWebhook(t) // the suite built the binary
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// The suite's webhook stays out of the namespace: only the chart's places its pods.
	ns := newNamespace(t, map[string]string{ownWebhookLabel: "chart"})
	inst := installChart(ctx, t, ns, nil)

	t.Run("the webhook places a Spark application", func(t *testing.T) {
		app := sparksim.NewApp("chart", ns)
		driver, err := cp.Client.CoreV1().Pods(ns).Create(ctx, app.DriverPod(), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create the driver: %v", err)
		}
		exec, err := cp.Client.CoreV1().Pods(ns).Create(ctx, app.ExecutorPod(driver, 1), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create an executor: %v", err)
		}
		for _, p := range []*corev1.Pod{driver, exec} {
			if _, ok := p.Annotations[placement.AnnotationKey]; !ok {
				t.Errorf("%s has no placement annotation: %v", p.Name, p.Annotations)
			}
		}
		// The chart's config (preset eks) decides the capacity label.
		if got := driver.Spec.NodeSelector[framework.LabelEKSCapacityType]; got != "ON_DEMAND" {
			t.Errorf("driver node selector %v, want %s=ON_DEMAND", driver.Spec.NodeSelector, framework.LabelEKSCapacityType)
		}
		for _, role := range []string{"driver", "executor"} {
			if got := metricValue(ctx, t, inst.replica, "sparkplace_admissions_total", map[string]string{"role": role, "result": "mutated"}); got != 1 {
				t.Errorf("the chart's webhook mutated %v %s pods, want 1", got, role)
			}
		}
		running, err := sparksim.WaitForPod(ctx, cp.Client, ns, driver.Name, 2*time.Minute, sparksim.PodRunning)
		if err != nil {
			t.Fatal(err)
		}
		if g := nodeGroup(getNode(t, running.Spec.NodeName)); g != framework.GroupOnDemand && g != framework.GroupOnDemandNVMe {
			t.Errorf("driver runs on node group %q, want on-demand", g)
		}
	})

	t.Run("every metric of the dashboard and the alerts is exported", func(t *testing.T) {
		exported := map[string]bool{"up": true} // up is Prometheus' own, per scrape target
		addFamilies := func(families map[string]*dto.MetricFamily) {
			for name, f := range families {
				exported[name] = true
				if f.GetType() == dto.MetricType_HISTOGRAM {
					exported[name+"_bucket"], exported[name+"_sum"], exported[name+"_count"] = true, true, true
				}
			}
		}
		// An executor pinned to its driver's zone that no node there can take (free capacity is not checked at
		// admission): with the chart's config changed to zone.bound=1s it is relaxed a second later.
		strandExecutor(ctx, t, inst, ns)
		// A policy that fails at evaluation for drivers (the ConfigMap's mount updated in place): the driver
		// is refused (onPolicyError deny) and counted as a policy error.
		reloads := func(result string) float64 {
			return metricValue(ctx, t, inst.replica, "sparkplace_policy_reloads_total", map[string]string{"result": result})
		}
		before := reloads("success")
		copyFile(t, filepath.Join("..", "policies", "testdata", "conflict", "conflict.rego"), filepath.Join(inst.policyDir, "conflict.rego"))
		waitFor(ctx, t, "the conflicting policy to load", func() bool { return reloads("success") > before })
		if _, err := cp.Client.CoreV1().Pods(ns).Create(ctx, sparksim.NewApp("chart-conflict", ns).DriverPod(), metav1.CreateOptions{}); err == nil {
			t.Error("driver admitted although its policy fails (onPolicyError deny)")
		}
		// A policy that does not compile: refused, the last good bundle stays.
		copyFile(t, filepath.Join("..", "policies", "testdata", "broken", "zone.rego"), filepath.Join(inst.policyDir, "broken.rego"))
		waitFor(ctx, t, "the broken policy to be refused", func() bool { return reloads("failure") > 0 })
		addFamilies(scrape(ctx, t, "http://"+inst.replica.metrics+"/metrics"))

		// The NVMe node agent the chart installs (nodeAgent.enabled), run as its DaemonSet's pod would.
		addFamilies(runNodeAgent(ctx, t))

		// The job-run controller and the emr-containers API the chart installs, run as their pods would; the
		// API is asked once without a signature.
		addFamilies(runJobsPart(ctx, t, inst))

		// The webhook unreachable: with failurePolicy Fail the API server refuses the Spark pod...
		_ = inst.replica.proc.Stop(10 * time.Second)
		if _, err := cp.Client.CoreV1().Pods(ns).Create(ctx, sparksim.NewApp("chart-down", ns).DriverPod(), metav1.CreateOptions{}); err == nil {
			t.Error("driver admitted with the webhook down and failurePolicy Fail")
		}
		// ...and with Ignore (the chart's value, applied again) admits it unplaced.
		ignore, err := charts.Render(charts.Options{Values: map[string]any{"webhook": map[string]any{"failurePolicy": "Ignore"}},
			ReleaseName: chartRelease, Namespace: chartNamespace})
		if err != nil {
			t.Fatal(err)
		}
		adaptChartWebhook(t, ignore, ns, inst.replica.port)
		serverSideApply(ctx, t, []*unstructured.Unstructured{find(t, ignore, "MutatingWebhookConfiguration", chartFullname)})
		// The API server's webhook configuration cache learns of the change asynchronously: until it has, the
		// create is refused as under Fail (and creates nothing), so it is retried.
		var refused error
		waitFor(ctx, t, "the driver to be admitted with the webhook down and failurePolicy Ignore", func() bool {
			_, refused = cp.Client.CoreV1().Pods(ns).Create(ctx, sparksim.NewApp("chart-ignore", ns).DriverPod(), metav1.CreateOptions{})
			if refused != nil {
				t.Logf("driver refused, the configuration change not yet seen: %v", refused)
			}
			return refused == nil
		})
		addFamilies(scrape(ctx, t, "/metrics"))

		for _, vals := range []map[string]any{
			{"monitoring": monitoringOn},
			{"monitoring": monitoringOn, "webhook": map[string]any{"onPolicyError": "allow", "failurePolicy": "Ignore"}},
		} {
			objs, err := charts.Render(charts.Options{Values: vals})
			if err != nil {
				t.Fatal(err)
			}
			queries, err := charts.Queries(objs)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range queries {
				e, err := charts.Parse(q.Expr)
				if err != nil {
					t.Errorf("%s: %v", q.Source, err)
					continue
				}
				for _, name := range charts.MetricNames(e) {
					if !exported[name] {
						t.Errorf("%s uses %s, which neither the webhook nor the API server exports", q.Source, name)
					}
				}
			}
			t.Logf("%d queries checked against %d exported metric names", len(queries), len(exported))
		}
		var ours []string
		for name := range exported {
			if strings.HasPrefix(name, "sparkplace_") {
				ours = append(ours, name)
			}
		}
		slices.Sort(ours)
		t.Logf("sparkplace metrics the webhook, node agent, controller and API exported: %s", strings.Join(ours, " "))
	})
}

// strandExecutor renders the chart with config.zone.bound=1s, updates the mounted config with it, and
// creates an application whose executor asks for more CPU than any node has: it waits on its zone pin until
// the webhook relaxes the application (counted in sparkplace_placement_relaxations_total) and replaces it.
func strandExecutor(ctx context.Context, t *testing.T, inst *chartInstall, ns string) {
	t.Helper()
	objs, err := charts.Render(charts.Options{Values: map[string]any{"config": map[string]any{"preset": "eks", "zone": map[string]any{"bound": "1s"}}},
		ReleaseName: chartRelease, Namespace: chartNamespace})
	if err != nil {
		t.Fatal(err)
	}
	reloads := func() float64 {
		return metricValue(ctx, t, inst.replica, "sparkplace_policy_reloads_total", map[string]string{"result": "success"})
	}
	before := reloads()
	writeConfigMap(t, objs, chartFullname+"-config", filepath.Dir(inst.configFile))
	waitFor(ctx, t, "the config with zone.bound=1s to load", func() bool { return reloads() > before })

	app := sparksim.NewApp("chart-strand", ns)
	driver, err := cp.Client.CoreV1().Pods(ns).Create(ctx, app.DriverPod(), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create the driver: %v", err)
	}
	if _, err := sparksim.WaitForPod(ctx, cp.Client, ns, driver.Name, 2*time.Minute, sparksim.PodRunning); err != nil {
		t.Fatal(err)
	}
	exec := app.ExecutorPod(driver, 1)
	exec.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("1000")
	exec.Spec.Containers[0].Resources.Limits = nil
	if _, err := cp.Client.CoreV1().Pods(ns).Create(ctx, exec, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the oversized executor: %v", err)
	}
	waitFor(ctx, t, "the stranded executor's application to be relaxed", func() bool {
		return metricValue(ctx, t, inst.replica, "sparkplace_placement_relaxations_total", nil) > 0
	})
}

// runNodeAgent applies what nodeAgent.enabled adds to the chart, runs one agent as the DaemonSet describes it
// (its args, its ServiceAccount's token, a local directory for the NVMe root, an NVMe node's name) and
// returns the metrics it exports.
func runNodeAgent(ctx context.Context, t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	const agentNamespace = chartNamespace + "-node-agent"
	render := func(vals map[string]any) []*unstructured.Unstructured {
		objs, err := charts.Render(charts.Options{Values: vals, ReleaseName: chartRelease, Namespace: chartNamespace})
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	base := map[string]bool{}
	for _, o := range render(nil) {
		base[o.GetKind()+"/"+o.GetName()] = true
	}
	var added []*unstructured.Unstructured
	for _, o := range render(map[string]any{"nodeAgent": map[string]any{"enabled": true, "namespace": agentNamespace}}) {
		if !base[o.GetKind()+"/"+o.GetName()] {
			added = append(added, o)
		}
	}
	slices.SortStableFunc(added, func(a, b *unstructured.Unstructured) int {
		return boolRank(a.GetKind() != "Namespace") - boolRank(b.GetKind() != "Namespace")
	})
	t.Cleanup(func() { deleteObjects(t, added) })
	serverSideApply(ctx, t, added)

	var ds appsv1.DaemonSet
	toTyped(t, find(t, added, "DaemonSet", chartFullname+"-node-agent"), &ds)
	nodes, err := cp.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(ds.Spec.Template.Spec.NodeSelector).String()})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("no node matches the agent's nodeSelector %v: %v", ds.Spec.Template.Spec.NodeSelector, err)
	}
	ports, err := framework.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	metrics := "127.0.0.1:" + strconv.Itoa(ports[0])
	c := ds.Spec.Template.Spec.Containers[0]
	root := t.TempDir()
	var args []string
	for _, a := range c.Args {
		name, _, _ := strings.Cut(a, "=")
		switch name {
		case "--root":
			a = name + "=" + root // the hostPath, mounted at the same path
		case "--metrics-bind-address":
			a = name + "=" + metrics
		}
		args = append(args, a)
	}
	args = append(args, "--kubeconfig="+serviceAccountKubeconfig(ctx, t, agentNamespace, ds.Spec.Template.Spec.ServiceAccountName))
	bin := os.Getenv("SPARKPLACE_BIN")
	if bin == "" {
		bin = filepath.Join(cp.Dir, "sparkplace")
	}
	proc, err := cp.StartProcess("sparkplace-chart-node-agent", bin, args, []string{"NODE_NAME=" + nodes.Items[0].Name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node agent log:\n%s", proc.Tail(4000))
		}
		_ = proc.Stop(10 * time.Second)
	})
	var families map[string]*dto.MetricFamily
	waitFor(ctx, t, "the node agent's metrics", func() bool {
		resp, err := http.Get("http://" + metrics + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		families = scrape(ctx, t, "http://"+metrics+"/metrics")
		return families["sparkplace_nodeagent_errors_total"] != nil
	})
	return families
}

// runJobsPart runs the chart's job-run controller and emr-containers API as their Deployments describe them
// (args, POD_NAMESPACE, their ServiceAccounts' tokens) on local ports, sends the API one unsigned request,
// and returns the metrics both export.
func runJobsPart(ctx context.Context, t *testing.T, inst *chartInstall) map[string]*dto.MetricFamily {
	t.Helper()
	ports, err := framework.FreePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	bin := os.Getenv("SPARKPLACE_BIN")
	if bin == "" {
		bin = filepath.Join(cp.Dir, "sparkplace")
	}
	families := map[string]*dto.MetricFamily{}
	for _, c := range []struct {
		deployment, metrics string
		local               map[string]string
		ready               string // a metric that shows it runs
		poke                func()
	}{
		{deployment: chartFullname + "-controller", metrics: addr(0),
			local: map[string]string{"--metrics-bind-address": addr(0), "--health-probe-bind-address": addr(1)}, ready: "sparkplace_jobruns"},
		{deployment: chartFullname + "-api", metrics: addr(2),
			local: map[string]string{"--metrics-bind-address": addr(2), "--listen": addr(3)}, ready: "sparkplace_api_auth_failures_total",
			poke: func() {
				if resp, err := http.Get("http://" + addr(3) + "/virtualclusters"); err == nil {
					resp.Body.Close()
				}
			}},
	} {
		var d appsv1.Deployment
		toTyped(t, find(t, inst.objs, "Deployment", c.deployment), &d)
		args := localWebhookArgs(t, d.Spec.Template.Spec.Containers[0], c.local)
		args = append(args, "--kubeconfig="+serviceAccountKubeconfig(ctx, t, chartNamespace, d.Spec.Template.Spec.ServiceAccountName))
		proc, err := cp.StartProcess("sparkplace-chart-"+c.deployment, bin, args, []string{"POD_NAMESPACE=" + chartNamespace})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s log:\n%s", c.deployment, proc.Tail(4000))
			}
			_ = proc.Stop(10 * time.Second)
		})
		waitFor(ctx, t, c.deployment+"'s metrics", func() bool {
			if c.poke != nil {
				c.poke()
			}
			resp, err := http.Get("http://" + c.metrics + "/metrics")
			if err != nil {
				return false
			}
			resp.Body.Close()
			fs := scrape(ctx, t, "http://"+c.metrics+"/metrics")
			if fs[c.ready] == nil {
				return false
			}
			maps.Copy(families, fs)
			return true
		})
	}
	return families
}

// monitoringOn turns on every monitoring object of the chart.
var monitoringOn = map[string]any{
	"serviceMonitor": map[string]any{"enabled": true}, "prometheusRule": map[string]any{"enabled": true}, "dashboard": map[string]any{"enabled": true},
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test when ctx ends first.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// chartInstall is the chart applied to the API server and the webhook process it describes.
type chartInstall struct {
	objs    []*unstructured.Unstructured
	replica replica
	// configFile and policyDir are the ConfigMaps as the kubelet would mount them.
	configFile, policyDir string
}

// installChart renders the chart with values (over namespace.create=true), adapts it to a cluster without
// Service networking (see adaptChartWebhook) and applies it, then starts one webhook replica as the
// Deployment's pod would run, and waits until it is ready. Everything is removed when the test ends.
func installChart(ctx context.Context, t *testing.T, testNamespace string, values map[string]any) *chartInstall {
	t.Helper()
	vals := map[string]any{"namespace": map[string]any{"create": true}}
	for k, v := range values {
		vals[k] = v
	}
	objs, err := charts.Render(charts.Options{Values: vals, ReleaseName: chartRelease, Namespace: chartNamespace})
	if err != nil {
		t.Fatal(err)
	}
	// The Namespace goes first, as Helm orders it.
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		return boolRank(a.GetKind() != "Namespace") - boolRank(b.GetKind() != "Namespace")
	})
	ports, err := framework.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	inst := &chartInstall{objs: objs, replica: replica{
		port: ports[0], metrics: "127.0.0.1:" + strconv.Itoa(ports[1]), health: "127.0.0.1:" + strconv.Itoa(ports[2]),
	}}
	adaptChartWebhook(t, objs, testNamespace, inst.replica.port)
	// The CRDs stay: they are the job-run tests' too, and a CRD being deleted cannot be applied again.
	t.Cleanup(func() {
		deleteObjects(t, slices.DeleteFunc(slices.Clone(objs), func(o *unstructured.Unstructured) bool { return o.GetKind() == "CustomResourceDefinition" }))
	})
	serverSideApply(ctx, t, objs)
	waitDeploymentPods(ctx, t, chartNamespace)

	var d appsv1.Deployment
	toTyped(t, find(t, objs, "Deployment", chartWebhook), &d)
	args := localWebhookArgs(t, d.Spec.Template.Spec.Containers[0], map[string]string{
		"--port":                      strconv.Itoa(inst.replica.port),
		"--metrics-bind-address":      inst.replica.metrics,
		"--health-probe-bind-address": inst.replica.health,
	})
	args = mountConfigMaps(t, objs, d.Spec.Template.Spec, args)
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			inst.configFile = v
		}
		if v, ok := strings.CutPrefix(a, "--policy-dir="); ok {
			inst.policyDir = v
		}
	}
	if inst.configFile == "" || inst.policyDir == "" {
		t.Fatalf("the chart's webhook args %q lack --config or --policy-dir", args)
	}
	args = append(args, "--kubeconfig="+serviceAccountKubeconfig(ctx, t, chartNamespace, chartWebhook),
		"--bind-address=127.0.0.1", "--cert-extra-hosts=127.0.0.1")
	bin := os.Getenv("SPARKPLACE_BIN")
	if bin == "" {
		bin = filepath.Join(cp.Dir, "sparkplace") // where TestMain built it
	}
	inst.replica.proc, err = cp.StartProcess("sparkplace-chart", bin, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chart webhook log:\n%s", inst.replica.proc.Tail(4000))
		}
		_ = inst.replica.proc.Stop(10 * time.Second)
	})
	waitReady(ctx, t, inst.replica)
	return inst
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// adaptChartWebhook points the chart's webhook at the local replica by URL (this cluster has no Service
// networking) and limits it to the test's namespace; everything else stays as rendered.
func adaptChartWebhook(t *testing.T, objs []*unstructured.Unstructured, testNamespace string, port int) {
	t.Helper()
	cfg := find(t, objs, "MutatingWebhookConfiguration", chartFullname)
	webhooks, _, _ := unstructured.NestedSlice(cfg.Object, "webhooks")
	w := webhooks[0].(map[string]any)
	unstructured.RemoveNestedField(w, "clientConfig", "service")
	_ = unstructured.SetNestedField(w, fmt.Sprintf("https://127.0.0.1:%d%s", port, framework.WebhookPath), "clientConfig", "url")
	exprs, _, _ := unstructured.NestedSlice(w, "namespaceSelector", "matchExpressions")
	exprs = append(exprs, map[string]any{"key": "kubernetes.io/metadata.name", "operator": "In", "values": []any{testNamespace}})
	_ = unstructured.SetNestedSlice(w, exprs, "namespaceSelector", "matchExpressions")
	_ = unstructured.SetNestedSlice(cfg.Object, webhooks, "webhooks")
}

// localWebhookArgs is the container's command line for a local process: the flags in local replaced (the
// ports), $(VAR) expanded from the container's env as the kubelet does, every other
// flag kept, so the binary checks that the chart passes only flags it knows.
func localWebhookArgs(t *testing.T, c corev1.Container, local map[string]string) []string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			env[e.Name] = chartNamespace
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		default:
			t.Fatalf("env %s: no local value for %+v", e.Name, e.ValueFrom)
		}
	}
	var out []string
	replaced := map[string]bool{}
	for _, a := range c.Args {
		name, _, _ := strings.Cut(a, "=")
		if v, ok := local[name]; ok {
			a = name + "=" + v
			replaced[name] = true
		}
		for k, v := range env {
			a = strings.ReplaceAll(a, "$("+k+")", v)
		}
		out = append(out, a)
	}
	for name := range local {
		if !replaced[name] {
			t.Fatalf("the chart's webhook args %q have no %s", c.Args, name)
		}
	}
	return out
}

// mountConfigMaps does what the kubelet does for the pod's ConfigMap volumes: each is written to a local
// directory, and args naming a path under its mountPath name the same path under that directory. Any other
// volume a flag points into cannot be run locally.
func mountConfigMaps(t *testing.T, objs []*unstructured.Unstructured, spec corev1.PodSpec, args []string) []string {
	t.Helper()
	dir := t.TempDir()
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	out := slices.Clone(args)
	for _, m := range spec.Containers[0].VolumeMounts {
		v := volumes[m.Name]
		local := filepath.Join(dir, m.Name)
		switch {
		case v.ConfigMap != nil:
			writeConfigMap(t, objs, v.ConfigMap.Name, local)
		case v.EmptyDir != nil:
			continue
		}
		for i, a := range out {
			name, value, ok := strings.Cut(a, "=")
			if !ok || (value != m.MountPath && !strings.HasPrefix(value, m.MountPath+"/")) {
				continue
			}
			if v.ConfigMap == nil {
				t.Fatalf("%s points into volume %s, which is no ConfigMap", a, m.Name)
			}
			out[i] = name + "=" + local + strings.TrimPrefix(value, m.MountPath)
		}
	}
	return out
}

// writeConfigMap writes the data of the rendered ConfigMap name into dir, one file per key, as a volume mount.
func writeConfigMap(t *testing.T, objs []*unstructured.Unstructured, name, dir string) {
	t.Helper()
	var cm corev1.ConfigMap
	toTyped(t, find(t, objs, "ConfigMap", name), &cm)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for file, data := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("the chart renders no %s/%s", kind, name)
	return nil
}

func toTyped(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatalf("%s/%s: %v", u.GetKind(), u.GetName(), err)
	}
}

// metricValue is the value of the sample of name whose labels include want (0 when there is none).
func metricValue(ctx context.Context, t *testing.T, r replica, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := scrape(ctx, t, "http://"+r.metrics+"/metrics")[name]
	if !ok {
		return 0
	}
	var sum float64
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if match {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return sum
}

// scrape fetches Prometheus text from url (an http:// address, or the API server's "/metrics" path through
// the admin client) and parses it into metric families.
func scrape(ctx context.Context, t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	var body []byte
	var err error
	if strings.HasPrefix(url, "/") {
		body, err = cp.Client.CoreV1().RESTClient().Get().AbsPath(url).DoRaw(ctx)
	} else {
		var req *http.Request
		if req, err = http.NewRequestWithContext(ctx, http.MethodGet, url, nil); err == nil {
			var resp *http.Response
			if resp, err = http.DefaultClient.Do(req); err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
		}
	}
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the metrics of %s: %v", url, err)
	}
	return families
}
