package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
	"github.com/sparkplace/sparkplace/manifests"
)

// Names from manifests/overlays/self-signed.
const (
	installNamespace = "sparkplace"
	installSA        = "sparkplace-webhook"
	installSecret    = "sparkplace-webhook-tls"
	// The overlay's webhook configuration is "sparkplace", which the suite's own webhook already uses; this
	// test renames it (and the RBAC rules and flag that name it) to run beside it.
	certsWebhookConfig = "sparkplace-certs-e2e"
)

// TestSelfSignedInstallRotatesCertificatesUnderLoad applies the self-signed overlay to the API server with
// server-side apply, runs two webhook replicas with nothing but the ServiceAccount's token, and creates Spark
// pods without pause while very short-lived certificates rotate (CA included) several times. Every pod
// creation must succeed: the API server calls both replicas for each pod, so a single untrusted certificate
// would fail it (failurePolicy Fail).
func TestSelfSignedInstallRotatesCertificatesUnderLoad(t *testing.T) {
	requireWebhook(t) // the suite built the binary
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := newNamespace(t, nil)
	ports, err := framework.FreePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	replicas := []replica{
		{port: ports[0], metrics: "127.0.0.1:" + strconv.Itoa(ports[1]), health: "127.0.0.1:" + strconv.Itoa(ports[2])},
		{port: ports[3], metrics: "127.0.0.1:" + strconv.Itoa(ports[4]), health: "127.0.0.1:" + strconv.Itoa(ports[5])},
	}

	objs, err := manifests.Render(manifests.OverlaySelfSigned)
	if err != nil {
		t.Fatal(err)
	}
	// The job-run API and controller are installed once for the suite (jobs_test.go); this test installs and
	// removes only the webhook's part.
	objs, _ = splitJobsObjects(objs)
	adaptForLocalCluster(t, objs, ns, replicas)
	t.Cleanup(func() { deleteObjects(t, objs) })
	applyStart := time.Now()
	serverSideApply(ctx, t, objs)
	t.Logf("applied %d objects of the self-signed overlay with server-side apply in %s", len(objs), time.Since(applyStart).Round(time.Millisecond))

	checkServiceAccountPermissions(ctx, t)
	waitDeploymentPods(ctx, t, installNamespace)

	kubeconfig := serviceAccountKubeconfig(ctx, t, installNamespace, installSA)
	bin := os.Getenv("SPARKPLACE_BIN")
	if bin == "" {
		bin = filepath.Join(cp.Dir, "sparkplace") // where TestMain built it
	}
	for i := range replicas {
		r := &replicas[i]
		args := []string{"webhook", "--kubeconfig=" + kubeconfig,
			"--bind-address=127.0.0.1", "--port=" + strconv.Itoa(r.port),
			"--metrics-bind-address=" + r.metrics, "--health-probe-bind-address=" + r.health,
			"--cert-mode=self-managed", "--cert-secret=" + installSecret, "--service-name=sparkplace-webhook",
			"--service-namespace=" + installNamespace, "--webhook-config-name=" + certsWebhookConfig,
			"--cert-extra-hosts=127.0.0.1",
			// A CA lives 24s and is replaced at 16s; serving certificates live 9s and are replaced at 6s.
			"--ca-lifetime=24s", "--serving-cert-lifetime=9s", "--ca-propagation-delay=2s", "--cert-resync-interval=500ms",
		}
		r.proc, err = cp.StartProcess(fmt.Sprintf("sparkplace-certs-%d", i), bin, args, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, r := range replicas {
			if t.Failed() {
				t.Logf("replica log %s:\n%s", r.proc.Name, r.proc.Tail(4000))
			}
			_ = r.proc.Stop(10 * time.Second)
		}
	}()
	for _, r := range replicas {
		waitReady(ctx, t, r)
	}

	rot := watchRotations(ctx, t)
	tlsProbe := probeTLS(ctx, replicas)

	const load = 60 * time.Second
	var created, failed int
	var firstErrs []string
	end := time.Now().Add(load)
	// The load exercises admission only: pods for a scheduler that does not exist are never bound, so the
	// thousands of them cost the scheduler, kwok and the namespace's deletion (and the tests after this one)
	// nothing.
	unscheduled := func(p *corev1.Pod) *corev1.Pod {
		p.Spec.SchedulerName = "sparkplace-e2e-admission-only"
		return p
	}
	for app := 0; time.Now().Before(end); app++ {
		a := sparksim.NewApp(fmt.Sprintf("rot-%d", app), ns)
		driver, err := cp.Client.CoreV1().Pods(ns).Create(ctx, unscheduled(a.DriverPod()), metav1.CreateOptions{})
		record := func(err error) {
			if err == nil {
				created++
				return
			}
			failed++
			if len(firstErrs) < 5 {
				firstErrs = append(firstErrs, err.Error())
			}
		}
		record(err)
		if err != nil {
			continue
		}
		for id := 1; id <= 2; id++ {
			_, err := cp.Client.CoreV1().Pods(ns).Create(ctx, unscheduled(a.ExecutorPod(driver, id)), metav1.CreateOptions{})
			record(err)
		}
	}

	cas, servings := rot.stop()
	handshakes, handshakeFailures, handshakeErr := tlsProbe.stop()
	var admissions float64
	for _, r := range replicas {
		admissions += metricSum(ctx, t, r, "sparkplace_admissions_total")
		if metricSum(ctx, t, r, "sparkplace_certificate_expiry_timestamp_seconds") == 0 {
			t.Errorf("%s exports no certificate expiry", r.proc.Name)
		}
		if log := r.proc.Tail(1 << 20); strings.Contains(log, "forbidden") {
			t.Errorf("%s was refused an API call: the overlay's RBAC is not sufficient:\n%s", r.proc.Name, r.proc.Tail(4000))
		}
	}
	t.Logf("%s of load: %d pods created, %d failed; %.0f admissions by the two self-managed replicas; "+
		"%d CAs and %d serving certificates in the Secret (%d CA rotations, %d serving rotations); "+
		"%d TLS handshakes from a client trusting the published caBundle, %d failed",
		load, created, failed, admissions, cas, servings, cas-1, servings-1, handshakes, handshakeFailures)
	if failed > 0 {
		t.Errorf("%d of %d pod creations failed, e.g. %q", failed, created+failed, firstErrs)
	}
	if handshakeFailures > 0 {
		t.Errorf("%d TLS handshakes failed against the published caBundle: %v", handshakeFailures, handshakeErr)
	}
	if cas-1 < 2 || servings-1 < 5 {
		t.Errorf("%d CA and %d serving rotations in %s, want at least 2 and 5", cas-1, servings-1, load)
	}
	if admissions < float64(2*created) {
		t.Errorf("%.0f admissions by the replicas for %d pods; each pod should reach both", admissions, created)
	}
}

// replica is one `sparkplace webhook --cert-mode=self-managed` process.
type replica struct {
	port            int
	metrics, health string
	proc            *framework.Process
}

// adaptForLocalCluster changes what a cluster without Service networking and with the suite's webhook needs:
// the API server reaches each replica by URL on 127.0.0.1 (one webhook per replica, so every pod exercises
// both), the configuration only selects this test's namespace, and it is renamed (see certsWebhookConfig).
func adaptForLocalCluster(t *testing.T, objs []*unstructured.Unstructured, ns string, replicas []replica) {
	t.Helper()
	for _, o := range objs {
		switch {
		case o.GetKind() == "MutatingWebhookConfiguration":
			o.SetName(certsWebhookConfig)
			webhooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
			base := webhooks[0].(map[string]any)
			var out []any
			for i, r := range replicas {
				w := runtimeDeepCopy(base)
				w["name"] = fmt.Sprintf("replica-%d.%s", i, base["name"])
				unstructured.RemoveNestedField(w, "clientConfig", "service")
				_ = unstructured.SetNestedField(w, fmt.Sprintf("https://127.0.0.1:%d%s", r.port, framework.WebhookPath), "clientConfig", "url")
				exprs, _, _ := unstructured.NestedSlice(w, "namespaceSelector", "matchExpressions")
				exprs = append(exprs, map[string]any{"key": "kubernetes.io/metadata.name", "operator": "In", "values": []any{ns}})
				_ = unstructured.SetNestedSlice(w, exprs, "namespaceSelector", "matchExpressions")
				out = append(out, w)
			}
			_ = unstructured.SetNestedSlice(o.Object, out, "webhooks")
		case o.GetKind() == "ClusterRole":
			// The webhook's get (its relaxer's scope) and the CA role's update name the configuration.
			rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
			for _, r := range rules {
				rule := r.(map[string]any)
				if resources, _ := rule["resources"].([]any); slices.Contains(resources, any("mutatingwebhookconfigurations")) {
					rule["resourceNames"] = []any{certsWebhookConfig}
				}
			}
			_ = unstructured.SetNestedSlice(o.Object, rules, "rules")
		}
	}
}

func runtimeDeepCopy(m map[string]any) map[string]any {
	return (&unstructured.Unstructured{Object: m}).DeepCopy().Object
}

// serverSideApply applies objs in order as the field manager "sparkplace-e2e", failing on unknown fields.
func serverSideApply(ctx context.Context, t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	dyn, mapper := dynamicClient(t)
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		data, err := json.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		force := true
		var res dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if o.GetNamespace() != "" {
			res = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		if _, err := res.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "sparkplace-e2e", Force: &force, FieldValidation: "Strict"}); err != nil {
			t.Fatalf("server-side apply %s %s: %v", gvk.Kind, o.GetName(), err)
		}
	}
}

