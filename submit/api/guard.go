package api

import (
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
)

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
