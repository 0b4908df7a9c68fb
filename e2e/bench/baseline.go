package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	admissionv1 "k8s.io/api/admission/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sparkplace/sparkplace/e2e/framework"
)

// BaselineArg, as the first argument of the test binary, makes it serve a baseline webhook (ServeBaseline)
// instead of running tests: os.Args = [binary, BaselineArg, mode, flags...].
const BaselineArg = "bench-baseline"

// ServeBaseline serves a baseline webhook until SIGTERM, with the flags framework.StartWebhook passes and the
// same controller-runtime webhook server and admission.Webhook wrapper sparkplace uses, so that the two differ
// only in what the handler does:
//   - NoOp allows every pod unchanged;
//   - SamePatch answers each pod, by namespace and name, with the patch loaded for it with PUT /patches on the
//     metrics address (a JSON object "namespace/name" → patch), and allows unknown pods unchanged.
//
// Both serve controller-runtime's metrics (its webhook server's latency, as sparkplace does) on the metrics
// address.
func ServeBaseline(mode string, args []string) error {
	fs := flag.NewFlagSet(BaselineArg, flag.ContinueOnError)
	var host, certFile, keyFile, metricsAddr, healthAddr string
	var port int
	fs.String("kubeconfig", "", "unused: the baselines read nothing from the cluster")
	fs.String("webhook-config-name", "", "unused: the baselines relax nothing")
	fs.StringVar(&host, "bind-address", "127.0.0.1", "")
	fs.IntVar(&port, "port", 9443, "")
	fs.StringVar(&certFile, "tls-cert-file", "", "")
	fs.StringVar(&keyFile, "tls-key-file", "", "")
	fs.StringVar(&metricsAddr, "metrics-bind-address", "", "")
	fs.StringVar(&healthAddr, "health-probe-bind-address", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if certFile == "" || keyFile == "" || healthAddr == "" || filepath.Dir(certFile) != filepath.Dir(keyFile) {
		return errors.New("baseline webhook: --tls-cert-file and --tls-key-file (in one directory) and --health-probe-bind-address are required")
	}
	// As `sparkplace webhook` does: without a logger controller-runtime keeps a pending entry per request.
	ctrl.SetLogger(zap.New())
	var handler admission.Handler
	admin := http.NewServeMux()
	admin.Handle("GET /metrics", promhttp.HandlerFor(crmetrics.Registry, promhttp.HandlerOpts{}))
	switch Variant(mode) {
	case NoOp:
		handler = admission.HandlerFunc(func(context.Context, admission.Request) admission.Response { return admission.Allowed("") })
	case SamePatch:
		sp := &samePatch{}
		handler = sp
		admin.HandleFunc("PUT /patches", sp.load)
	default:
		return fmt.Errorf("baseline webhook: unknown mode %q: want %s or %s", mode, NoOp, SamePatch)
	}
	server := crwebhook.NewServer(crwebhook.Options{
		Host: host, Port: port,
		CertDir: filepath.Dir(certFile), CertName: filepath.Base(certFile), KeyName: filepath.Base(keyFile),
	})
	server.Register(framework.WebhookPath, &admission.Webhook{Handler: handler})
	health := http.NewServeMux()
	started := server.StartedChecker()
	health.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := started(r); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errs := make(chan error, 3)
	for addr, mux := range map[string]*http.ServeMux{healthAddr: health, metricsAddr: admin} {
		if addr == "" || addr == "0" {
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("baseline webhook: %w", err)
		}
		srv := &http.Server{Handler: mux}
		go func() { errs <- srv.Serve(l) }()
		defer srv.Close()
	}
	go func() { errs <- server.Start(ctx) }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

// samePatch answers with precomputed patches.
type samePatch struct {
	mu      sync.RWMutex
	patches map[string][]byte
}

func (s *samePatch) Handle(_ context.Context, req admission.Request) admission.Response {
	s.mu.RLock()
	patch := s.patches[req.Namespace+"/"+req.Name]
	s.mu.RUnlock()
	resp := admission.Allowed("")
	if patch != nil {
		// As sparkplace sets it: bytes, not Response.Patches.
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &pt
	}
	return resp
}

// load replaces the patches with the request's JSON object of "namespace/name" → patch (base64, as
// encoding/json writes []byte).
func (s *samePatch) load(w http.ResponseWriter, r *http.Request) {
	var patches map[string][]byte
	if err := json.NewDecoder(r.Body).Decode(&patches); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.patches = patches
	s.mu.Unlock()
}

// loadSamePatches hands the same-patch webhook its patches.
func (e *Env) loadSamePatches(ctx context.Context, patches map[string][]byte) error {
	body, err := json.Marshal(patches)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+e.Baselines[SamePatch].MetricsAddr+"/patches", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("load same-patch webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("load same-patch webhook: %s", resp.Status)
	}
	return nil
}
