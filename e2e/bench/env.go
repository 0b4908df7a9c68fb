package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	"sigs.k8s.io/yaml"

	"github.com/sparkplace/sparkplace/e2e/framework"
)

// VariantLabel on a namespace selects the webhook that admits its pods (each webhook's namespaceSelector).
const VariantLabel = "bench.sparkplace.io/webhook"

// Variant is what admits the Spark pods of a measurement.
type Variant string

const (
	// Sparkplace is the sparkplace webhook under test.
	Sparkplace Variant = "sparkplace"
	// SamePatch returns, precomputed, the patch sparkplace returns for the same pod: the floor.
	SamePatch Variant = "same-patch"
	// NoOp allows every pod unchanged.
	NoOp Variant = "no-op"
	// NoWebhook: no webhook is called.
	NoWebhook Variant = "none"
)

// Variants of the create measurement, in the report's column order.
var Variants = []Variant{Sparkplace, SamePatch, NoOp, NoWebhook}

// Options configure Setup.
type Options struct {
	Scale Scale
	// BaselineCommand starts a baseline webhook (ServeBaseline); the mode is appended, then the harness's flags.
	BaselineCommand []string
	// Logf reports progress. Defaults to discarding.
	Logf func(string, ...any)
	// ProfileDir, when set, receives CPU profiles of kube-apiserver and kube-scheduler over each scheduling
	// round (see MeasureScheduling).
	ProfileDir string
}

// Env is a running benchmark cluster: a control plane with an EKS-like fleet, sparkplace and the baseline
// webhooks, each selecting the namespaces labelled VariantLabel=<its variant>.
type Env struct {
	CP         *framework.ControlPlane
	Sparkplace *framework.Webhook
	Baselines  map[Variant]*framework.Webhook
	// Client is unthrottled: client-side rate limits would measure the client.
	Client kubernetes.Interface
	Scale  Scale
	Zones  []string
	Logf   func(string, ...any)
	// GoEnv are the Go runtime settings (GOGC, GOMEMLIMIT) of the webhook container in
	// manifests/base/deployment.yaml; every webhook of the run gets them.
	GoEnv []string

	profileDir string // Options.ProfileDir

	run      string  // in every namespace name, so no name is ever reused (see newNamespace)
	idle     float64 // the control plane's CPU at rest, in cores (measureIdle)
	quiets   []Quiet // the waits for it to settle (settle)
	seq      atomic.Int64
	direct   *http.Client // to the webhooks, trusting the control plane's CA
	insecure *http.Client // to kube-scheduler's metrics, served with its own self-signed certificate
}

// Setup starts the control plane, the fleet (DefaultFleet plus Scale.SpotNodesPerZone spot nodes per zone),
// sparkplace and the baseline webhooks. Close stops everything.
func Setup(ctx context.Context, o Options) (_ *Env, err error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if len(o.BaselineCommand) == 0 {
		return nil, errors.New("bench: no baseline webhook command")
	}
	if err := framework.EnsureControlPlaneBinaries(); err != nil {
		return nil, err
	}
	// kube-scheduler's client is not rate limited (as the benchmark's own is not): each binding and its Event
	// are API calls, and at the framework's 200 QPS the limiter, not the scheduler nor the API server, would
	// set the scheduling rate whatever the executors' placement.
	// Profiling: the scheduling rounds read kube-scheduler's CPU profile (and the API server's, with ProfileDir).
	cp, err := framework.Start(ctx, framework.Options{Logf: o.Logf, SchedulerQPS: 5000, Profiling: true})
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, cp.Stop())
		}
	}()
	fleet := framework.DefaultFleet()
	if o.Scale.SpotNodesPerZone > 0 {
		spot := fleet.Groups[slicesIndex(fleet.Groups, framework.GroupSpot)]
		spot.Name, spot.Count = "bench-spot", o.Scale.SpotNodesPerZone
		fleet.Groups = append(fleet.Groups, spot)
	}
	if err := cp.CreateFleet(ctx, fleet); err != nil {
		return nil, err
	}
	bin, err := framework.BuildSparkplaceAsShipped(ctx, cp.Dir, o.Logf)
	if err != nil {
		return nil, err
	}
	goEnv, err := DeploymentGoEnv()
	if err != nil {
		return nil, err
	}
	e := &Env{CP: cp, Scale: o.Scale, Zones: fleet.Zones, Logf: o.Logf, GoEnv: goEnv, run: randomHex(3), Baselines: map[Variant]*framework.Webhook{}, profileDir: o.ProfileDir}
	if e.Sparkplace, err = cp.StartWebhook(ctx, framework.WebhookOptions{
		Command: []string{bin, "webhook"}, WebhookName: webhookName(Sparkplace), NamespaceSelector: selectVariant(Sparkplace), Env: goEnv,
	}); err != nil {
		return nil, err
	}
	for _, v := range []Variant{NoOp, SamePatch} {
		w, err := cp.StartWebhook(ctx, framework.WebhookOptions{
			Command: append(append([]string(nil), o.BaselineCommand...), string(v)),
			Name:    "bench-" + string(v), WebhookName: webhookName(v),
			NamespaceSelector: selectVariant(v), Env: goEnv,
		})
		if err != nil {
			return nil, fmt.Errorf("baseline webhook %s: %w", v, err)
		}
		e.Baselines[v] = w
	}
	cfg := rest.CopyConfig(cp.Config)
	cfg.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	if e.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cp.CA.CertPEM)
	e.direct = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 32, ForceAttemptHTTP2: true,
	}}
	e.insecure = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a local process on loopback, read-only metrics
	}}
	if err := e.measureIdle(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// Close stops the control plane and the webhooks.
func (e *Env) Close() error { return e.CP.Stop() }

// DeploymentGoEnv returns the Go runtime settings (GO* variables with a literal value, "NAME=value") of the
// webhook container of manifests/base/deployment.yaml, so that the benchmark runs the webhook as it ships.
func DeploymentGoEnv() ([]string, error) {
	root, err := framework.ModuleRoot()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(root, "manifests", "base", "deployment.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != "webhook" {
			continue
		}
		var env []string
		for _, v := range c.Env {
			if strings.HasPrefix(v.Name, "GO") && v.ValueFrom == nil {
				env = append(env, v.Name+"="+v.Value)
			}
		}
		return env, nil
	}
	return nil, fmt.Errorf("%s: no container named webhook", path)
}

