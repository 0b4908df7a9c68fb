package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/e2e/sparksim"
)

// secondWebhookLabel is what the second webhook adds to every Spark pod.
const secondWebhookLabel = "cost.example.com/center"

// startSecondWebhook serves a mutating webhook in the test process that labels every Spark pod of the
// namespace, registered so the API server calls it after sparkplace (configurations are called in name
// order). Its change makes the API server call sparkplace again (reinvocationPolicy IfNeeded).
func startSecondWebhook(t *testing.T, ns string) {
	t.Helper()
	kp, err := cp.CA.Issue(framework.CertRequest{CommonName: "second-webhook", Server: true, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		var pod corev1.Pod
		_ = json.Unmarshal(review.Request.Object.Raw, &pod)
		resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		if _, ok := pod.Labels[secondWebhookLabel]; !ok {
			patch := `[{"op":"add","path":"/metadata/labels/cost.example.com~1center","value":"analytics"}]`
			pt := admissionv1.PatchTypeJSONPatch
			resp.Patch, resp.PatchType = []byte(patch), &pt
		}
		review.Response, review.Request = resp, nil
		_ = json.NewEncoder(w).Encode(review)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	url := "https://" + ln.Addr().String() + "/mutate"
	none, fail, never := admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.Fail, admissionregistrationv1.NeverReinvocationPolicy
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "zz-second-webhook-" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "second.example.com",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: cp.CA.CertPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			ObjectSelector:          &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "spark-role", Operator: metav1.LabelSelectorOpExists}}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			SideEffects:             &none,
			FailurePolicy:           &fail,
			ReinvocationPolicy:      &never,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	api := cp.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if _, err := api.Create(context.Background(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatalf("register the second webhook: %v", err)
	}
	t.Cleanup(func() { _ = api.Delete(context.Background(), cfg.Name, metav1.DeleteOptions{}) })
}

// TestReinvocationPatchesNothing: a second webhook labels Spark pods after sparkplace, so the API server
// calls sparkplace again with the pod as defaulted (the chown init container's termination message fields,
// the service-account token mounted into it) and relabelled. sparkplace's second answer has no patch, and
// the annotation still tells what sparkplace did: nothing it added is reported as the user's.
func TestReinvocationPatchesNothing(t *testing.T) {
	t.Parallel()
	env := newZoneEnv(t, "zt-reinvoke", zoneConfig{}, framework.Fleet{Region: "us-east-1", Zones: []string{"us-east-1a"},
		Groups: []framework.NodeGroup{withNVMe(onDemandGroup), withNVMe(spotGroup)}})
	startSecondWebhook(t, env.ns)
	app := sparksim.NewApp("reinvoke", env.ns).WithProfile("nvme")
	if _, err := cp.Client.CoreV1().Pods(env.ns).Create(context.Background(), app.DriverPod(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const executors = 3
	execs := allocate(t, app, executors)
	driver := waitRunning(t, env.ns, app.DriverName())
	for _, p := range append(execs, driver) {
		ex := explanation(t, p.Pod)
		if len(ex.Respected) != 0 {
			t.Errorf("pod %s: annotation reports %v as set on the pod; sparkplace set them", p.Pod.Name, ex.Respected)
		}
		if p.Pod.Labels[secondWebhookLabel] != "analytics" {
			t.Errorf("pod %s: the second webhook did not run (labels %v)", p.Pod.Name, p.Pod.Labels)
		}
		if n := len(p.Pod.Spec.InitContainers); n != 1 || p.Pod.Spec.InitContainers[0].TerminationMessagePath == "" {
			t.Errorf("pod %s: init containers %+v; want sparkplace's one, as the API server defaulted it", p.Pod.Name, p.Pod.Spec.InitContainers)
		}
	}
	for role, n := range map[string]float64{"driver": 1, "executor": executors} {
		if got := admissionCount(t, env.webhook, role, "mutated"); got != n {
			t.Errorf("%s admissions mutated = %v, want %v (the first call for each pod)", role, got, n)
		}
		if got := admissionCount(t, env.webhook, role, "unchanged"); got != n {
			t.Errorf("%s admissions unchanged = %v, want %v (the reinvocation for each pod, with no patch)", role, got, n)
		}
	}
}

func withNVMe(g framework.NodeGroup) framework.NodeGroup {
	g.Labels = mergeLabels(g.Labels, map[string]string{framework.LabelDisk: "nvme"})
	return g
}
