package e2e

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
)

// The suite's shared state, set up once by TestMain.
var (
	cp *framework.ControlPlane
	// webhook is nil when the sparkplace binary could not be built or started; webhookErr says why.
	webhook    *framework.Webhook
	webhookErr error
	// zones of the suite's fleet: DefaultFleet's three plus us-east-1d, so that four drivers can run in four
	// different zones (the scale test).
	zones []string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) (code int) {
	logf := log.New(os.Stderr, "e2e: ", log.Ltime|log.Lmicroseconds).Printf
	suiteStart := time.Now()
	if err := framework.EnsureControlPlaneBinaries(); err != nil {
		logf("%v", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	cp, err = framework.Start(ctx, framework.Options{Logf: logf})
	if err != nil {
		logf("start control plane: %v", err)
		return 1
	}
	dir := cp.Dir
	defer func() {
		if err := cp.Stop(); err != nil {
			logf("stop control plane: %v", err)
			code = 1
		}
		// Requirement: no control-plane process outlives the tests.
		if left, err := framework.Leftovers(dir); err != nil || len(left) > 0 {
			logf("processes outlived the suite: %v %v", left, err)
			code = 1
		}
		logf("suite wall time %s", time.Since(suiteStart).Round(time.Millisecond))
	}()
	fleet := framework.DefaultFleet()
	fleet.Zones = append(fleet.Zones, "us-east-1d")
	zones = fleet.Zones
	if err := cp.CreateFleet(ctx, fleet); err != nil {
		logf("create fleet: %v", err)
		return 1
	}
	webhook, webhookErr = startWebhook(ctx, logf)
	if webhookErr != nil {
		logf("sparkplace webhook unavailable, its tests will fail: %v", webhookErr)
	}
	return m.Run()
}

// startWebhook builds ./cmd/sparkplace (unless $SPARKPLACE_BIN names a binary) and starts `sparkplace webhook`.
func startWebhook(ctx context.Context, logf func(string, ...any)) (*framework.Webhook, error) {
	bin, err := framework.BuildSparkplace(ctx, cp.Dir, logf)
	if err != nil {
		return nil, err
	}
	w, err := cp.StartWebhook(ctx, framework.WebhookOptions{
		Command: []string{bin, "webhook"},
		// A test that serves its namespace with its own webhook (another config) labels it ownWebhookLabel.
		NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: ownWebhookLabel, Operator: metav1.LabelSelectorOpDoesNotExist}}},
	})
	if err != nil {
		return nil, err
	}
	logf("webhook serving %s", w.URL())
	return w, nil
}

// ownWebhookLabel on a namespace keeps the suite's webhook out of it, for a test that serves it with its own.
const ownWebhookLabel = "e2e.sparkplace.io/own-webhook"

// requireWebhook fails the test when the suite could not start the webhook.
func requireWebhook(t *testing.T) *framework.Webhook {
	t.Helper()
	if webhook == nil {
		t.Fatalf("sparkplace webhook not running: %v", webhookErr)
	}
	return webhook
}

// invalidNameChars are what a namespace name may not hold; namespaceSeq keeps names unique within a run.
var (
	invalidNameChars = regexp.MustCompile(`[^a-z0-9]+`)
	namespaceSeq     atomic.Int64
)

// newNamespace creates a namespace for one test (with extra labels) and deletes it when the test ends.
func newNamespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	name := strings.Trim(invalidNameChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 50 {
		name = strings.TrimRight(name[:50], "-")
	}
	name = fmt.Sprintf("%s-%d", name, namespaceSeq.Add(1))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := cp.Client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = cp.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	// The ServiceAccount admission plugin refuses pods until the controller-manager made "default".
	waitCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if _, err := cp.Client.CoreV1().ServiceAccounts(name).Get(waitCtx, "default", metav1.GetOptions{}); err == nil {
			return name
		}
		select {
		case <-waitCtx.Done():
			t.Fatalf("namespace %s: no default ServiceAccount: %v", name, waitCtx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