func selectVariant(v Variant) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{VariantLabel: string(v)}}
}

func slicesIndex(groups []framework.NodeGroup, name string) int {
	for i, g := range groups {
		if g.Name == name {
			return i
		}
	}
	return 0
}

// webhookPID is the process that admits pods of variant v (0 for none).
func (e *Env) webhookPID(v Variant) int {
	switch v {
	case Sparkplace:
		return e.Sparkplace.Process().Pid()
	case NoWebhook:
		return 0
	}
	return e.Baselines[v].Process().Pid()
}

// webhookName is the name of variant v's webhook in its MutatingWebhookConfiguration, the "name" label of
// the API server's webhook metrics.
func webhookName(v Variant) string {
	if v == Sparkplace {
		return "pods.sparkplace.io"
	}
	return string(v) + ".bench.sparkplace.io"
}

// apiServerPID is the kube-apiserver's process id.
func (e *Env) apiServerPID() int { return e.CP.Process("kube-apiserver").Pid() }

// newNamespace creates a namespace admitted by variant v and waits for its default ServiceAccount. Every name
// is new: the API server looks a namespace up live, on every create, for 30 s after one of the same name was
// deleted, which would slow the creates measured in it.
func (e *Env) newNamespace(ctx context.Context, purpose string, v Variant) (string, error) {
	name := fmt.Sprintf("bench-%s-%s-%d", e.run, purpose, e.seq.Add(1))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{VariantLabel: string(v)}}}
	if _, err := e.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create namespace %s: %w", name, err)
	}
	return name, poll(ctx, time.Minute, "default ServiceAccount of "+name, func(ctx context.Context) (bool, error) {
		_, err := e.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// deleteNamespace deletes the pods of a namespace (no grace: nothing runs in them), Scale.Clients at a time
// (the API server works through a DeleteCollection one pod at a time: a round's thousand bound pods took
// their namespace 30 s to go, 17 s so), then the namespace, and waits until it is gone, so that its deletion
// does not load the next measurement.
func (e *Env) deleteNamespace(ctx context.Context, name string) error {
	zero := int64(0)
	pods := e.Client.CoreV1().Pods(name)
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods of %s: %w", name, err)
	}
	errs := parallel(len(list.Items), e.Scale.Clients, func(i int) error {
		err := pods.Delete(ctx, list.Items[i].Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		if apierrors.IsNotFound(err) { // gone meanwhile
			return nil
		}
		return err
	})
	if n, err := firstError(errs); n > 0 {
		return fmt.Errorf("delete pods of %s: %d failed: %w", name, n, err)
	}
	if err := e.Client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return poll(ctx, 10*time.Minute, "deletion of namespace "+name, func(ctx context.Context) (bool, error) {
		_, err := e.Client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}

// sparkplacePatch sends pod to sparkplace as the API server would (an AdmissionReview of a CREATE) and returns
// the JSON patch of its answer, nil when it changes nothing. A denial is an error.
func (e *Env) sparkplacePatch(ctx context.Context, pod *corev1.Pod) ([]byte, error) {
	obj := pod.DeepCopy()
	obj.APIVersion, obj.Kind = "v1", "Pod"
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	gvk := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	gvr := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID(randomHex(16)), Kind: gvk, Resource: gvr, RequestKind: &gvk, RequestResource: &gvr,
			Name: pod.Name, Namespace: pod.Namespace, Operation: admissionv1.Create,
			Object:  runtime.RawExtension{Raw: raw},
			Options: runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`)},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.Sparkplace.URL(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.direct.Do(req)
	if err != nil {
		return nil, fmt.Errorf("review of %s to sparkplace: %w", pod.Name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var answer admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &answer); err != nil || answer.Response == nil {
		return nil, fmt.Errorf("sparkplace answered %s: %q (%v)", resp.Status, b, err)
	}
	if !answer.Response.Allowed {
		return nil, fmt.Errorf("sparkplace refused %s: %+v", pod.Name, answer.Response.Result)
	}
	return answer.Response.Patch, nil
}

// parallel runs work(i) for i in [0,n) on clients goroutines, and returns the errors in order of i.
func parallel(n, clients int, work func(i int) error) []error {
	errs := make([]error, n)
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(clients, n) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				errs[i] = work(i)
			}
		})
	}
	wg.Wait()
	return errs
}

// firstError returns the number of errors and the first one.
func firstError(errs []error) (int, error) {
	n := 0
	var first error
	for _, err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	return n, first
}

// poll calls cond every 100ms until it returns true or an error, or timeout passes.
func poll(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
