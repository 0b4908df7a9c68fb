package framework

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WebhookPath is where the sparkplace webhook serves Spark pod admission.
const WebhookPath = "/mutate-spark-pods"

// WebhookOptions configures StartWebhook.
type WebhookOptions struct {
	// Command runs the webhook server, e.g. {"bin/sparkplace", "webhook"}. The harness appends the kubeconfig,
	// address, port, TLS, metrics, health and webhook-configuration flags; Args are appended after those.
	Command []string
	Args    []string
	// Env is added to the webhook's environment ("NAME=value"), e.g. the Go runtime settings of the
	// Deployment.
	Env []string
	// Name of the MutatingWebhookConfiguration and of the webhook in it. Defaults to "sparkplace" and
	// "pods.sparkplace.io".
	Name, WebhookName string
	// FailurePolicy defaults to Fail: a Spark pod must never be created unplaced (on the wrong capacity or
	// outside its driver's zone), so while the webhook is unreachable Spark pod creation is refused and Spark
	// retries it; pods without the spark-role label are not selected and unaffected.
	FailurePolicy admissionregistrationv1.FailurePolicyType
	// TimeoutSeconds bounds each admission call. Defaults to 10, Spark's own API request timeout: a slower
	// webhook would make Spark's create fail anyway.
	TimeoutSeconds int32
	// NamespaceSelector, when set, limits the webhook to the namespaces it selects (e.g. one test's).
	NamespaceSelector *metav1.LabelSelector
}

// Webhook is a sparkplace webhook process served with a certificate from the control plane's CA, and the
// MutatingWebhookConfiguration that sends Spark pods to it.
type Webhook struct {
	// Port serves WebhookPath over TLS on 127.0.0.1; MetricsAddr and HealthAddr are host:port.
	Port        int
	MetricsAddr string
	HealthAddr  string
	// CertFile and KeyFile are the serving certificate (for 127.0.0.1 and localhost) and its key.
	CertFile, KeyFile string

	cp   *ControlPlane
	opts WebhookOptions
	proc *Process
}

