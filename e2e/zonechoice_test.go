package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
)

// sizeHint is what the submitter puts on a driver of 8 one-core executors (spark.executor.memory 1g).
var sizeHint = map[string]string{"sparkplace.io/executors": "8", "sparkplace.io/executor-cpu": "1", "sparkplace.io/executor-memory": "1408Mi"}

// TestDriverZoneOnScaledToZeroFleet serves a namespace with a webhook whose spot executors select a capacity
// label no node carries yet, as a Karpenter NodePool or a node group at min 0 whose spot fleet is scaled to
// zero: no zone has free spot capacity, so the driver's zone comes from the configured hints, else round robin.
func TestDriverZoneOnScaledToZeroFleet(t *testing.T) {
	main := requireWebhook(t)
	cases := map[string]struct {
		config  string
		drivers int
		// wantZones are the zones the drivers run in, in order; wantRule the zone rule they carry.
		wantZones func([]string) bool
		wantRule  string
	}{
		"capacity hints pick the zone the autoscaler can grow most": {
			config:    "driverZone: {zones: {us-east-1b: {cpu: '256', memory: 1Ti}, us-east-1d: {cpu: '16', memory: 64Gi}}}",
			drivers:   1,
			wantZones: func(z []string) bool { return slices.Equal(z, []string{"us-east-1b"}) },
			wantRule:  "zone.driver-hint",
		},
		"round robin over the zones without hints": {
			drivers: len(zones),
			wantZones: func(z []string) bool {
				distinct := slices.Clone(z)
				slices.Sort(distinct)
				return len(slices.Compact(distinct)) == len(zones)
			},
			wantRule: "zone.driver-round-robin",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			ns := newNamespace(t, map[string]string{ownWebhookLabel: "zone-choice"})
			config := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(config, []byte("capacity: {spot: SCALED-TO-ZERO}\n"+tc.config), 0o644); err != nil {
				t.Fatal(err)
			}
			configName := "sparkplace-" + ns
			w, err := cp.StartWebhook(ctx, framework.WebhookOptions{
				Command:           main.Command(),
				Args:              []string{"--config", config},
				Name:              configName,
				WebhookName:       "zone-choice.sparkplace.io",
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			})
			if err != nil {
				t.Fatalf("start the webhook: %v", err)
			}
			t.Cleanup(func() {
				_ = cp.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), configName, metav1.DeleteOptions{})
				_ = w.Stop()
			})

			var apps []*sparksim.App
			for range tc.drivers {
				app := sparksim.NewApp("zone-choice", ns)
				app.DriverAnnotations = sizeHint
				if _, err := cp.Client.CoreV1().Pods(ns).Create(ctx, app.DriverPod(), metav1.CreateOptions{}); err != nil {
					t.Fatalf("create driver: %v", err)
				}
				apps = append(apps, app)
			}
			var got []string
			for _, app := range apps {
				driver := waitRunning(t, ns, app.DriverName())
				if preferred := preferredZone(driver.Pod); preferred != driver.zone() {
					t.Errorf("driver %s runs in %s, its preferred zone is %q", driver.Pod.Name, driver.zone(), preferred)
				}
				if !slices.Contains(driver.rules(t), tc.wantRule) {
					t.Errorf("driver %s rules %v, want %s", driver.Pod.Name, driver.rules(t), tc.wantRule)
				}
				checkDriverProtected(t, driver.Pod)
				got = append(got, driver.zone())
			}
			if !tc.wantZones(got) {
				t.Errorf("drivers run in zones %v", got)
			}
			text, err := w.Metrics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			reason := strings.TrimPrefix(tc.wantRule, "zone.driver-")
			if n := strings.Count(text, fmt.Sprintf("sparkplace_driver_zone_choices_total{reason=%q,zone=", reason)); n != len(slices.Compact(slices.Sorted(slices.Values(got)))) {
				t.Errorf("%d zones in sparkplace_driver_zone_choices_total{reason=%s}, want one per zone chosen %v:\n%s", n, reason, got, text)
			}
		})
	}
}

// TestExecutorsSpreadOverSpotPools runs an application under the suite's webhook: its driver is steered to a
// zone by free spot capacity and protected from scale-down, and its executors, pinned to the driver's zone,
// spread over the zone's spot instance types (DefaultFleet has two: m5.4xlarge and r5d.4xlarge).
func TestExecutorsSpreadOverSpotPools(t *testing.T) {
	requireWebhook(t)
	t.Parallel()
	ns := newNamespace(t, nil)
	app := sparksim.NewApp("spread", ns)
	app.DriverAnnotations = sizeHint
	driver, execs := runApp(t, app, 6, sparksim.Allocator{})
	if !slices.Contains(driver.rules(t), "zone.driver-capacity") || preferredZone(driver.Pod) == "" {
		t.Errorf("driver rules %v, preferred zone %q: want a zone chosen by capacity", driver.rules(t), preferredZone(driver.Pod))
	}
	checkDriverProtected(t, driver.Pod)
	types := map[string]int{}
	for _, e := range execs {
		c := e.Pod.Spec.TopologySpreadConstraints
		if len(c) != 1 || c[0].TopologyKey != framework.LabelInstanceType || c[0].WhenUnsatisfiable != corev1.ScheduleAnyway || c[0].MaxSkew != 1 {
			t.Errorf("executor %s spread %+v, want maxSkew 1 over %s, ScheduleAnyway", e.Pod.Name, c, framework.LabelInstanceType)
		}
		if e.zone() != driver.zone() {
			t.Errorf("executor %s in %s, driver in %s", e.Pod.Name, e.zone(), driver.zone())
		}
		types[e.Node.Labels[framework.LabelInstanceType]]++
	}
	if len(types) < 2 {
		t.Errorf("executors by instance type %v: one spot reclaim would take them all", types)
	}
}

func preferredZone(p *corev1.Pod) string {
	if p.Spec.Affinity == nil || p.Spec.Affinity.NodeAffinity == nil {
		return ""
	}
	for _, term := range p.Spec.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		for _, r := range term.Preference.MatchExpressions {
			if r.Key == framework.LabelZone && len(r.Values) == 1 {
				return r.Values[0]
			}
		}
	}
	return ""
}

func checkDriverProtected(t *testing.T, p *corev1.Pod) {
	t.Helper()
	for k, v := range map[string]string{"cluster-autoscaler.kubernetes.io/safe-to-evict": "false", "karpenter.sh/do-not-disrupt": "true"} {
		if p.Annotations[k] != v {
			t.Errorf("driver %s: annotation %s=%q, want %q", p.Name, k, p.Annotations[k], v)
		}
	}
}
