package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	gojson "github.com/goccy/go-json"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Path is where the API server sends admission reviews for Spark pods.
const Path = "/mutate-spark-pods"

// PolicyErrorMode says how an admission answers a policy error (evaluation failure or guardrail violation).
type PolicyErrorMode string

const (
	// PolicyErrorDeny rejects the pod with the error, so no Spark pod lands unplaced. The default.
	PolicyErrorDeny PolicyErrorMode = "deny"
	// PolicyErrorAllow admits the pod unchanged, with a warning.
	PolicyErrorAllow PolicyErrorMode = "allow"
)

// Handler is the admission handler for Spark pods. It is a raw admission.Handler rather than a typed
// Defaulter: it must tell bad requests from policy errors, answer with a patch of only the fields it changed
// (a full-pod diff costs several times the admission), and skip non-Spark pods before decoding them.
type Handler struct {
	Placer        *Placer
	Metrics       *Metrics
	OnPolicyError PolicyErrorMode

	// initJSON holds the JSON of the init containers of recent decisions, by DecisionID.
	initJSON     *lru.Cache[string, []byte]
	initJSONOnce sync.Once
	// rules holds the rules-fired counters of recent decisions, by DecisionID.
	rules     *lru.Cache[string, []prometheus.Counter]
	rulesOnce sync.Once
}

// ruleCounters are the sparkplace_rules_fired_total counters of a decision's rules, looked up once per
// decision (a label lookup hashes the labels each time).
func (h *Handler) ruleCounters(decision string, rules []string) []prometheus.Counter {
	h.rulesOnce.Do(func() { h.rules, _ = lru.New[string, []prometheus.Counter](256) })
	if cs, ok := h.rules.Get(decision); ok {
		return cs
	}
	cs := make([]prometheus.Counter, len(rules))
	for i, rule := range rules {
		cs[i] = h.Metrics.RulesFired.WithLabelValues(rule)
	}
	h.rules.Add(decision, cs)
	return cs
}

// initContainersJSON is containers as JSON, encoded once per decision; nil when they do not encode
// (patchFor reports the error).
func (h *Handler) initContainersJSON(decision string, containers []corev1.Container) []byte {
	h.initJSONOnce.Do(func() { h.initJSON, _ = lru.New[string, []byte](256) })
	if raw, ok := h.initJSON.Get(decision); ok {
		return raw
	}
	raw, err := gojson.Marshal(containers)
	if err != nil {
		return nil
	}
	h.initJSON.Add(decision, raw)
	return raw
}

var _ admission.Handler = &Handler{}

// Handle answers one admission request.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	role := "none"
	resp, result := h.handle(ctx, req, &role)
	h.Metrics.Admissions.WithLabelValues(role, result).Inc()
	h.Metrics.AdmissionLatency.WithLabelValues(role).Observe(time.Since(start).Seconds())
	return resp
}

func (h *Handler) handle(ctx context.Context, req admission.Request, role *string) (admission.Response, string) {
	if req.UID == "" || req.Kind.Kind == "" || req.Operation == "" {
		return admission.Errored(http.StatusBadRequest, errors.New("malformed AdmissionReview: the request has no uid, kind or operation")), ResultError
	}
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.Resource.Resource != "pods" || req.SubResource != "" {
		return admission.Allowed(fmt.Sprintf("sparkplace only places pods, not %s", describeKind(req))), ResultSkipped
	}
	if req.Operation != admissionv1.Create {
		return admission.Allowed("sparkplace only places pods at CREATE"), ResultSkipped
	}
	if len(req.Object.Raw) == 0 {
		return admission.Errored(http.StatusBadRequest, errors.New("admission request carries no pod object")), ResultError
	}
	pod, err := decodeAdmittedPod(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the pod: %w", err)), ResultError
	}
	if *role = sparkRole(pod); *role == "" {
		*role = "none"
		return admission.Allowed("not a Spark driver or executor pod (spark-role label)"), ResultSkipped
	}
	before := shapeOf(pod)
	out, err := h.Placer.Place(ctx, pod, req.Namespace, string(req.Operation))
	if req.DryRun != nil && *req.DryRun && *role == RoleDriver {
		h.Placer.forgetZone(pod) // a dry run creates no driver: its zone reservation must not count
	}
	var perr *PolicyError
	switch {
	case errors.As(err, &perr):
		kind := "evaluation"
		if perr.Guardrail {
			kind = "guardrail"
		}
		h.Metrics.PolicyErrors.WithLabelValues(kind).Inc()
		logFor(ctx, req).Error(err, "policy error", "role", *role, "onPolicyError", h.OnPolicyError)
		if h.OnPolicyError == PolicyErrorAllow {
			resp := admission.Allowed("")
			resp.Warnings = []string{"sparkplace did not place this pod: " + err.Error()}
			return resp, ResultError
		}
		return admission.Denied(fmt.Sprintf("sparkplace could not place this Spark %s pod (%s); ask your platform team to check the sparkplace policies", *role, err)), ResultError
	case err != nil:
		// Cluster state could not be read (the owner pod of a client-mode executor). The API server passes
		// an answer on to the client as it is: it neither retries nor applies the failurePolicy, which
		// covers only a webhook it cannot call. A 5xx would make Spark's Kubernetes client retry the
		// create three times, four admissions for one executor; a refusal is not retried by the client,
		// and Spark's allocator asks again on its next round, a second later.
		logFor(ctx, req).Error(err, "placing pod", "role", *role)
		return admission.Denied(fmt.Sprintf("sparkplace could not read the cluster state to place this Spark %s pod (%v); this is temporary: Spark asks again on its next allocation round", *role, err)), ResultError
	}
	for _, c := range h.ruleCounters(out.DecisionID, out.Decision.Rules) {
		c.Inc()
	}
	if out.Denied() {
		return admission.Denied("sparkplace policy: " + strings.Join(out.Decision.Deny, "; ")), ResultDenied
	}
	if len(out.Changed) == 0 {
		return admission.Allowed("placement already applied"), ResultUnchanged
	}
	var initJSON []byte
	if before.initContainers < 0 && len(pod.Spec.InitContainers) == len(out.Decision.InitContainers) {
		// The pod had none and got the decision's init containers, all of them as they are: their JSON is
		// the same for every pod of this decision (encoding a container, its quantities above all, is the
		// larger part of the nvme profile's patch).
		initJSON = h.initContainersJSON(out.DecisionID, pod.Spec.InitContainers)
	}
	patch, err := patchFor(pod, out.Decision, out.Changed, before, initJSON)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("encoding the patch: %w", err)), ResultError
	}
	// Set as bytes rather than Response.Patches, which controller-runtime would encode with encoding/json.
	resp := admission.Allowed("")
	resp.Patch, resp.PatchType = patch, &jsonPatch
	return resp, ResultMutated
}

// jsonPatch is the patch type of every response with a patch (one value: the response only reads it).
var jsonPatch = admissionv1.PatchTypeJSONPatch

func describeKind(req admission.Request) string {
	kind := req.Kind.Kind
	if req.Kind.Group != "" {
		kind += "." + req.Kind.Group
	}
	if req.SubResource != "" {
		kind += " (subresource " + req.SubResource + ")"
	}
	return kind
}

// logFor is the request's logger, built only when there is something to log.
func logFor(ctx context.Context, req admission.Request) logr.Logger {
	return ctrl.LoggerFrom(ctx).WithValues("namespace", req.Namespace, "name", req.Name, "uid", req.UID)
}
