package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
	"github.com/sparkplace/sparkplace/placement"
)

// TestDeletingDriverRemovesExecutors checks that executors really are owned by their driver: deleting the
// driver (as Spark does when the application ends, or a user does to kill it) lets the controller-manager's
// garbage collector delete every executor.
func TestDeletingDriverRemovesExecutors(t *testing.T) {
	requireWebhook(t)
	ctx := context.Background()
	ns := newNamespace(t, nil)
	app := sparksim.NewApp("gc-check", ns)
	_, execs := runApp(t, app, 4, sparksim.Allocator{})
	if len(execs) != 4 {
		t.Fatalf("got %d executors, want 4", len(execs))
	}
	if err := cp.Client.CoreV1().Pods(ns).Delete(ctx, app.DriverName(), metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete driver: %v", err)
	}
	selector := sparksim.LabelAppSelector + "=" + app.ID
	// Generous: after a test that created thousands of pods the garbage collector has a backlog.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		list, err := cp.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatalf("list pods: %v", err)
		}
		if len(list.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var names []string
			for _, p := range list.Items {
				names = append(names, p.Name)
			}
			t.Fatalf("pods of the app still there 5m after deleting the driver: %v", names)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestUnknownProfileIsRefused checks that the webhook's deny reaches the user through the API server: a typo in
// the profile must not put a job on the wrong capacity.
func TestUnknownProfileIsRefused(t *testing.T) {
	requireWebhook(t)
	ns := newNamespace(t, nil)
	app := sparksim.NewApp("typo", ns).WithProfile("spto")
	_, err := cp.Client.CoreV1().Pods(ns).Create(context.Background(), app.DriverPod(), metav1.CreateOptions{})
	if err == nil {
		t.Fatal("driver with an unknown profile was admitted")
	}
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `unknown sparkplace profile "spto"`) {
		t.Errorf("got %v, want a Forbidden error naming the unknown profile", err)
	}
}

// TestWebhookDownFollowsFailurePolicy checks failurePolicy Fail: while the webhook is unreachable, Spark pods
// are refused (none lands unplaced; Spark's submit fails and its allocator retries executors), other pods
// are not affected (the objectSelector keeps them away from the webhook), and once the webhook is back Spark
// pods are placed again.
func TestWebhookDownFollowsFailurePolicy(t *testing.T) {
	w := requireWebhook(t)
	ctx := context.Background()
	ns := newNamespace(t, nil)
	if err := w.Stop(); err != nil {
		t.Fatalf("stop webhook: %v", err)
	}
	t.Cleanup(func() {
		// The rest of the suite needs the webhook, whatever happened here.
		if err := w.Start(context.Background()); err != nil {
			t.Errorf("restart webhook: %v", err)
		}
	})

	app := sparksim.NewApp("while-down", ns)
	_, err := cp.Client.CoreV1().Pods(ns).Create(ctx, app.DriverPod(), metav1.CreateOptions{})
	if err == nil {
		t.Fatal("Spark driver admitted while the webhook is down; failurePolicy Fail should refuse it")
	}
	if !strings.Contains(err.Error(), "failed calling webhook") {
		t.Errorf("got %v, want the API server's 'failed calling webhook' error", err)
	}
	plain := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "not-spark", Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
	}
	if _, err := cp.Client.CoreV1().Pods(ns).Create(ctx, plain, metav1.CreateOptions{}); err != nil {
		t.Errorf("a pod without Spark labels was refused while the webhook is down: %v", err)
	}

	start := time.Now()
	if err := w.Start(ctx); err != nil {
		t.Fatalf("restart webhook: %v", err)
	}
	t.Logf("webhook back in %s", time.Since(start).Round(time.Millisecond))
	driver, execs := runApp(t, app, 2, sparksim.Allocator{})
	if driver.capacity() != "ON_DEMAND" {
		t.Errorf("driver on %s (capacity %q) after the restart, want ON_DEMAND", driver.Node.Name, driver.capacity())
	}
	if _, ok := driver.Pod.Annotations[placement.AnnotationKey]; !ok {
		t.Errorf("driver admitted after the restart without placement annotation")
	}
	for _, e := range execs {
		if e.capacity() != "SPOT" || e.zone() != driver.zone() {
			t.Errorf("executor %s on %s (%s, %s), want SPOT in %s", e.Pod.Name, e.Node.Name, e.capacity(), e.zone(), driver.zone())
		}
	}
}

// admissionCount reads sparkplace_admissions_total for a role and result from the webhook's /metrics (0 when
// the series does not exist yet).
func admissionCount(t *testing.T, w *framework.Webhook, role, result string) float64 {
	t.Helper()
	return webhookMetric(t, w, fmt.Sprintf(`sparkplace_admissions_total{result=%q,role=%q}`, result, role))
}

// webhookMetric reads one series (name{labels} as the exposition writes it, labels sorted) from the
// webhook's /metrics; 0 when absent.
func webhookMetric(t *testing.T, w *framework.Webhook, series string) float64 {
	t.Helper()
	text, err := w.Metrics(context.Background())
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return f
		}
	}
	return 0
}
