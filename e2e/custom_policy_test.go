package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
	"github.com/sparkplace/sparkplace/policies"
)

// TestCustomPolicyParametersReload runs a second webhook, limited to this test's namespace, with a custom
// policy in --policy-dir (policies/testdata/custom: a team label from the policy's own data file, a cost center
// from the custom section of --config), creates Spark drivers through the real API server, then changes both
// the data file and the config and checks that the next driver gets the new values without a restart.
func TestCustomPolicyParametersReload(t *testing.T) {
	main := requireWebhook(t)
	ctx := context.Background()
	ns := newNamespace(t, nil)

	dir := t.TempDir()
	policy, err := os.ReadFile(filepath.Join("..", "policies", "testdata", "custom", "team.rego"))
	if err != nil {
		t.Fatal(err)
	}
	// write replaces a file at once (as a ConfigMap volume does), so the webhook never reads half of it.
	write := func(name, text string) {
		t.Helper()
		tmp := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+".tmp")
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, name); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "sparkplace", "custom", "data.yaml")
	config := filepath.Join(t.TempDir(), "config.yaml")
	write(filepath.Join(dir, "team.rego"), string(policy))
	write(data, fmt.Sprintf("teams: {byNamespace: {%s: data-platform}}\n", ns))
	write(config, "custom: {teams: {costCenter: cc-42}}\n")

	// The guardrails allow the policy's example.com/ labels (the defaults allow sparkplace.io/ only).
	guardrails, err := filepath.Abs(filepath.Join("..", "policies", "testdata", "custom-guardrails.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := cp.StartWebhook(ctx, framework.WebhookOptions{
		Command:           main.Command(),
		Args:              []string{"--policy-dir", dir, "--config", config, "--guardrails", guardrails},
		Name:              "sparkplace-custom-policy",
		WebhookName:       "custom-policy.sparkplace.io",
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
	})
	if err != nil {
		t.Fatalf("start the webhook with a custom policy: %v", err)
	}
	t.Cleanup(func() {
		_ = cp.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), "sparkplace-custom-policy", metav1.DeleteOptions{})
		_ = w.Stop()
	})

	driverLabels := func(app string) map[string]string {
		t.Helper()
		pod, err := cp.Client.CoreV1().Pods(ns).Create(ctx, sparksim.NewApp(app, ns).DriverPod(), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create driver: %v", err)
		}
		return pod.Labels
	}
	check := func(labels map[string]string, team, center string) {
		t.Helper()
		if labels["example.com/team"] != team || labels["example.com/cost-center"] != center {
			t.Errorf("driver labels team=%q cost-center=%q, want %q and %q", labels["example.com/team"], labels["example.com/cost-center"], team, center)
		}
	}
	check(driverLabels("custom-before"), "data-platform", "cc-42")

	write(data, fmt.Sprintf("teams: {byNamespace: {%s: ingest}}\n", ns))
	write(config, "custom: {teams: {costCenter: cc-7}}\n")
	waitForBundle(t, w, policies.Options{PolicyDir: dir, ConfigFile: config, GuardrailsFile: guardrails})
	check(driverLabels("custom-after"), "ingest", "cc-7")
}

// waitForBundle waits (up to a minute: the webhook polls its files every 2s) until the webhook serves the
// bundle that opts load now, by its hash in sparkplace_policy_bundle_info.
func waitForBundle(t *testing.T, w *framework.Webhook, opts policies.Options) {
	t.Helper()
	e, err := policies.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	evaluator, _ := e.Current().Evaluator()
	want := fmt.Sprintf(`sparkplace_policy_bundle_info{evaluator=%q,hash=%q} 1`, evaluator, e.Hash())
	deadline := time.Now().Add(time.Minute)
	for {
		text, err := w.Metrics(context.Background())
		if err != nil {
			t.Fatalf("metrics: %v", err)
		}
		if strings.Contains(text, want) {
			return
		}
		if strings.Contains(text, `sparkplace_policy_reloads_total{result="failure"}`) {
			t.Fatalf("a reload failed:\n%s", w.Process().Tail(1<<14))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after a minute:\n%s", want, text)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
