package charts_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/sparkplace/sparkplace/charts"
)

// TestAlertsFireAndStaySilent runs Prometheus' own rule unit tests (`promtool test rules`, built by
// hack/promtool.sh from the Prometheus version go.mod pins) on the chart's rendered alert rules:
// testdata/alerts-test.yaml feeds synthetic series and states which alerts fire, with which labels and
// annotations, and which stay silent. Every alert must have both a firing and a silent case there.
func TestAlertsFireAndStaySilent(t *testing.T) {
	objs, err := charts.Render(charts.Options{Values: monitoringValues})
	if err != nil {
		t.Fatal(err)
	}
	var groups any
	var alerts []string
	for _, r := range alertRules(t, objs) {
		alerts = append(alerts, r["alert"].(string))
	}
	for _, o := range objs {
		if o.GetKind() == "PrometheusRule" {
			groups = o.Object["spec"].(map[string]any)["groups"]
		}
	}
	if len(alerts) == 0 {
		t.Fatal("the chart renders no alert")
	}

	tests, err := os.ReadFile(filepath.Join("testdata", "alerts-test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	checkEveryAlertTested(t, tests, alerts)

	dir := t.TempDir()
	rules, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"rules.yaml": rules, "alerts-test.yaml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	promtool := filepath.Join(dir, "promtool")
	build := exec.Command(filepath.Join("..", "hack", "promtool.sh"), promtool)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("hack/promtool.sh: %v\n%s", err, out)
	}
	check := exec.Command(promtool, "check", "rules", "rules.yaml")
	check.Dir = dir
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	run := exec.Command(promtool, "test", "rules", "alerts-test.yaml")
	run.Dir = dir
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	t.Logf("promtool test rules:\n%s", out)
}

// checkEveryAlertTested fails for an alert without a case where it fires and one where it stays silent.
func checkEveryAlertTested(t *testing.T, tests []byte, alerts []string) {
	t.Helper()
	var file struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(tests, &file); err != nil {
		t.Fatal(err)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range file.Tests {
		for _, a := range tc.AlertRuleTest {
			if !slices.Contains(alerts, a.Alertname) {
				t.Errorf("testdata/alerts-test.yaml tests %s, which the chart does not have", a.Alertname)
			}
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	for _, a := range alerts {
		if !fires[a] || !silent[a] {
			t.Errorf("alert %s: firing case %v, silent case %v in testdata/alerts-test.yaml; want both", a, fires[a], silent[a])
		}
	}
}
