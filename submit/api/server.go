package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/sparkplace/sparkplace/submit"
)

// Service is what the API needs from the submitter; *submit.Submitter implements it.
type Service interface {
	CreateVirtualCluster(ctx context.Context, name, namespace string, opts ...submit.VirtualClusterOption) (*submit.VirtualCluster, error)
	ListVirtualClusters(ctx context.Context, states ...string) ([]submit.VirtualCluster, error)
	DescribeVirtualCluster(ctx context.Context, id string) (*submit.VirtualCluster, error)
	DeleteVirtualCluster(ctx context.Context, id string) (*submit.VirtualCluster, error)
	StartJobRun(ctx context.Context, req *submit.StartJobRunRequest) (*submit.Submission, error)
	ListJobRuns(ctx context.Context, opts submit.ListJobRunsOptions) ([]submit.JobRun, error)
	DescribeJobRun(ctx context.Context, virtualClusterID, id string) (*submit.JobRun, error)
	CancelJobRun(ctx context.Context, virtualClusterID, id string) (*submit.JobRun, error)
	CreateJobTemplate(ctx context.Context, req *submit.CreateJobTemplateRequest) (*submit.JobTemplate, error)
	DescribeJobTemplate(ctx context.Context, id string) (*submit.JobTemplate, error)
	ListJobTemplates(ctx context.Context) ([]submit.JobTemplate, error)
	DeleteJobTemplate(ctx context.Context, id string) error
	TagResource(ctx context.Context, arn string, tags map[string]string) error
	UntagResource(ctx context.Context, arn string, keys []string) error
	ListTagsForResource(ctx context.Context, arn string) (map[string]string, error)
}

var _ Service = (*submit.Submitter)(nil)

// Options configure the handler.
type Options struct {
	// Keys verify the callers' SigV4 signatures. Required.
	Keys KeyStore
	// ServiceFor returns the Service acting as an authenticated caller (impersonating it, so Kubernetes RBAC
	// on JobRuns and VirtualClusters decides). Required.
	ServiceFor func(Caller) (Service, error)
	// Region is the region requests must be signed for. Defaults to us-east-1.
	Region string
	// AllowedHosts are the Host header values served (DNS-rebinding defence); empty allows any.
	AllowedHosts []string
	// Now is the clock signatures are checked against. Defaults to time.Now.
	Now func() time.Time
	// Logger records requests that fail on the server side and refused authentications. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// Metrics counts requests and refused authentications. Optional.
	Metrics *Metrics
}

// maxBody bounds request bodies; StartJobRun bodies are a few KiB.
const maxBody = 1 << 20

// operations names the routes as the service model does (the metric's operation label).
var operations = map[string]string{
	"POST /virtualclusters":                     "CreateVirtualCluster",
	"GET /virtualclusters":                      "ListVirtualClusters",
	"GET /virtualclusters/{vc}":                 "DescribeVirtualCluster",
	"DELETE /virtualclusters/{vc}":              "DeleteVirtualCluster",
	"POST /virtualclusters/{vc}/jobruns":        "StartJobRun",
	"GET /virtualclusters/{vc}/jobruns":         "ListJobRuns",
	"GET /virtualclusters/{vc}/jobruns/{id}":    "DescribeJobRun",
	"DELETE /virtualclusters/{vc}/jobruns/{id}": "CancelJobRun",
	"POST /jobtemplates":                        "CreateJobTemplate",
	"GET /jobtemplates":                         "ListJobTemplates",
	"GET /jobtemplates/{id}":                    "DescribeJobTemplate",
	"DELETE /jobtemplates/{id}":                 "DeleteJobTemplate",
	"POST /tags/{arn...}":                       "TagResource",
	"DELETE /tags/{arn...}":                     "UntagResource",
	"GET /tags/{arn...}":                        "ListTagsForResource",
}

// NewHandler returns the emr-containers API as an http.Handler: cross-site requests are refused, every
// request must carry a valid SigV4 signature, and each operation runs as the signing caller.
func NewHandler(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &handler{opts: opts, log: opts.Logger, sig: &sigV4{keys: opts.Keys, region: opts.Region, now: opts.Now, signer: v4.NewSigner()}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /virtualclusters", h.createVirtualCluster)
	mux.HandleFunc("GET /virtualclusters", h.listVirtualClusters)
	mux.HandleFunc("GET /virtualclusters/{vc}", h.describeVirtualCluster)
	mux.HandleFunc("DELETE /virtualclusters/{vc}", h.deleteVirtualCluster)
	mux.HandleFunc("POST /virtualclusters/{vc}/jobruns", h.startJobRun)
	mux.HandleFunc("GET /virtualclusters/{vc}/jobruns", h.listJobRuns)
	mux.HandleFunc("GET /virtualclusters/{vc}/jobruns/{id}", h.describeJobRun)
	mux.HandleFunc("DELETE /virtualclusters/{vc}/jobruns/{id}", h.cancelJobRun)
	mux.HandleFunc("POST /jobtemplates", h.createJobTemplate)
	mux.HandleFunc("GET /jobtemplates", h.listJobTemplates)
	mux.HandleFunc("GET /jobtemplates/{id}", h.describeJobTemplate)
	mux.HandleFunc("DELETE /jobtemplates/{id}", h.deleteJobTemplate)
	mux.HandleFunc("POST /tags/{arn...}", h.tagResource)
	mux.HandleFunc("DELETE /tags/{arn...}", h.untagResource)
	mux.HandleFunc("GET /tags/{arn...}", h.listTagsForResource)
	for route := range notSupported {
		mux.HandleFunc(route, h.unsupported)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, &apiError{status: http.StatusNotFound, code: "UnknownOperationException",
			message: fmt.Sprintf("%s %s is not an emr-containers operation served by sparkplace", r.Method, r.URL.Path)})
	})
	h.mux = mux
	return h
}

