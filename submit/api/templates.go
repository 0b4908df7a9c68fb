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
	q := r.URL.Query()
	ts, err := svcOf(r).ListJobTemplates(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	after, before, err := createdRange(q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	kept := []jtItem{}
	for _, t := range ts {
		if inRange(t.CreatedAt, after, before) {
			kept = append(kept, jtItem(t))
		}
	}
	page, next, err := paginate(kept, r.URL.Path, q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Templates []jtItem `json:"templates"`
		NextToken string   `json:"nextToken,omitempty"`
	}{page, next})
}

func (h *handler) deleteJobTemplate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := svcOf(r).DeleteJobTemplate(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": id})
}
