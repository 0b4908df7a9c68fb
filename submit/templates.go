package submit

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
)

// JobTemplateData is a template's fixed part of a StartJobRun request.
type JobTemplateData = v1alpha1.JobTemplateData

// JobTemplate is emr-containers' JobTemplate: the view of a v1alpha1.JobTemplate.
type JobTemplate struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	ARN             string            `json:"arn"`
	CreatedAt       time.Time         `json:"createdAt"`
	CreatedBy       string            `json:"createdBy,omitempty"`
	Tags            map[string]string `json:"tags,omitempty"`
	KMSKeyARN       string            `json:"kmsKeyArn,omitempty"`
	JobTemplateData JobTemplateData   `json:"jobTemplateData"`
}

// CreateJobTemplateRequest is CreateJobTemplate's body.
type CreateJobTemplateRequest struct {
	Name            string            `json:"name"`
	ClientToken     string            `json:"clientToken"`
	JobTemplateData JobTemplateData   `json:"jobTemplateData"`
	Tags            map[string]string `json:"tags,omitempty"`
	KMSKeyARN       string            `json:"kmsKeyArn,omitempty"`
}

var placeholder = regexp.MustCompile(`\$\{([^}]*)\}`)

// CreateJobTemplate stores a job template. The same clientToken and name return the same template.
func (s *Submitter) CreateJobTemplate(ctx context.Context, req *CreateJobTemplateRequest) (*JobTemplate, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	switch d := req.JobTemplateData; {
	case !vcNamePattern.MatchString(req.Name):
		return nil, invalidf("name %q must be 1-64 characters of letters, digits and . - _ / #", req.Name)
	case req.ClientToken == "" || len(req.ClientToken) > 64:
		return nil, invalidf("clientToken is required (1-64 characters)")
	case d.ExecutionRoleARN == "" || d.ReleaseLabel == "":
		return nil, invalidf("jobTemplateData: executionRoleArn and releaseLabel are required")
	case d.JobDriver.SparkSubmitJobDriver == nil && d.JobDriver.SparkSQLJobDriver == nil:
		return nil, invalidf("jobTemplateData.jobDriver: sparkSubmitJobDriver or sparkSqlJobDriver is required")
	case checkTags(req.Tags) != nil:
		return nil, checkTags(req.Tags)
	}
	for name, p := range req.JobTemplateData.ParameterConfiguration {
		if p.Type != "" && p.Type != v1alpha1.TemplateParameterString && p.Type != v1alpha1.TemplateParameterNumber {
			return nil, invalidf("jobTemplateData.parameterConfiguration.%s.type %q must be STRING or NUMBER", name, p.Type)
		}
	}
	if used := undeclared(&req.JobTemplateData); len(used) > 0 {
		return nil, invalidf("jobTemplateData uses %s, which parameterConfiguration does not declare", strings.Join(used, ", "))
	}
	t := &v1alpha1.JobTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: JobRunID("jobtemplate/"+req.Name, req.ClientToken), Labels: map[string]string{labelManagedBy: managedBy}},
		Spec: v1alpha1.JobTemplateSpec{
			Name: req.Name, ClientToken: req.ClientToken, CreatedBy: s.opts.CreatedBy, KMSKeyARN: req.KMSKeyARN,
			Tags: req.Tags, JobTemplateData: req.JobTemplateData,
		},
	}
	if err := c.Create(ctx, t); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating job template %s: %w", req.Name, err)
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(t), t); err != nil {
			return nil, fmt.Errorf("reading job template %s: %w", req.Name, err)
		}
	}
	return s.viewJobTemplate(t), nil
}

// undeclared lists the ${placeholders} data uses without declaring them.
func undeclared(d *JobTemplateData) []string {
	raw, _ := json.Marshal(d)
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(string(raw), -1) {
		if _, ok := d.ParameterConfiguration[m[1]]; !ok && !slices.Contains(out, m[0]) {
			out = append(out, m[0])
		}
	}
	return out
}

func (s *Submitter) viewJobTemplate(t *v1alpha1.JobTemplate) *JobTemplate {
	return &JobTemplate{
		ID: t.Name, Name: t.Spec.Name,
		ARN:       fmt.Sprintf("arn:aws:emr-containers:%s:%s:/jobtemplates/%s", s.opts.Region, s.opts.AccountID, t.Name),
		CreatedAt: wireTime(t.CreationTimestamp.Time), CreatedBy: t.Spec.CreatedBy, Tags: t.Spec.Tags, KMSKeyARN: t.Spec.KMSKeyARN,
		JobTemplateData: t.Spec.JobTemplateData,
	}
}

// DescribeJobTemplate returns one template, or a *NotFoundError.
func (s *Submitter) DescribeJobTemplate(ctx context.Context, id string) (*JobTemplate, error) {
	t, err := s.jobTemplate(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.viewJobTemplate(t), nil
}

// ListJobTemplates returns the templates, newest first.
func (s *Submitter) ListJobTemplates(ctx context.Context) ([]JobTemplate, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	var list v1alpha1.JobTemplateList
	if err := c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing job templates: %w", err)
	}
	out := make([]JobTemplate, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, *s.viewJobTemplate(&list.Items[i]))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// DeleteJobTemplate deletes a template; runs started from it keep their resolved request.
func (s *Submitter) DeleteJobTemplate(ctx context.Context, id string) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	t, err := s.jobTemplate(ctx, id)
	if err != nil {
		return err
	}
	if err := c.Delete(ctx, t); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting job template %s: %w", id, err)
	}
	return nil
}