// StartWebhook issues a serving certificate, starts the webhook on free loopback ports, waits until it is
// ready, and registers (creates or replaces) its MutatingWebhookConfiguration. Stop on the control plane
// stops it too.
func (cp *ControlPlane) StartWebhook(ctx context.Context, opts WebhookOptions) (*Webhook, error) {
	if len(opts.Command) == 0 {
		return nil, errors.New("webhook command is empty")
	}
	if opts.Name == "" {
		opts.Name = "sparkplace"
	}
	if opts.WebhookName == "" {
		opts.WebhookName = "pods.sparkplace.io"
	}
	if opts.FailurePolicy == "" {
		opts.FailurePolicy = admissionregistrationv1.Fail
	}
	if opts.TimeoutSeconds == 0 {
		opts.TimeoutSeconds = 10
	}
	// Each webhook its own certificate files: webhooks started side by side (tests running in parallel)
	// must not reload each other's half-written ones.
	dir := filepath.Join(cp.Dir, "webhook-"+opts.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("webhook directory: %w", err)
	}
	ports, err := FreePorts(3)
	if err != nil {
		return nil, err
	}
	w := &Webhook{
		Port:        ports[0],
		MetricsAddr: "127.0.0.1:" + strconv.Itoa(ports[1]),
		HealthAddr:  "127.0.0.1:" + strconv.Itoa(ports[2]),
		CertFile:    filepath.Join(dir, "tls.crt"),
		KeyFile:     filepath.Join(dir, "tls.key"),
		cp:          cp,
		opts:        opts,
	}
	kp, err := cp.CA.Issue(CertRequest{
		CommonName: "sparkplace-webhook", Server: true,
		DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
	})
	if err != nil {
		return nil, err
	}
	if err := kp.Write(w.CertFile, w.KeyFile); err != nil {
		return nil, err
	}
	if err := w.Start(ctx); err != nil {
		return nil, err
	}
	if err := w.Register(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// URL is the address the API server calls.
func (w *Webhook) URL() string {
	return "https://127.0.0.1:" + strconv.Itoa(w.Port) + WebhookPath
}

// Start (re)starts the webhook process on its ports and waits until /readyz answers and TLS handshakes
// succeed with the CA. It is a no-op when the process is running.
func (w *Webhook) Start(ctx context.Context) error {
	if w.proc != nil && !exited(w.proc) {
		return nil
	}
	args := append(append([]string(nil), w.opts.Command[1:]...),
		"--kubeconfig="+w.cp.Kubeconfig,
		"--bind-address=127.0.0.1", "--port="+strconv.Itoa(w.Port),
		"--tls-cert-file="+w.CertFile, "--tls-key-file="+w.KeyFile,
		"--metrics-bind-address="+w.MetricsAddr,
		"--health-probe-bind-address="+w.HealthAddr,
		// Its own configuration: bounded strictness sweeps only the namespaces it selects.
		"--webhook-config-name="+w.opts.Name,
	)
	args = append(args, w.opts.Args...)
	// Named after the configuration, so that several webhooks of one control plane keep separate logs.
	p, err := w.cp.StartProcess(w.opts.Name+"-webhook", w.opts.Command[0], args, w.opts.Env)
	if err != nil {
		return err
	}
	w.proc = p
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(w.cp.CA.CertPEM)
	tlsConf := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	ready := func(ctx context.Context) bool {
		if !httpOK(ctx, nil, "http://"+w.HealthAddr+"/readyz") {
			return false
		}
		d := tls.Dialer{Config: tlsConf}
		conn, err := d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(w.Port))
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
	return waitFor(ctx, p, "sparkplace webhook", ready)
}

// Stop stops the webhook process (the configuration stays registered, as when a webhook pod dies).
func (w *Webhook) Stop() error {
	if w.proc == nil {
		return nil
	}
	return w.proc.Stop(10 * time.Second)
}

// Command is the command line the webhook runs with, before the flags the harness appends.
func (w *Webhook) Command() []string { return w.opts.Command }

// Process is the running (or last) webhook process, for its log.
func (w *Webhook) Process() *Process { return w.proc }

// Configuration is the MutatingWebhookConfiguration Register installs: CREATE of pods labelled spark-role
// driver or executor, with the CA bundle, an explicit timeout, failure policy and reinvocation policy.
func (w *Webhook) Configuration() *admissionregistrationv1.MutatingWebhookConfiguration {
	url := w.URL()
	sideEffects := admissionregistrationv1.SideEffectClassNone
	failurePolicy := w.opts.FailurePolicy
	timeout := w.opts.TimeoutSeconds
	// IfNeeded: when a later webhook changes the pod, sparkplace sees the result again; its patches are
	// idempotent so the second pass is harmless.
	reinvocation := admissionregistrationv1.IfNeededReinvocationPolicy
	matchPolicy := admissionregistrationv1.Equivalent
	scope := admissionregistrationv1.NamespacedScope
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: w.opts.Name, Labels: map[string]string{"app.kubernetes.io/name": "sparkplace"}},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         w.opts.WebhookName,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: w.cp.CA.CertPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}, Scope: &scope,
				},
			}},
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "spark-role", Operator: metav1.LabelSelectorOpIn, Values: []string{"driver", "executor"},
			}}},
			NamespaceSelector:       w.opts.NamespaceSelector,
			SideEffects:             &sideEffects,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          &timeout,
			FailurePolicy:           &failurePolicy,
			ReinvocationPolicy:      &reinvocation,
			MatchPolicy:             &matchPolicy,
		}},
	}
}

// Register creates the MutatingWebhookConfiguration, replacing one of the same name.
func (w *Webhook) Register(ctx context.Context) error {
	api := w.cp.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg := w.Configuration()
	existing, err := api.Get(ctx, cfg.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, cfg, metav1.CreateOptions{})
	case err == nil:
		cfg.ResourceVersion = existing.ResourceVersion
		_, err = api.Update(ctx, cfg, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("register webhook %s: %w", cfg.Name, err)
	}
	return nil
}

// Metrics returns the Prometheus text the webhook serves on /metrics.
func (w *Webhook) Metrics(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.MetricsAddr+"/metrics", nil)
	if err != nil {
		return "", fmt.Errorf("metrics request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("get metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("get metrics: %s", resp.Status)
	}
	return string(b), nil
}

func exited(p *Process) bool {
	select {
	case <-p.Exited():
		return true
	default:
		return false
	}
}
