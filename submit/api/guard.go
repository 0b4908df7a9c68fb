package api

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
)

type (
	serviceKey   struct{}
	operationKey struct{}
)

func svcOf(r *http.Request) Service { return r.Context().Value(serviceKey{}).(Service) }

// ServeHTTP refuses cross-site and unauthenticated requests before anything else happens, then serves the
// operation as the caller.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := h.mux.Handler(r)
	op := operations[pattern]
	if op == "" {
		op = notSupported[pattern]
	}
	if op == "" {
		op = "Unknown"
	}
	// Every answer carries a request id, as the service's do (the SDKs report it with errors).
	w.Header().Set("x-amzn-RequestId", uuid.NewString())
	r = r.WithContext(context.WithValue(r.Context(), operationKey{}, op))
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() { h.opts.Metrics.request(op, rec.status) }()
	if err := h.crossSite(r); err != nil {
		h.refuse(rec, r, err)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		h.fail(rec, r, validation("request body unreadable or larger than %d bytes", maxBody))
		return
	}
	caller, aerr := h.sig.verify(r.Context(), r, body)
	if aerr != nil {
		h.refuse(rec, r, aerr)
		return
	}
	svc, err := h.opts.ServiceFor(*caller)
	if err != nil {
		h.fail(rec, r, err)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), serviceKey{}, svc))
	r.Body = io.NopCloser(bytes.NewReader(body))
	h.mux.ServeHTTP(rec, r)
}

// refuse answers a refused request; nothing else happens for it.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, err *authError) {
	h.opts.Metrics.authFailure(err.reason)
	h.log.Info("emr-containers request refused", "reason", err.reason, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err.message)
	h.fail(w, r, err.apiError)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// crossSite refuses what only a browser sends, so that a web page cannot drive the API through the
// operator's browser: a Host the server is not known by (DNS rebinding: evil.example resolving to
// 127.0.0.1), an Origin or a cross-site Sec-Fetch-Site header (the CLI and SDKs send neither), and a body
// that is not JSON (a "simple" cross-site form or text/plain POST needs no CORS preflight).
func (h *handler) crossSite(r *http.Request) *authError {
	if len(h.opts.AllowedHosts) > 0 && !slices.Contains(h.opts.AllowedHosts, hostOnly(r.Host)) {
		return denied("host", "AccessDeniedException", "Host %q is not a name this endpoint serves", r.Host)
	}
	if o := r.Header.Get("Origin"); o != "" {
		return denied("cross_site", "AccessDeniedException", "browser requests (Origin %s) are not served", o)
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "none" && site != "same-origin" {
		return denied("cross_site", "AccessDeniedException", "cross-site browser requests (Sec-Fetch-Site %s) are not served", site)
	}
	if r.ContentLength != 0 || r.Header.Get("Transfer-Encoding") != "" {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || (mt != "application/json" && !strings.HasPrefix(mt, "application/x-amz-json")) {
			return denied("content_type", "AccessDeniedException", "request bodies must be application/json, not %q", r.Header.Get("Content-Type"))
		}
	}
	return nil
}

// hostOnly is the host part of a Host header, without the port.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.Trim(h, "[]")
	}
	return strings.Trim(hostport, "[]")
}
