package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sparkplace/sparkplace/policies"
)

var metav1TypeMeta = metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}

// FuzzAdmission sends arbitrary bytes as an AdmissionReview through the HTTP path: every input gets an
// AdmissionReview answer, and nothing panics. The seed corpus (every fixture under every profile, plus broken
// reviews) runs in `go test`.
func FuzzAdmission(f *testing.F) {
	for _, fixture := range fixtures {
		for _, profile := range profiles {
			f.Add(reviewBody(f, podRequest(f, withProfile(readFixture(f, fixture), profile))))
		}
	}
	for _, seed := range []string{
		``, `{`, `null`, `[]`, `{"request":null}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"version":"v1","kind":"Pod"},"resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":{"metadata":{"labels":{"spark-role":"executor"},"ownerReferences":[{"apiVersion":"v1","kind":"Pod","name":"","controller":true}]}}}}`,
		`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"version":"v1","kind":"Pod"},"resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":{"metadata":{"labels":{"spark-role":"driver","sparkplace.io/profile":"nvme"}},"spec":{"volumes":[{"name":"spark-local-dir-1"}],"containers":[]}}}}`,
	} {
		f.Add([]byte(seed))
	}
	wh := &admission.Webhook{Handler: &Handler{Placer: newTestPlacer(f, policies.Options{}), Metrics: NewMetrics(nil), OnPolicyError: PolicyErrorDeny}}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		wh.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		serve(t, wh, body)
	})
}