// deleteObjects removes what serverSideApply created (the webhook configuration first), and the Secret.
func deleteObjects(t *testing.T, objs []*unstructured.Unstructured) {
	dyn, mapper := dynamicClient(t)
	ctx := context.Background()
	for i := len(objs) - 1; i >= 0; i-- {
		o := objs[i]
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			continue
		}
		var res dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if o.GetNamespace() != "" {
			res = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		_ = res.Delete(ctx, o.GetName(), metav1.DeleteOptions{})
	}
}

func dynamicClient(t *testing.T) (*dynamic.DynamicClient, *restmapper.DeferredDiscoveryRESTMapper) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	return dyn, restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
}

// checkServiceAccountPermissions asks the API server what the webhook's ServiceAccount may do: exactly what
// it needs (the reads, its own Secret, its own webhook configuration), and nothing next to it.
func checkServiceAccountPermissions(ctx context.Context, t *testing.T) {
	t.Helper()
	attr := func(verb, group, resource, ns, name string) authorizationv1.ResourceAttributes {
		return authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Namespace: ns, Name: name}
	}
	const mwc = "mutatingwebhookconfigurations"
	const arg = "admissionregistration.k8s.io"
	cases := map[string]struct {
		attr authorizationv1.ResourceAttributes
		want bool
	}{
		"watch pods in every namespace":             {attr("watch", "", "pods", "", ""), true},
		"list nodes":                                {attr("list", "", "nodes", "", ""), true},
		"list namespaces":                           {attr("list", "", "namespaces", "", ""), true},
		"create its Secret":                         {attr("create", "", "secrets", installNamespace, ""), true},
		"update its Secret":                         {attr("update", "", "secrets", installNamespace, installSecret), true},
		"update its webhook configuration":          {attr("update", arg, mwc, "", certsWebhookConfig), true},
		"list Secrets in every namespace":           {attr("list", "", "secrets", "", ""), false},
		"list Secrets in its namespace":             {attr("list", "", "secrets", installNamespace, ""), false},
		"get another Secret in its namespace":       {attr("get", "", "secrets", installNamespace, "other"), false},
		"create Secrets in kube-system":             {attr("create", "", "secrets", "kube-system", ""), false},
		"update the suite's webhook configuration":  {attr("update", arg, mwc, "", "sparkplace"), false},
		"list webhook configurations":               {attr("list", arg, mwc, "", ""), false},
		"delete its webhook configuration":          {attr("delete", arg, mwc, "", certsWebhookConfig), false},
		"update validating webhook configurations":  {attr("update", arg, "validatingwebhookconfigurations", "", certsWebhookConfig), false},
		"create pods":                               {attr("create", "", "pods", "default", ""), false},
		"patch nodes":                               {attr("patch", "", "nodes", "", "any"), false},
		"update leases (no leader election needed)": {attr("update", "coordination.k8s.io", "leases", installNamespace, ""), false},
		"impersonate other identities":              {attr("impersonate", "", "serviceaccounts", installNamespace, ""), false},
	}
	user := "system:serviceaccount:" + installNamespace + ":" + installSA
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + installNamespace, "system:authenticated"}
	for name, tc := range cases {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: groups, ResourceAttributes: &tc.attr,
		}}
		got, err := cp.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Status.Allowed != tc.want {
			t.Errorf("ServiceAccount may %s: %v, want %v (%s)", name, got.Status.Allowed, tc.want, got.Status.Reason)
		}
	}
}

