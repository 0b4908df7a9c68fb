package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
)

// TestPolicyErrorModes runs a second webhook whose policies fail at evaluation for drivers (two rules give
// the capacity label different values, an eval_conflict_error), limited to this test's namespace, once with
// --on-policy-error=deny and once with allow, and creates a Spark driver through the real API server.
func TestPolicyErrorModes(t *testing.T) {
	main := requireWebhook(t)
	conflict, err := filepath.Abs(filepath.Join("..", "policies", "testdata", "conflict"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		mode        string
		wantRefused bool
	}{
		"deny refuses the pod with an actionable reason": {mode: "deny", wantRefused: true},
		"allow admits the pod, unplaced by this webhook": {mode: "allow"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ns := newNamespace(t, nil)
			w, err := cp.StartWebhook(ctx, framework.WebhookOptions{
				Command:           main.Command(),
				Args:              []string{"--policy-dir", conflict, "--on-policy-error", tc.mode},
				Name:              "sparkplace-policy-error-" + tc.mode,
				WebhookName:       "policy-error.sparkplace.io",
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			})
			if err != nil {
				t.Fatalf("start the webhook with conflicting policies: %v", err)
			}
			t.Cleanup(func() {
				_ = cp.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), "sparkplace-policy-error-"+tc.mode, metav1.DeleteOptions{})
				_ = w.Stop()
			})

			app := sparksim.NewApp("policy-error", ns)
			_, err = cp.Client.CoreV1().Pods(ns).Create(ctx, app.DriverPod(), metav1.CreateOptions{})
			if tc.wantRefused {
				if err == nil {
					t.Fatal("driver admitted; --on-policy-error=deny should refuse it")
				}
				for _, want := range []string{"could not place this Spark driver pod", "eval_conflict_error", "ask your platform team"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("refusal %q does not say %q", err, want)
					}
				}
			} else if err != nil {
				t.Fatalf("driver refused with --on-policy-error=allow: %v", err)
			}
			if got := admissionCount(t, w, "driver", "error"); got != 1 {
				t.Errorf("sparkplace_admissions_total{role=driver,result=error} = %v, want 1", got)
			}
			if log := w.Process().Tail(1 << 16); !strings.Contains(log, "policy error") {
				t.Errorf("the policy error is not logged:\n%s", log)
			}
		})
	}
}
