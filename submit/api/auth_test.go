package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRefusedRequestsDoNothing: unsigned, badly signed, stale and cross-site requests get the service's
// error shape, are counted by reason, and never reach the service.
func TestRefusedRequestsDoNothing(t *testing.T) {
	const body = `{"name": "x", "containerProvider": {"type": "EKS", "id": "c", "info": {"eksInfo": {"namespace": "analytics"}}}}`
	now := time.Now()
	cases := map[string]struct {
		req        func(t *testing.T) *http.Request
		wantStatus int
		wantCode   string
		wantReason string
	}{
		"unsigned": {
			req: func(*testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/virtualclusters", strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				return r
			},
			wantStatus: 403, wantCode: "MissingAuthenticationTokenException", wantReason: "missing",
		},
		"wrong secret": {
			req: func(t *testing.T) *http.Request {
				return signed(t, http.MethodPost, "/virtualclusters", body, "not-the-secret", "us-east-1", now)
			},
			wantStatus: 403, wantCode: "InvalidSignatureException", wantReason: "bad_signature",
		},
		"signed 20 minutes ago": {
			req: func(t *testing.T) *http.Request {
				return signed(t, http.MethodPost, "/virtualclusters", body, "secret", "us-east-1", now.Add(-20*time.Minute))
			},
			wantStatus: 403, wantCode: "InvalidSignatureException", wantReason: "expired",
		},
		"signed for another region": {
			req: func(t *testing.T) *http.Request {
				return signed(t, http.MethodPost, "/virtualclusters", body, "secret", "eu-west-1", now)
			},
			wantStatus: 403, wantCode: "InvalidSignatureException", wantReason: "scope",
		},
		"body changed after signing": {
			req: func(t *testing.T) *http.Request {
				r := signed(t, http.MethodPost, "/virtualclusters", body, "secret", "us-east-1", now)
				r.Body = io.NopCloser(strings.NewReader(strings.Replace(body, `"x"`, `"y"`, 1)))
				return r
			},
			wantStatus: 403, wantCode: "InvalidSignatureException", wantReason: "bad_signature",
		},
		"unknown access key": {
			req: func(t *testing.T) *http.Request {
				r := signed(t, http.MethodGet, "/virtualclusters", "", "secret", "us-east-1", now)
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), testKey, "AKIDUNKNOWN", 1))
				return r
			},
			wantStatus: 403, wantCode: "UnrecognizedClientException", wantReason: "unknown_key",
		},
		"a browser's cross-site request": {
			req: func(t *testing.T) *http.Request {
				r := signed(t, http.MethodGet, "/virtualclusters", "", "secret", "us-east-1", now)
				r.Header.Set("Origin", "https://evil.example")
				return r
			},
			wantStatus: 403, wantCode: "AccessDeniedException", wantReason: "cross_site",
		},
		"a text/plain POST": {
			req: func(*testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/virtualclusters", strings.NewReader(body))
				r.Header.Set("Content-Type", "text/plain")
				return r
			},
			wantStatus: 403, wantCode: "AccessDeniedException", wantReason: "content_type",
		},
		"DNS rebinding: a Host the server does not serve": {
			req: func(t *testing.T) *http.Request {
				r := signed(t, http.MethodGet, "/virtualclusters", "", "secret", "us-east-1", now)
				r.Host = "evil.example:8080"
				return r
			},
			wantStatus: 403, wantCode: "AccessDeniedException", wantReason: "host",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			called := false
			opts := testOptions(nil, "us-east-1")
			opts.ServiceFor = func(Caller) (Service, error) { called = true; return nil, nil }
			opts.AllowedHosts = []string{"example.com"} // httptest's requests say Host: example.com
			opts.Metrics = m
			rec := httptest.NewRecorder()
			NewHandler(opts).ServeHTTP(rec, tc.req(t))
			var got struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			if rec.Code != tc.wantStatus || got.Type != tc.wantCode || rec.Header().Get("x-amzn-errortype") != tc.wantCode || got.Message == "" {
				t.Errorf("got %d %s %q (header %s), want %d %s", rec.Code, got.Type, got.Message, rec.Header().Get("x-amzn-errortype"), tc.wantStatus, tc.wantCode)
			}
			if called {
				t.Error("a refused request reached the service")
			}
			if n := testutil.ToFloat64(m.authFailures.WithLabelValues(tc.wantReason)); n != 1 {
				t.Errorf("sparkplace_api_auth_failures_total{reason=%q} = %v, want 1", tc.wantReason, n)
			}
		})
	}
}

// TestCallerIdentityARN: createdBy is what the service model's RequestIdentityUserArn allows, whatever the
// Kubernetes user name holds.
func TestCallerIdentityARN(t *testing.T) {
	cases := map[string]struct {
		caller Caller
		want   string
	}{
		"the Secret's ARN":               {Caller{User: "alice@example.com", ARN: "arn:aws:sts::152324983118:assumed-role/data-eng/alice"}, "arn:aws:sts::152324983118:assumed-role/data-eng/alice"},
		"an IAM user named as the user":  {Caller{User: "alice@example.com"}, "arn:aws:iam::152324983118:user/alice@example.com"},
		"an OIDC user with a colon":      {Caller{User: "oidc:alice"}, "arn:aws:iam::152324983118:user/oidc-alice"},
		"characters IAM names cannot be": {Caller{User: "Alice Smith/ops"}, "arn:aws:iam::152324983118:user/Alice-Smith-ops"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := tc.caller.IdentityARN("152324983118")
			if got != tc.want || !identityARN.MatchString(got) {
				t.Errorf("IdentityARN = %q (model pattern matched: %v), want %q", got, identityARN.MatchString(got), tc.want)
			}
		})
	}
}