// serviceAccountKubeconfig writes a kubeconfig holding a token of the ServiceAccount ns/sa (the webhook's),
// so the replicas have its permissions and no others.
func serviceAccountKubeconfig(ctx context.Context, t *testing.T, ns, sa string) string {
	t.Helper()
	expiry := int64(3600)
	tok, err := cp.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", ns, sa, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: cp.Config.Host, CertificateAuthorityData: cp.CA.CertPEM}
	cfg.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts["sa"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: sa}
	cfg.CurrentContext = "sa"
	path := filepath.Join(cp.Dir, ns+"-"+sa+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitDeploymentPods waits until the Deployment's two pods exist: the hardened pod template passed the
// namespace's Pod Security "restricted" admission. (kwok runs them without an image; the replicas under test
// are local processes, since this cluster has no Service networking.)
func waitDeploymentPods(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		pods, err := cp.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=webhook"})
		if err == nil && len(pods.Items) == 2 {
			return
		}
		if time.Now().After(deadline) {
			events, _ := cp.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
			var msgs []string
			for _, e := range events.Items {
				msgs = append(msgs, e.Reason+": "+e.Message)
			}
			t.Fatalf("the Deployment has no two pods after a minute (%v); events: %q", err, msgs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitReady(ctx context.Context, t *testing.T, r replica) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.health+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within a minute:\n%s", r.proc.Name, r.proc.Tail(4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// metricSum is the sum of every sample of a metric the replica exports.
func metricSum(ctx context.Context, t *testing.T, r replica, name string) float64 {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.metrics+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("metrics of %s: %v", r.proc.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("metrics of %s: %v", r.proc.Name, err)
	}
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}

// rotations counts the distinct CAs and serving certificates the Secret held, from a watch.
type rotations struct {
	stop func() (cas, servings int)
}

func watchRotations(ctx context.Context, t *testing.T) rotations {
	t.Helper()
	w, err := cp.Client.CoreV1().Secrets(installNamespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + installSecret})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	cas, servings := map[string]bool{}, map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			s, ok := ev.Object.(*corev1.Secret)
			if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
				continue
			}
			mu.Lock()
			cas[string(s.Data["ca.crt"])] = true
			servings[string(s.Data["tls.crt"])] = true
			mu.Unlock()
		}
	}()
	return rotations{stop: func() (int, int) {
		w.Stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return len(cas), len(servings)
	}}
}

// tlsProbe dials every replica in a loop as a client that trusts exactly the caBundle currently published in
// the webhook configuration, as the API server does.
type tlsProbe struct {
	stop func() (handshakes, failures int64, lastErr error)
}

func probeTLS(ctx context.Context, replicas []replica) tlsProbe {
	ctx, cancel := context.WithCancel(ctx)
	var handshakes, failures atomic.Int64
	var lastErr atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cfg, err := cp.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, certsWebhookConfig, metav1.GetOptions{})
			if err != nil {
				continue
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(cfg.Webhooks[0].ClientConfig.CABundle)
			for _, r := range replicas {
				d := tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}
				conn, err := d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(r.port))
				if ctx.Err() != nil {
					return
				}
				handshakes.Add(1)
				if err != nil {
					failures.Add(1)
					lastErr.Store(err)
					continue
				}
				conn.Close()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return tlsProbe{stop: func() (int64, int64, error) {
		cancel()
		<-done
		err, _ := lastErr.Load().(error)
		return handshakes.Load(), failures.Load(), err
	}}
}