type handler struct {
	opts Options
	log  *slog.Logger
	sig  *sigV4
	mux  *http.ServeMux
}

// apiError is an error in EMR's shape.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func validation(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "ValidationException", message: fmt.Sprintf(format, args...)}
}

// classify maps the submitter's errors to EMR's: bad requests and unknown resources are both HTTP 400.
func classify(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case apierrors.IsForbidden(err):
		return &apiError{status: http.StatusForbidden, code: "AccessDeniedException", message: err.Error()}
	case submit.IsNotFound(err):
		return &apiError{status: http.StatusBadRequest, code: "ResourceNotFoundException", message: err.Error()}
	case submit.IsValidation(err):
		return validation("%s", err.Error())
	default:
		return &apiError{status: http.StatusInternalServerError, code: "InternalServerException", message: err.Error()}
	}
}

// notFoundDeclared are the operations whose model declares ResourceNotFoundException; the others declare
// only ValidationException and InternalServerException, so an unknown resource is a ValidationException
// there (an SDK cannot match an undeclared error type).
var notFoundDeclared = map[string]bool{
	"CreateVirtualCluster": true, "DescribeVirtualCluster": true, "StartJobRun": true, "DescribeJobRun": true,
	"CreateJobTemplate": true, "DescribeJobTemplate": true,
	"TagResource": true, "UntagResource": true, "ListTagsForResource": true,
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	ae := classify(err)
	if op, _ := r.Context().Value(operationKey{}).(string); ae.code == "ResourceNotFoundException" && !notFoundDeclared[op] {
		ae = validation("%s", ae.message)
	}
	if ae.status >= 500 {
		h.log.Error("emr-containers request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	w.Header().Set("x-amzn-errortype", ae.code)
	writeJSON(w, ae.status, map[string]string{"__type": ae.code, "message": ae.message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The client has gone if this fails; there is nobody left to tell.
	_ = json.NewEncoder(w).Encode(v)
}

func decodeBody(r *http.Request, into any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return validation("reading request body: %v", err)
	}
	if len(data) > maxBody {
		return validation("request body larger than %d bytes", maxBody)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(into); err != nil {
		return validation("invalid JSON body: %v", err)
	}
	return nil
}

type createVirtualClusterInput struct {
	Name              string `json:"name"`
	ClientToken       string `json:"clientToken"`
	ContainerProvider struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Info struct {
			EKSInfo struct {
				Namespace string `json:"namespace"`
			} `json:"eksInfo"`
		} `json:"info"`
	} `json:"containerProvider"`
	Tags map[string]string `json:"tags"`
}

func (h *handler) createVirtualCluster(w http.ResponseWriter, r *http.Request) {
	var in createVirtualClusterInput
	if err := decodeBody(r, &in); err != nil {
		h.fail(w, r, err)
		return
	}
	if t := in.ContainerProvider.Type; t != "" && t != "EKS" {
		h.fail(w, r, validation("containerProvider.type %q: only EKS is supported", t))
		return
	}
	ns := in.ContainerProvider.Info.EKSInfo.Namespace
	if ns == "" {
		h.fail(w, r, validation("containerProvider.info.eksInfo.namespace is required"))
		return
	}
	opts := []submit.VirtualClusterOption{submit.WithTags(in.Tags)}
	if id := in.ContainerProvider.ID; id != "" {
		opts = append(opts, submit.WithContainerProviderID(id))
	}
	vc, err := svcOf(r).CreateVirtualCluster(r.Context(), in.Name, ns, opts...)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": vc.ID, "name": vc.Name, "arn": vc.ARN})
}

func (h *handler) listVirtualClusters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkStates(q["states"], []string{submit.VirtualClusterRunning, submit.VirtualClusterTerminating, submit.VirtualClusterTerminated, submit.VirtualClusterArrested}); err != nil {
		h.fail(w, r, err)
		return
	}
	vcs, err := svcOf(r).ListVirtualClusters(r.Context(), q["states"]...)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	provider, providerType := q.Get("containerProviderId"), q.Get("containerProviderType")
	writeList(h, w, r, "virtualClusters", vcs, func(vc submit.VirtualCluster) (vcItem, bool) {
		return vcItem(vc), (provider == "" || provider == vc.ContainerProvider.ID) && (providerType == "" || providerType == vc.ContainerProvider.Type)
	})
}

func (h *handler) describeVirtualCluster(w http.ResponseWriter, r *http.Request) {
	vc, err := svcOf(r).DescribeVirtualCluster(r.Context(), r.PathValue("vc"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"virtualCluster": vc})
}

func (h *handler) deleteVirtualCluster(w http.ResponseWriter, r *http.Request) {
	vc, err := svcOf(r).DeleteVirtualCluster(r.Context(), r.PathValue("vc"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": vc.ID})
}

func (h *handler) startJobRun(w http.ResponseWriter, r *http.Request) {
	req, err := submit.DecodeStartJobRun(io.LimitReader(r.Body, maxBody))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	req.VirtualClusterID = r.PathValue("vc")
	sub, err := svcOf(r).StartJobRun(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for _, warning := range sub.Warnings {
		// The response has no field for them: the operator's log keeps what was accepted but not applied.
		h.log.Warn("job run accepted with a part not applied", "jobRun", sub.Response.ID, "virtualCluster", sub.Response.VirtualClusterID, "warning", warning)
	}
	writeJSON(w, http.StatusOK, sub.Response)
}

func (h *handler) listJobRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := submit.ListJobRunsOptions{VirtualClusterID: r.PathValue("vc")}
	var known []string
	for _, s := range submit.States {
		known = append(known, string(s))
	}
	if err := checkStates(q["states"], known); err != nil {
		h.fail(w, r, err)
		return
	}
	for _, s := range q["states"] {
		opts.States = append(opts.States, submit.State(s))
	}
	runs, err := svcOf(r).ListJobRuns(r.Context(), opts)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	name := q.Get("name")
	writeList(h, w, r, "jobRuns", runs, func(run submit.JobRun) (runItem, bool) {
		return runItem(run), name == "" || name == run.Name
	})
}

func (h *handler) describeJobRun(w http.ResponseWriter, r *http.Request) {
	run, err := svcOf(r).DescribeJobRun(r.Context(), r.PathValue("vc"), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobRun": run})
}

func (h *handler) cancelJobRun(w http.ResponseWriter, r *http.Request) {
	run, err := svcOf(r).CancelJobRun(r.Context(), r.PathValue("vc"), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": run.ID, "virtualClusterId": run.VirtualClusterID})
}

// checkStates refuses an unknown state or more states than the model allows, instead of matching nothing.
func checkStates(states, known []string) error {
	if len(states) > maxStates {
		return validation("states: at most %d values", maxStates)
	}
	for _, st := range states {
		if !slices.Contains(known, st) {
			return validation("states: %q is not one of %v", st, known)
		}
	}
	return nil
}

// createdRange reads createdAfter and createdBefore (ISO-8601, as the SDKs send them).
func createdRange(q map[string][]string) (after, before time.Time, err error) {
	for key, dst := range map[string]*time.Time{"createdAfter": &after, "createdBefore": &before} {
		if v := first(q[key]); v != "" {
			t, perr := time.Parse(time.RFC3339Nano, v)
			if perr != nil {
				return time.Time{}, time.Time{}, validation("%s=%q is not an ISO-8601 timestamp", key, v)
			}
			*dst = t
		}
	}
	return after, before, nil
}

func inRange(t, after, before time.Time) bool {
	return (after.IsZero() || !t.Before(after)) && (before.IsZero() || !t.After(before))
}

// writeList answers a List operation: the items as item makes them, those it keeps and that were created in
// the createdAfter/createdBefore range, one page of them under key, and the nextToken of the next page.
func writeList[S any, T listed](h *handler, w http.ResponseWriter, r *http.Request, key string, items []S, item func(S) (T, bool)) {
	q := r.URL.Query()
	after, before, err := createdRange(q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	kept := []T{}
	for _, s := range items {
		if it, ok := item(s); ok {
			if c, _ := it.position(); inRange(c, after, before) {
				kept = append(kept, it)
			}
		}
	}
	page, next, err := paginate(kept, r.URL.Path, q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := map[string]any{key: page}
	if next != "" {
		out["nextToken"] = next
	}
	writeJSON(w, http.StatusOK, out)
}

// vcItem and runItem are the listed types, with their position in the list's order.
type (
	vcItem  submit.VirtualCluster
	runItem submit.JobRun
	jtItem  submit.JobTemplate
)

func (v vcItem) position() (time.Time, string)  { return v.CreatedAt, v.ID }
func (t jtItem) position() (time.Time, string)  { return t.CreatedAt, t.ID }
func (r runItem) position() (time.Time, string) { return r.CreatedAt, r.ID }

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
