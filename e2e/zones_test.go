package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
	"github.com/sparkplace/sparkplace/placement"
)

// zoneEnv is a test's own corner of the cluster: a namespace served by its own sparkplace webhook (with the
// test's zone config), and nodes only that webhook's pods go to (labelled and tainted noderole=<role>, which
// its isolation config selects and tolerates, and the suite's pods do not).
type zoneEnv struct {
	ns      string
	role    string
	webhook *framework.Webhook
}

// zoneConfig is the zone section of a test webhook's --config.
type zoneConfig struct {
	topologyKey, mode, bound string
}

// newZoneEnv creates the namespace, the fleets (their groups isolated by the env's role) and the webhook.
func newZoneEnv(t *testing.T, role string, zc zoneConfig, fleets ...framework.Fleet) *zoneEnv {
	t.Helper()
	main := requireWebhook(t)
	ctx := context.Background()
	env := &zoneEnv{ns: newNamespace(t, map[string]string{ownWebhookLabel: role}), role: role}
	taint := corev1.Taint{Key: framework.LabelNodeRole, Value: role, Effect: corev1.TaintEffectNoSchedule}
	for i := range fleets {
		f := &fleets[i]
		for j := range f.Groups {
			g := &f.Groups[j]
			g.Name = role + "-" + g.Name
			g.Labels = mergeLabels(g.Labels, map[string]string{framework.LabelNodeRole: role})
			g.Taints = append(g.Taints, taint)
		}
		if err := cp.CreateFleet(ctx, *f); err != nil {
			t.Fatalf("create nodes: %v", err)
		}
		t.Cleanup(func() { _ = cp.DeleteFleet(context.Background(), *f) })
	}
	if zc.topologyKey == "" {
		zc.topologyKey = framework.LabelZone
	}
	if zc.mode == "" {
		zc.mode = "bounded"
	}
	if zc.bound == "" {
		zc.bound = "2m"
	}
	config := fmt.Sprintf(`zone: {topologyKey: %q, mode: %s, bound: %s}
isolation:
  nodeSelector: {noderole: %s}
  tolerations: [{key: noderole, operator: Equal, value: %s, effect: NoSchedule}]
`, zc.topologyKey, zc.mode, zc.bound, role, role)
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	name := "sparkplace-" + role
	w, err := cp.StartWebhook(ctx, framework.WebhookOptions{
		Command:           main.Command(),
		Args:              []string{"--config", file},
		Name:              name,
		WebhookName:       role + ".sparkplace.io",
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": env.ns}},
	})
	if err != nil {
		t.Fatalf("start the test's webhook: %v", err)
	}
	t.Cleanup(func() {
		_ = cp.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = w.Stop()
	})
	env.webhook = w
	return env
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range []map[string]string{a, b} {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// Node groups of the zone tests' own fleets (their names get the env's role as prefix).
var (
	onDemandGroup = framework.NodeGroup{Name: "od", Count: 1, InstanceType: "m5.2xlarge", CPU: "7910m", Memory: "30310Mi", Pods: "58",
		Labels: map[string]string{framework.LabelEKSCapacityType: "ON_DEMAND"}}
	spotGroup = framework.NodeGroup{Name: "spot", Count: 1, InstanceType: "m5.4xlarge", CPU: "15890m", Memory: "59843Mi", Pods: "234",
		Labels: map[string]string{framework.LabelEKSCapacityType: "SPOT"}, Taints: []corev1.Taint{framework.SpotTaint}}
	// tinySpotGroup has room for one 1-core executor.
	tinySpotGroup = framework.NodeGroup{Name: "tiny", Count: 1, InstanceType: "t3.medium", CPU: "1500m", Memory: "7Gi", Pods: "17",
		Labels: map[string]string{framework.LabelEKSCapacityType: "SPOT"}, Taints: []corev1.Taint{framework.SpotTaint}}
)

// allocate runs the app's simulated driver until n executors run (failing the test after 4 minutes) and
// returns them as placed.
func allocate(t *testing.T, app *sparksim.App, n int) []placed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	al := sparksim.Allocator{Client: cp.Client, App: app}
	if _, err := al.Run(ctx, n); err != nil {
		t.Fatalf("allocating %d executors: %v (%s)", n, err, describeExecutors(t, app))
	}
	return runningExecutors(t, app)
}

// runningExecutors lists the app's running executors with their nodes.
func runningExecutors(t *testing.T, app *sparksim.App) []placed {
	t.Helper()
	list, err := cp.Client.CoreV1().Pods(app.Namespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: sparksim.LabelAppSelector + "=" + app.ID + "," + sparksim.LabelRole + "=" + sparksim.RoleExecutor,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []placed
	for i := range list.Items {
		if p := &list.Items[i]; sparksim.PodRunning(p) && p.DeletionTimestamp == nil {
			out = append(out, placed{Pod: p, Node: getNode(t, p.Spec.NodeName)})
		}
	}
	return out
}

// describeExecutors says where the app's executors are, for failure messages.
func describeExecutors(t *testing.T, app *sparksim.App) string {
	list, err := cp.Client.CoreV1().Pods(app.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: sparksim.LabelAppSelector + "=" + app.ID})
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, p := range list.Items {
		s := fmt.Sprintf("%s %s on %q", p.Name, p.Status.Phase, p.Spec.NodeName)
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
				s += ": " + c.Message
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// strandedExecutors lists the app's executors the scheduler could not place, oldest first.
func strandedExecutors(t *testing.T, app *sparksim.App) []corev1.Pod {
	t.Helper()
	list, err := cp.Client.CoreV1().Pods(app.Namespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: sparksim.LabelAppSelector + "=" + app.ID + "," + sparksim.LabelRole + "=" + sparksim.RoleExecutor,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonUnschedulable && p.DeletionTimestamp == nil {
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, func(a, b corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	return out
}

// explanation decodes a pod's placement annotation.
func explanation(t *testing.T, p *corev1.Pod) placement.Explanation {
	t.Helper()
	var e placement.Explanation
	if err := json.Unmarshal([]byte(p.Annotations[placement.AnnotationKey]), &e); err != nil {
		t.Fatalf("pod %s: annotation %q: %v", p.Name, p.Annotations[placement.AnnotationKey], err)
	}
	return e
}

func zonesOf(ps []placed, key string) []string {
	var out []string
	for _, p := range ps {
		if z := p.Node.Labels[key]; !slices.Contains(out, z) {
			out = append(out, z)
		}
	}
	slices.Sort(out)
	return out
}

// TestClientModeExecutorsKeepTogether: a client-mode application (spark-shell, a notebook outside the
// cluster): no driver pod, no ownerReference. Every executor runs, all in one zone.
func TestClientModeExecutorsKeepTogether(t *testing.T) {
	requireWebhook(t)
	t.Parallel()
	app := sparksim.NewApp("shell", newNamespace(t, nil)).InClientMode("")
	execs := allocate(t, app, 6)
	if len(execs) != 6 {
		t.Fatalf("%d executors run, want 6", len(execs))
	}
	if z := zonesOf(execs, framework.LabelZone); len(z) != 1 {
		t.Errorf("executors in zones %v, want one", z)
	}
	for _, e := range execs {
		if e.capacity() != "SPOT" || !slices.Contains(e.rules(t), "zone.executors-stay-together") {
			t.Errorf("executor %s on %s (%s), rules %v: want spot, kept together", e.Pod.Name, e.Node.Name, e.capacity(), e.rules(t))
		}
	}
}

// TestNotebookOwnedExecutorsFollowTheNotebook: a Jupyter pod without spark-role runs the driver
// (spark.kubernetes.driver.pod.name names it), so Spark makes it the executors' owner: they run in its zone.
func TestNotebookOwnedExecutorsFollowTheNotebook(t *testing.T) {
	requireWebhook(t)
	t.Parallel()
	ns := newNamespace(t, nil)
	app := sparksim.NewApp("notebook", ns).InClientMode("jupyter-alice")
	const zone = "us-east-1c"
	if _, err := cp.Client.CoreV1().Pods(ns).Create(context.Background(), app.NotebookPod(map[string]string{framework.LabelZone: zone}), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create the notebook pod: %v", err)
	}
	execs := allocate(t, app, 3)
	for _, e := range execs {
		if e.zone() != zone || e.capacity() != "SPOT" || !slices.Contains(e.rules(t), "zone.executor-follows-driver") {
			t.Errorf("executor %s in %s (%s), rules %v; want spot in the notebook's zone %s", e.Pod.Name, e.zone(), e.capacity(), e.rules(t), zone)
		}
	}
}

// TestExecutorsRunOnNodesWithoutZoneLabels: bare metal or kubeadm nodes carry no zone label; executors are
// not pinned (a term no node can meet would strand them) and the annotation says why.
func TestExecutorsRunOnNodesWithoutZoneLabels(t *testing.T) {
	t.Parallel()
	env := newZoneEnv(t, "zt-unzoned", zoneConfig{}, framework.Fleet{Zones: []string{"rack1", "rack2"}, Unzoned: true,
		Groups: []framework.NodeGroup{onDemandGroup, spotGroup}})
	app := sparksim.NewApp("bare-metal", env.ns)
	if _, err := cp.Client.CoreV1().Pods(env.ns).Create(context.Background(), app.DriverPod(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	execs := allocate(t, app, 3)
	for _, e := range execs {
		ex := explanation(t, e.Pod)
		if e.capacity() != "SPOT" || !slices.Contains(ex.Rules, "zone.driver-zone-unknown") || len(ex.Notes) == 0 || !strings.Contains(ex.Notes[0], "has no label topology.kubernetes.io/zone") {
			t.Errorf("executor %s on %s (%s), annotation %+v; want spot, unpinned, saying why", e.Pod.Name, e.Node.Name, e.capacity(), ex)
		}
	}
}

// TestZoneIDTopologyKey: with zone.topologyKey topology.k8s.aws/zone-id, executors follow the zone id of
// their driver's node.
func TestZoneIDTopologyKey(t *testing.T) {
	t.Parallel()
	ids := map[string]string{"us-east-1a": "use1-az4", "us-east-1b": "use1-az6"}
	env := newZoneEnv(t, "zt-zoneid", zoneConfig{topologyKey: framework.LabelZoneID},
		framework.Fleet{Region: "us-east-1", Zones: []string{"us-east-1a", "us-east-1b"}, ZoneIDs: ids, Groups: []framework.NodeGroup{onDemandGroup, spotGroup}})
	app := sparksim.NewApp("zone-id", env.ns).WithDriverZone("us-east-1b")
	if _, err := cp.Client.CoreV1().Pods(env.ns).Create(context.Background(), app.DriverPod(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	execs := allocate(t, app, 3)
	for _, e := range execs {
		if got := e.Node.Labels[framework.LabelZoneID]; got != "use1-az6" || !slices.Contains(e.rules(t), "zone.executor-follows-driver") {
			t.Errorf("executor %s in zone id %q, rules %v; want the driver's use1-az6", e.Pod.Name, got, e.rules(t))
		}
		req := e.Pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions
		if !slices.ContainsFunc(req, func(r corev1.NodeSelectorRequirement) bool {
			return r.Key == framework.LabelZoneID && slices.Equal(r.Values, []string{"use1-az6"})
		}) {
			t.Errorf("executor %s: required terms %v, want %s In [use1-az6]", e.Pod.Name, req, framework.LabelZoneID)
		}
	}
}

// TestNoSchedulableSpotNodeInTheDriversZone: the spot nodes of the driver's zone are cordoned when its
// executors are admitted; a required term to that zone could never be met, so the zone is only preferred
// and the executors run on spot capacity elsewhere. No unsatisfiable term was added.
func TestNoSchedulableSpotNodeInTheDriversZone(t *testing.T) {
	t.Parallel()
	fleet := framework.Fleet{Region: "us-east-1", Zones: []string{"us-east-1a", "us-east-1c"}, Groups: []framework.NodeGroup{onDemandGroup, spotGroup}}
	env := newZoneEnv(t, "zt-cordoned", zoneConfig{}, fleet)
	ctx := context.Background()
	cordoned := env.role + "-spot-us-east-1c-1"
	node, err := cp.Client.CoreV1().Nodes().Get(ctx, cordoned, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Spec.Unschedulable = true
	if _, err := cp.Client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("cordon %s: %v", cordoned, err)
	}
	app := sparksim.NewApp("cordoned", env.ns).WithDriverZone("us-east-1c")
	if _, err := cp.Client.CoreV1().Pods(env.ns).Create(ctx, app.DriverPod(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	execs := allocate(t, app, 3)
	for _, e := range execs {
		ex := explanation(t, e.Pod)
		if e.capacity() != "SPOT" || e.zone() != "us-east-1a" || !slices.Contains(ex.Rules, "zone.relaxed-no-schedulable-node") {
			t.Errorf("executor %s on %s (%s, %s), annotation %+v; want spot in us-east-1a, the zone only preferred", e.Pod.Name, e.Node.Name, e.zone(), e.capacity(), ex)
		}
	}
	if n := webhookMetric(t, env.webhook, "sparkplace_unsatisfiable_required_terms_total"); n != 0 {
		t.Errorf("sparkplace_unsatisfiable_required_terms_total = %v, want 0", n)
	}
}

// TestFullZoneIsRelaxedWithinTheBound: the spot nodes of the driver's zone exist but have room for one
// executor. In zone.mode bounded (bound shortened to 5s) the executors that wait on the zone pin are
// replaced once the bound has passed, their replacements only prefer the zone, and every executor of the
// job runs; the annotation and the metrics say why. In strict mode they stay pending and are counted.
func TestFullZoneIsRelaxedWithinTheBound(t *testing.T) {
	fleets := func() []framework.Fleet {
		return []framework.Fleet{
			{Region: "us-east-1", Zones: []string{"us-east-1a"}, Groups: []framework.NodeGroup{onDemandGroup, tinySpotGroup}},
			{Region: "us-east-1", Zones: []string{"us-east-1b"}, Groups: []framework.NodeGroup{spotGroup}},
		}
	}
	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		env := newZoneEnv(t, "zt-bounded", zoneConfig{mode: "bounded", bound: "5s"}, fleets()...)
		app := sparksim.NewApp("full-zone", env.ns).WithDriverZone("us-east-1a")
		if _, err := cp.Client.CoreV1().Pods(env.ns).Create(context.Background(), app.DriverPod(), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		execs := allocate(t, app, 3)
		relaxed := 0
		for _, e := range execs {
			ex := explanation(t, e.Pod)
			switch e.zone() {
			case "us-east-1a":
				if !slices.Contains(ex.Rules, "zone.executor-follows-driver") {
					t.Errorf("executor %s in the driver's zone without the zone rule: %+v", e.Pod.Name, ex)
				}
			default:
				relaxed++
				if !slices.Contains(ex.Rules, "zone.relaxed-after-bound") || len(ex.Notes) == 0 || !strings.Contains(ex.Notes[0], "waited longer than 5s") ||
					e.Pod.Labels["sparkplace.io/zone-relaxed"] != "capacity" {
					t.Errorf("executor %s in %s: annotation %+v, labels %v; want it relaxed after the bound, saying so", e.Pod.Name, e.zone(), ex, e.Pod.Labels)
				}
			}
			if e.capacity() != "SPOT" {
				t.Errorf("executor %s on %s capacity", e.Pod.Name, e.capacity())
			}
		}
		if relaxed != 2 {
			t.Errorf("%d executors run outside the full zone, want 2 (one fits in it)", relaxed)
		}
		// Only this test's webhook serves its namespace, so only it sweeps there: it counts the one relaxation.
		if n := webhookMetric(t, env.webhook, `sparkplace_placement_relaxations_total{reason="capacity"}`); n != 1 {
			t.Errorf("sparkplace_placement_relaxations_total{reason=capacity} = %v, want 1 (one application relaxed)", n)
		}
	})
	t.Run("strict", func(t *testing.T) {
		t.Parallel()
		env := newZoneEnv(t, "zt-strict", zoneConfig{mode: "strict", bound: "5s"}, fleets()...)
		app := sparksim.NewApp("full-zone-strict", env.ns).WithDriverZone("us-east-1a")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if _, err := cp.Client.CoreV1().Pods(env.ns).Create(ctx, app.DriverPod(), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = (&sparksim.Allocator{Client: cp.Client, App: app}).Run(ctx, 3) }()
		// Wait until two of the app's executors wait on their zone pin, past the bound, and the gauge (which
		// counts every such executor the webhook's cache holds, other tests' too) counts them.
		deadline := time.Now().Add(4 * time.Minute)
		for {
			stranded := strandedExecutors(t, app)
			if len(stranded) == 2 && time.Since(stranded[0].CreationTimestamp.Time) > 10*time.Second &&
				webhookMetric(t, env.webhook, `sparkplace_executors_pending_placement{reason="zone"}`) >= 2 &&
				len(strandedExecutors(t, app)) == 2 {
				for _, p := range stranded {
					if p.Labels["sparkplace.io/zone-strictness"] != "strict" || p.Labels["sparkplace.io/zone-relaxed"] != "" {
						t.Errorf("stranded executor %s labels %v; want zone-strictness strict, not relaxed", p.Name, p.Labels)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("two executors never waited on the zone pin, counted by the gauge (%s)", describeExecutors(t, app))
			}
			time.Sleep(500 * time.Millisecond)
		}
		running := runningExecutors(t, app)
		if len(running) != 1 || running[0].zone() != "us-east-1a" {
			t.Errorf("%d executors run (%s), want the one that fits in us-east-1a", len(running), describeExecutors(t, app))
		}
	})
}