func (s *Submitter) jobTemplate(ctx context.Context, id string) (*v1alpha1.JobTemplate, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	if id == "" || len(validation.IsDNS1123Label(id)) > 0 {
		return nil, &NotFoundError{Kind: "job template", ID: id}
	}
	var t v1alpha1.JobTemplate
	switch err := c.Get(ctx, client.ObjectKey{Name: id}, &t); {
	case apierrors.IsNotFound(err):
		return nil, &NotFoundError{Kind: "job template", ID: id}
	case err != nil:
		return nil, fmt.Errorf("reading job template %s: %w", id, err)
	}
	return &t, nil
}

// resolveTemplate fills req from its job template: the template's data with every ${parameter} replaced
// by jobTemplateParameters or the parameter's default, checked against its type. The result is a full
// request; the run keeps it, so deleting the template later changes nothing.
func (s *Submitter) resolveTemplate(ctx context.Context, req *StartJobRunRequest) (*StartJobRunRequest, error) {
	if req.JobTemplateID == "" {
		if len(req.JobTemplateParameters) > 0 {
			return nil, invalidf("jobTemplateParameters given without a jobTemplateId")
		}
		return req, nil
	}
	if req.JobDriver != nil || req.ExecutionRoleARN != "" || req.ReleaseLabel != "" || req.ConfigurationOverrides != nil {
		return nil, invalidf("jobTemplateId %s: the template gives jobDriver, executionRoleArn, releaseLabel and configurationOverrides; the request may not (use template parameters)", req.JobTemplateID)
	}
	t, err := s.jobTemplate(ctx, req.JobTemplateID)
	if err != nil {
		if IsNotFound(err) {
			return nil, invalidf("jobTemplateId %s: no such job template", req.JobTemplateID)
		}
		return nil, err
	}
	return ApplyTemplate(req, &t.Spec.JobTemplateData, t.Name)
}

var numberPattern = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// ApplyTemplate returns req with the template's data filled in, parameters substituted.
func ApplyTemplate(req *StartJobRunRequest, data *JobTemplateData, templateID string) (*StartJobRunRequest, error) {
	values := map[string]string{}
	for name, v := range req.JobTemplateParameters {
		if _, ok := data.ParameterConfiguration[name]; !ok {
			return nil, invalidf("jobTemplateParameters.%s: job template %s declares no such parameter (it declares %s)", name, templateID, strings.Join(sortedKeys(data.ParameterConfiguration), ", "))
		}
		values[name] = v
	}
	for _, name := range sortedKeys(data.ParameterConfiguration) {
		p := data.ParameterConfiguration[name]
		v, ok := values[name]
		if !ok {
			if p.DefaultValue == nil {
				return nil, invalidf("jobTemplateParameters.%s is required by job template %s (the parameter has no default)", name, templateID)
			}
			v = *p.DefaultValue
			values[name] = v
		}
		if p.Type == v1alpha1.TemplateParameterNumber && !numberPattern.MatchString(v) {
			return nil, invalidf("jobTemplateParameters.%s=%q: job template %s declares it a NUMBER", name, v, templateID)
		}
	}
	fixed := struct {
		ExecutionRoleARN       string                  `json:"executionRoleArn"`
		ReleaseLabel           string                  `json:"releaseLabel"`
		JobDriver              *JobDriver              `json:"jobDriver"`
		ConfigurationOverrides *ConfigurationOverrides `json:"configurationOverrides,omitempty"`
	}{data.ExecutionRoleARN, data.ReleaseLabel, &data.JobDriver, data.ConfigurationOverrides}
	raw, err := json.Marshal(fixed)
	if err != nil {
		return nil, fmt.Errorf("job template %s: %w", templateID, err)
	}
	filled := placeholder.ReplaceAllStringFunc(string(raw), func(m string) string {
		v, ok := values[m[2:len(m)-1]]
		if !ok {
			return m
		}
		// The value lands inside a JSON string: escape it as one.
		quoted, _ := json.Marshal(v)
		return string(quoted[1 : len(quoted)-1])
	})
	if left := placeholder.FindString(filled); left != "" {
		return nil, invalidf("job template %s uses %s, which its parameterConfiguration does not declare", templateID, left)
	}
	if err := json.Unmarshal([]byte(filled), &fixed); err != nil {
		return nil, fmt.Errorf("job template %s: %w", templateID, err)
	}
	out := *req
	out.ExecutionRoleARN, out.ReleaseLabel, out.JobDriver, out.ConfigurationOverrides = fixed.ExecutionRoleARN, fixed.ReleaseLabel, fixed.JobDriver, fixed.ConfigurationOverrides
	if len(data.JobTags) > 0 {
		out.Tags = merge(data.JobTags, req.Tags)
	}
	return &out, nil
}
