package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sparkplace/sparkplace/policies"
)

// reviewBody is the HTTP body the API server posts for req.
func reviewBody(t testing.TB, req admission.Request) []byte {
	t.Helper()
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1TypeMeta,
		Request:  &req.AdmissionRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// serve posts body to wh as the API server does and returns the decoded response.
func serve(t testing.TB, wh http.Handler, body []byte) *admissionv1.AdmissionResponse {
	req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	wh.ServeHTTP(rec, req)
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil || review.Response == nil {
		t.Fatalf("bad response %q: %v", rec.Body, err)
	}
	return review.Response
}

// BenchmarkAdmission measures one admission through the whole HTTP path (decode the review, handle, encode the
// response) beside a no-op handler that decodes and encodes the same review. Compare noop with executor, and
// with driver-capacity (a driver's zone choice over 5,000 nodes):
//
//	go test ./webhook -run '^$' -bench Admission -benchmem -count 10
//
// Besides wall time per op it reports cpu-ns/op, the process's CPU time (user+system, all threads, so garbage
// collection included) per op: on a shared machine other processes stretch wall time but not this.
func BenchmarkAdmission(b *testing.B) {
	placer := newTestPlacer(b, policies.Options{})
	sparkplace := &admission.Webhook{Handler: &Handler{Placer: placer, Metrics: NewMetrics(nil), OnPolicyError: PolicyErrorDeny}}
	noop := &admission.Webhook{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Allowed("")
	})}
	cases := []struct {
		name    string
		wh      http.Handler
		fixture string
		profile string
	}{
		{"noop", noop, "spark-3.5-executor", ""},
		{"executor", sparkplace, "spark-3.5-executor", ""},
		{"executor-nvme", sparkplace, "spark-3.5-executor", "nvme"},
		{"driver", sparkplace, "spark-3.5-driver", ""},
		// The driver's zone choice at scale: 5,000 nodes and 1,000 Spark pods in the capacity index, and
		// reservations that expire at once, so every admission computes a fresh choice (as every new
		// application's driver does); it reads running sums, not the nodes.
		{"driver-capacity", capacityWebhook(b), "spark-3.5-driver", ""},
	}
	for _, bc := range cases {
		body := reviewBody(b, podRequest(b, withProfile(readFixture(b, bc.fixture), bc.profile)))
		b.Run(bc.name, func(b *testing.B) {
			if resp := serve(b, bc.wh, body); !resp.Allowed {
				b.Fatalf("not allowed: %+v", resp.Result)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := processCPU(b)
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				bc.wh.ServeHTTP(httptest.NewRecorder(), req)
			}
			b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// capacityWebhook serves sparkplace over a cluster of 5,000 nodes (spot and on-demand in three zones) and
// 1,000 running executors, with driverZone.reservationSeconds 0.
func capacityWebhook(b *testing.B) http.Handler {
	spot := map[string]int{"us-east-1a": 1000, "us-east-1b": 600, "us-east-1c": 2400}
	state := zoneFleet(spot)
	for i := range 997 { // with zoneFleet's 3 on-demand and 4,000 spot nodes: 5,000
		zone := []string{"us-east-1a", "us-east-1b", "us-east-1c"}[i%3]
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("system-%d", i), Labels: map[string]string{corev1.LabelTopologyZone: zone}}}
		n.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi")}
		state.SetNode(n)
	}
	for i := range 1000 {
		zone := []string{"us-east-1a", "us-east-1b", "us-east-1c"}[i%3]
		pod := readFixture(b, "spark-3.5-executor")
		pod.Name = fmt.Sprintf("running-exec-%d", i)
		pod.Labels[LabelAppID] = fmt.Sprintf("spark-%032d", i/8)
		pod.Spec.NodeName = fmt.Sprintf("spot-%s-%d", zone, i%spot[zone])
		pod.Spec.Containers[len(pod.Spec.Containers)-1].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi")}
		pod.Status.Phase = corev1.PodRunning
		state.SetPod(pod)
	}
	p := newZonePlacer(b, state, "driverZone: {reservationSeconds: 0}")
	return &admission.Webhook{Handler: &Handler{Placer: p, Metrics: NewMetrics(nil), OnPolicyError: PolicyErrorDeny}}
}

// processCPU is the CPU time the process has used so far, in nanoseconds.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
