package api

import (
	"net/http"

	"github.com/sparkplace/sparkplace/submit"
)

func (h *handler) createJobTemplate(w http.ResponseWriter, r *http.Request) {
	var in submit.CreateJobTemplateRequest
	if err := decodeBody(r, &in); err != nil {
		h.fail(w, r, err)
		return
	}
	t, err := svcOf(r).CreateJobTemplate(r.Context(), &in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": t.ID, "name": t.Name, "arn": t.ARN, "createdAt": t.CreatedAt})
}

func (h *handler) describeJobTemplate(w http.ResponseWriter, r *http.Request) {
	t, err := svcOf(r).DescribeJobTemplate(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobTemplate": t})
}

func (h *handler) listJobTemplates(w http.ResponseWriter, r *http.Request) {
	ts, err := svcOf(r).ListJobTemplates(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeList(h, w, r, "templates", ts, func(t submit.JobTemplate) (jtItem, bool) { return jtItem(t), true })
}

func (h *handler) deleteJobTemplate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := svcOf(r).DeleteJobTemplate(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": id})
}

func (h *handler) tagResource(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Tags map[string]string `json:"tags"`
	}
	if err := decodeBody(r, &in); err != nil {
		h.fail(w, r, err)
		return
	}
	if len(in.Tags) == 0 {
		h.fail(w, r, validation("tags is required"))
		return
	}
	if err := svcOf(r).TagResource(r.Context(), r.PathValue("arn"), in.Tags); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (h *handler) untagResource(w http.ResponseWriter, r *http.Request) {
	keys := r.URL.Query()["tagKeys"]
	if len(keys) == 0 {
		h.fail(w, r, validation("tagKeys is required"))
		return
	}
	if err := svcOf(r).UntagResource(r.Context(), r.PathValue("arn"), keys); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (h *handler) listTagsForResource(w http.ResponseWriter, r *http.Request) {
	tags, err := svcOf(r).ListTagsForResource(r.Context(), r.PathValue("arn"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if tags == nil {
		tags = map[string]string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": tags})
}

// notSupported are the operations of the model sparkplace does not serve: managed endpoints (EMR Studio's
// interactive endpoints) and security configurations. They answer a ValidationException, which every one
// of them declares, saying so.
// The map names them as the model does, for the requests metric.
var notSupported = map[string]string{
	"POST /virtualclusters/{vc}/endpoints":                  "CreateManagedEndpoint",
	"GET /virtualclusters/{vc}/endpoints":                   "ListManagedEndpoints",
	"GET /virtualclusters/{vc}/endpoints/{id}":              "DescribeManagedEndpoint",
	"DELETE /virtualclusters/{vc}/endpoints/{id}":           "DeleteManagedEndpoint",
	"POST /virtualclusters/{vc}/endpoints/{id}/credentials": "GetManagedEndpointSessionCredentials",
	"POST /securityconfigurations":                          "CreateSecurityConfiguration",
	"GET /securityconfigurations":                           "ListSecurityConfigurations",
	"GET /securityconfigurations/{id}":                      "DescribeSecurityConfiguration",
}

func (h *handler) unsupported(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, validation("%s %s: managed endpoints and security configurations are not supported by sparkplace", r.Method, r.URL.Path))
}
