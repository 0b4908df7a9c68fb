package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sparkplace/sparkplace/policies"
)

var podResource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}

// podRequest is the admission request the API server sends for creating pod.
func podRequest(t testing.TB, pod *corev1.Pod) admission.Request {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "705ab4f5-6393-11e8-b7cc-42010a800002",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  podResource,
		Namespace: pod.Namespace,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	}}
}

// guardrailBreakingPolicyDir replaces the bundle's nvme.rego with one whose init container asks for
// CAP_SYS_ADMIN, which the guardrails forbid.
func guardrailBreakingPolicyDir(t testing.TB) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "policies", "bundle", "sparkplace", "placement", "nvme.rego"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte(`"add": ["CHOWN"]`)) {
		t.Fatal(`nvme.rego no longer adds ["CHOWN"]; update this test`)
	}
	dir := t.TempDir()
	broken := bytes.Replace(src, []byte(`"add": ["CHOWN"]`), []byte(`"add": ["CHOWN", "SYS_ADMIN"]`), 1)
	if err := os.WriteFile(filepath.Join(dir, "nvme.rego"), broken, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestHandle(t *testing.T) {
	executor := func(profile string) func(testing.TB) admission.Request {
		return func(t testing.TB) admission.Request {
			return podRequest(t, withProfile(readFixture(t, "spark-3.5-executor"), profile))
		}
	}
	cases := map[string]struct {
		policies      policies.Options
		onPolicyError PolicyErrorMode
		request       func(testing.TB) admission.Request
		wantAllowed   bool
		wantPaths     []string
		wantMessage   string
		wantWarning   string
		// breakGuardrail serves an nvme.rego whose init container adds CAP_SYS_ADMIN.
		breakGuardrail bool
		wantResult     string
		wantRole       string
	}{
		"spot executor follows its driver's zone": {
			request:     executor(""),
			wantAllowed: true,
			wantPaths:   []string{"/metadata/labels/sparkplace.io~1zone-strictness", "/spec/nodeSelector", "/spec/tolerations/-", "/spec/tolerations/-", "/spec/affinity", "/spec/topologySpreadConstraints", "/metadata/annotations"},
			wantResult:  ResultMutated, wantRole: RoleExecutor,
		},
		"nvme executor gets hostPath volumes and the chown init container": {
			request:     executor("nvme"),
			wantAllowed: true,
			wantPaths:   []string{"/metadata/labels/sparkplace.io~1zone-strictness", "/spec/nodeSelector", "/spec/tolerations/-", "/spec/tolerations/-", "/spec/affinity", "/spec/volumes/0", "/spec/volumes/-", "/spec/initContainers", "/spec/topologySpreadConstraints", "/metadata/annotations"},
			wantResult:  ResultMutated, wantRole: RoleExecutor,
		},
		"fargate driver gets the profile label and Fargate selector only": {
			request: func(t testing.TB) admission.Request {
				return podRequest(t, withProfile(readFixture(t, "spark-4.0-driver"), "fargate"))
			},
			wantAllowed: true,
			wantPaths:   []string{"/metadata/labels/sparkplace.io~1compute", "/spec/nodeSelector", "/spec/tolerations/-", "/metadata/annotations"},
			wantResult:  ResultMutated, wantRole: RoleDriver,
		},
		"a pod with annotations and a node selector gets only the keys placement adds": {
			request: func(t testing.TB) admission.Request {
				pod := readFixture(t, "spark-3.5-executor")
				pod.Annotations = map[string]string{"example.com/owner": "team-a"}
				pod.Spec.NodeSelector = map[string]string{"kubernetes.io/arch": "amd64"}
				return podRequest(t, pod)
			},
			wantAllowed: true,
			wantPaths: []string{
				"/metadata/labels/sparkplace.io~1zone-strictness", "/spec/nodeSelector/eks.amazonaws.com~1capacityType", "/spec/nodeSelector/noderole",
				"/spec/tolerations/-", "/spec/tolerations/-", "/spec/affinity", "/spec/topologySpreadConstraints", "/metadata/annotations/sparkplace.io~1placement",
			},
			wantResult: ResultMutated, wantRole: RoleExecutor,
		},
		"an already placed pod is left alone": {
			request: func(t testing.TB) admission.Request {
				pod := readFixture(t, "spark-3.5-executor")
				if _, err := newTestPlacer(t, policies.Options{}).Place(context.Background(), pod, pod.Namespace, "CREATE"); err != nil {
					t.Fatal(err)
				}
				return podRequest(t, pod)
			},
			wantAllowed: true,
			wantMessage: "placement already applied",
			wantResult:  ResultUnchanged, wantRole: RoleExecutor,
		},
		"unknown profile is denied with the valid ones": {
			request:     executor("gpu"),
			wantMessage: "gpu",
			wantResult:  ResultDenied, wantRole: RoleExecutor,
		},
		"pod without Spark labels is allowed unchanged": {
			request: func(t testing.TB) admission.Request {
				return podRequest(t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "nginx", Namespace: "web", Labels: map[string]string{"app": "nginx"}}})
			},
			wantAllowed: true,
			wantMessage: "not a Spark driver or executor pod",
			wantResult:  ResultSkipped, wantRole: "none",
		},
		"spark-role other than driver or executor is allowed unchanged": {
			request: func(t testing.TB) admission.Request {
				pod := readFixture(t, "spark-3.5-executor")
				pod.Labels["spark-role"] = "shuffle-service"
				return podRequest(t, pod)
			},
			wantAllowed: true,
			wantResult:  ResultSkipped, wantRole: "none",
		},
		"update is allowed unchanged": {
			request: func(t testing.TB) admission.Request {
				req := executor("")(t)
				req.Operation = admissionv1.Update
				return req
			},
			wantAllowed: true,
			wantMessage: "only places pods at CREATE",
			wantResult:  ResultSkipped, wantRole: "none",
		},
		"non-pod object is allowed unchanged": {
			request: func(t testing.TB) admission.Request {
				req := executor("")(t)
				req.Kind = metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
				req.Resource = metav1.GroupVersionResource{Version: "v1", Resource: "configmaps"}
				req.Object.Raw = []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`)
				return req
			},
			wantAllowed: true,
			wantMessage: "not ConfigMap",
			wantResult:  ResultSkipped, wantRole: "none",
		},
		"pod subresource is allowed unchanged": {
			request: func(t testing.TB) admission.Request {
				req := executor("")(t)
				req.SubResource = "binding"
				return req
			},
			wantAllowed: true,
			wantResult:  ResultSkipped, wantRole: "none",
		},
		"malformed pod is a bad request": {
			request: func(t testing.TB) admission.Request {
				req := executor("")(t)
				req.Object.Raw = []byte(`{"metadata": {"labels": {"spark-role": 7}}}`)
				return req
			},
			wantMessage: "decoding the pod",
			wantResult:  ResultError, wantRole: "none",
		},
		"request without object is a bad request": {
			request: func(t testing.TB) admission.Request {
				req := executor("")(t)
				req.Object.Raw = nil
				return req
			},
			wantMessage: "carries no pod object",
			wantResult:  ResultError, wantRole: "none",
		},
		"runtime policy error denies by default": {
			policies:    policies.Options{PolicyDir: filepath.Join("..", "policies", "testdata", "conflict")},
			request:     func(t testing.TB) admission.Request { return podRequest(t, readFixture(t, "spark-3.5-driver")) },
			wantMessage: "could not place this Spark driver pod",
			wantResult:  ResultError, wantRole: RoleDriver,
		},
		"runtime policy error allows unchanged with a warning when configured": {
			policies:      policies.Options{PolicyDir: filepath.Join("..", "policies", "testdata", "conflict")},
			onPolicyError: PolicyErrorAllow,
			request:       func(t testing.TB) admission.Request { return podRequest(t, readFixture(t, "spark-3.5-driver")) },
			wantAllowed:   true,
			wantWarning:   "sparkplace did not place this pod: policy error",
			wantResult:    ResultError, wantRole: RoleDriver,
		},
		"decision breaking a guardrail is denied, naming the field": {
			breakGuardrail: true,
			request:        executor("nvme"),
			wantMessage:    "guardrail initContainers[sparkplace-chown-local-dirs].securityContext.capabilities.add: SYS_ADMIN is not allowed",
			wantResult:     ResultError, wantRole: RoleExecutor,
		},
		"decision breaking a guardrail is admitted unchanged with --on-policy-error=allow": {
			breakGuardrail: true,
			onPolicyError:  PolicyErrorAllow,
			request:        executor("nvme"),
			wantAllowed:    true,
			wantWarning:    "capabilities.add: SYS_ADMIN is not allowed",
			wantResult:     ResultError, wantRole: RoleExecutor,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			opts := tc.policies
			if tc.breakGuardrail {
				opts.PolicyDir = guardrailBreakingPolicyDir(t)
			}
			m := NewMetrics(nil)
			mode := tc.onPolicyError
			if mode == "" {
				mode = PolicyErrorDeny
			}
			h := &Handler{Placer: newTestPlacer(t, opts), Metrics: m, OnPolicyError: mode}
			resp := h.Handle(context.Background(), tc.request(t))

			if resp.Allowed != tc.wantAllowed {
				t.Errorf("allowed = %v, want %v (result %+v)", resp.Allowed, tc.wantAllowed, resp.Result)
			}
			var ops []struct {
				Op, Path string
				Value    any
			}
			if len(resp.Patch) > 0 {
				if err := json.Unmarshal(resp.Patch, &ops); err != nil {
					t.Fatalf("patch is not JSON: %v", err)
				}
			}
			var paths []string
			for _, op := range ops {
				paths = append(paths, op.Path)
			}
			if strings.Join(paths, " ") != strings.Join(tc.wantPaths, " ") {
				t.Errorf("patch paths = %v, want %v", paths, tc.wantPaths)
			}
			if resp.Result != nil && !strings.Contains(resp.Result.Message, tc.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", resp.Result.Message, tc.wantMessage)
			}
			if tc.wantWarning != "" && (len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], tc.wantWarning)) {
				t.Errorf("warnings = %q, want one containing %q", resp.Warnings, tc.wantWarning)
			}
			if got := testutil.ToFloat64(m.Admissions.WithLabelValues(tc.wantRole, tc.wantResult)); got != 1 {
				t.Errorf("sparkplace_admissions_total{role=%q,result=%q} = %v, want 1", tc.wantRole, tc.wantResult, got)
			}
		})
	}
}

// TestServeHTTPBadReviews sends what is not a valid AdmissionReview through the HTTP path: each gets an
// answer, never a panic.
func TestServeHTTPBadReviews(t *testing.T) {
	wh := &admission.Webhook{Handler: &Handler{Placer: newTestPlacer(t, policies.Options{}), Metrics: NewMetrics(nil), OnPolicyError: PolicyErrorDeny}}
	cases := map[string]struct {
		body        string
		contentType string
		wantStatus  int
	}{
		"not JSON":                {body: "{", contentType: "application/json", wantStatus: http.StatusOK},
		"empty body":              {body: "", contentType: "application/json", wantStatus: http.StatusOK},
		"wrong content type":      {body: `{}`, contentType: "text/plain", wantStatus: http.StatusOK},
		"review without request":  {body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, contentType: "application/json", wantStatus: http.StatusOK},
		"request with bad object": {body: `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"version":"v1","kind":"Pod"},"resource":{"version":"v1","resource":"pods"},"operation":"CREATE","object":[1,2]}}`, contentType: "application/json", wantStatus: http.StatusOK},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			rec := httptest.NewRecorder()
			wh.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.wantStatus, rec.Body)
			}
			var review admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
				t.Fatalf("response is not an AdmissionReview: %v: %s", err, rec.Body)
			}
			if review.Response == nil || review.Response.Allowed {
				t.Errorf("response = %+v, want a refusal", review.Response)
			}
		})
	}
}

// TestRulesFiredAreCounted: every admission counts each rule its decision fired, the second executor of an
// application (whose counters the handler keeps per decision) as the first.
func TestRulesFiredAreCounted(t *testing.T) {
	m := NewMetrics(nil)
	h := &Handler{Placer: newTestPlacer(t, policies.Options{}), Metrics: m, OnPolicyError: PolicyErrorDeny}
	pod := withProfile(readFixture(t, "spark-3.5-executor"), "nvme")
	placed := pod.DeepCopy()
	if _, err := newTestPlacer(t, policies.Options{}).Place(context.Background(), placed, placed.Namespace, "CREATE"); err != nil {
		t.Fatal(err)
	}
	rules := explanation(t, placed).Rules
	if len(rules) == 0 {
		t.Fatal("the decision fired no rule")
	}
	for range 2 {
		if resp := h.Handle(context.Background(), podRequest(t, pod)); !resp.Allowed {
			t.Fatalf("not allowed: %+v", resp.Result)
		}
	}
	for _, rule := range rules {
		if got := testutil.ToFloat64(m.RulesFired.WithLabelValues(rule)); got != 2 {
			t.Errorf("sparkplace_rules_fired_total{rule=%q} = %v after two admissions, want 2", rule, got)
		}
	}
}
