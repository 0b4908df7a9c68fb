package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
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
// response) beside a no-op handler that decodes and encodes the same review. Compare noop with executor:
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

// processCPU is the CPU time the process has used so far, in nanoseconds.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
