package submit

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
)

// dryRunFetchTimeout bounds a dry run's pod template reads (a dry run has no caller's context).
const dryRunFetchTimeout = time.Minute

// Submission is the outcome of StartJobRun.
type Submission struct {
	Response StartJobRunResponse
	// Existing is true when the clientToken matched an earlier job run and nothing was created.
	Existing bool
	// Warnings are the parts of the request that were accepted but not applied.
	Warnings []string
}

// DryRun plans a job run into namespace without any cluster access: the JobRun and the objects the
// controller would create for it. Pod templates are fetched from S3 and local files (not from ConfigMaps),
// within dryRunFetchTimeout.
func (s *Submitter) DryRun(req *StartJobRunRequest, namespace string) (*Plan, error) {
	if namespace == "" {
		return nil, invalidf("a dry run needs a namespace")
	}
	token, err := s.clientToken(req)
	if err != nil {
		return nil, err
	}
	opts := s.planOptions()
	ctx, cancel := context.WithTimeout(context.Background(), dryRunFetchTimeout)
	defer cancel()
	if opts.PodTemplates, err = s.fetchPodTemplates(ctx, req, namespace, nil); err != nil {
		return nil, err
	}
	return NewPlan(req, Target{
		Namespace: namespace, VirtualClusterID: req.VirtualClusterID,
		JobRunID: JobRunID(req.VirtualClusterID, token), ClientToken: token,
	}, opts)
}

func (s *Submitter) clientToken(req *StartJobRunRequest) (string, error) {
	if req != nil && req.ClientToken != "" {
		if len(req.ClientToken) > 64 {
			return "", invalidf("clientToken is longer than 64 characters")
		}
		return req.ClientToken, nil
	}
	// The AWS CLI and SDKs fill a missing idempotency token with a random UUID; do the same.
	raw, err := randomBytes(s.opts.Random, 16)
	if err != nil {
		return "", err
	}
	u, err := uuid.FromBytes(raw)
	if err != nil {
		return "", fmt.Errorf("client token: %w", err)
	}
	return u.String(), nil
}

// StartJobRun validates req against its virtual cluster's policy, then creates the JobRun with the caller's
// credentials; the controller creates the driver. A request with an already-used clientToken returns the
// earlier job run and creates nothing.
func (s *Submitter) StartJobRun(ctx context.Context, req *StartJobRunRequest) (*Submission, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	if req == nil {
		return nil, invalidf("empty StartJobRun request")
	}
	vc, err := s.virtualCluster(ctx, req.VirtualClusterID)
	if err != nil {
		return nil, err
	}
	if view := s.viewVirtualCluster(vc); view.State != v1alpha1.VirtualClusterRunning {
		return nil, invalidf("virtual cluster %s is %s%s", vc.Name, view.State, suffix(": ", vc.Status.StateDetails))
	}
	if req, err = s.resolveTemplate(ctx, req); err != nil {
		return nil, err
	}
	token, err := s.clientToken(req)
	if err != nil {
		return nil, err
	}
	opts := s.planOptions()
	if opts.PodTemplates, err = s.fetchPodTemplates(ctx, req, vc.Namespace, c); err != nil {
		return nil, err
	}
	plan, err := NewPlan(req, Target{
		Namespace: vc.Namespace, VirtualClusterID: vc.Name,
		JobRunID: JobRunID(vc.Name, token), ClientToken: token, Policy: &vc.Spec.Policy,
	}, opts)
	if err != nil {
		return nil, err
	}
	if err := s.checkPodSecurity(ctx, vc.Namespace, opts.PodTemplates); err != nil {
		return nil, err
	}
	run := plan.JobRun.DeepCopy()
	run.CreationTimestamp = metav1.Time{}
	sub := &Submission{
		Response: StartJobRunResponse{ID: run.Name, Name: run.Spec.Request.Name, ARN: jobRunARN(s.opts.Region, s.opts.AccountID, vc.Name, run.Name), VirtualClusterID: vc.Name},
		Warnings: plan.Warnings,
	}
	err = c.Create(ctx, run)
	if !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return nil, fmt.Errorf("creating job run %s: %w", run.Name, err)
		}
		return sub, nil
	}
	var existing v1alpha1.JobRun
	if err := c.Get(ctx, client.ObjectKeyFromObject(run), &existing); err != nil {
		return nil, fmt.Errorf("reading job run %s: %w", run.Name, err)
	}
	if requestHash(&existing.Spec.Request) != requestHash(&run.Spec.Request) {
		return nil, invalidf("clientToken %q was already used for job run %s with a different request", token, run.Name)
	}
	sub.Existing = true
	return sub, nil
}

// ListJobRunsOptions filter ListJobRuns.
type ListJobRunsOptions struct {
	// VirtualClusterID limits the list to one virtual cluster. Defaults to all the caller may list.
	VirtualClusterID string
	// States keeps only job runs in these states. Defaults to all.
	States []State
}

// ListJobRuns returns job runs, newest first. It only reads.
func (s *Submitter) ListJobRuns(ctx context.Context, opts ListJobRunsOptions) ([]JobRun, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	var listOpts []client.ListOption
	if opts.VirtualClusterID != "" {
		vc, err := s.virtualCluster(ctx, opts.VirtualClusterID)
		if err != nil {
			return nil, err
		}
		listOpts = append(listOpts, client.InNamespace(vc.Namespace), client.MatchingLabels{LabelVirtualClusterID: vc.Name})
	}
	var list v1alpha1.JobRunList
	if err := c.List(ctx, &list, listOpts...); err != nil {
		return nil, fmt.Errorf("listing job runs: %w", err)
	}
	var runs []JobRun
	for i := range list.Items {
		run := ViewJobRun(&list.Items[i], s.opts.Region, s.opts.AccountID)
		if len(opts.States) == 0 || slices.Contains(opts.States, run.State) {
			runs = append(runs, run)
		}
	}
	sort.Slice(runs, func(i, j int) bool {
		if !runs[i].CreatedAt.Equal(runs[j].CreatedAt) {
			return runs[i].CreatedAt.After(runs[j].CreatedAt)
		}
		return runs[i].ID < runs[j].ID
	})
	return runs, nil
}

// DescribeJobRun returns one job run. virtualClusterID may be empty (the CLI searches every namespace the
// caller may list). It only reads.
func (s *Submitter) DescribeJobRun(ctx context.Context, virtualClusterID, id string) (*JobRun, error) {
	r, err := s.findJobRun(ctx, virtualClusterID, id)
	if err != nil {
		return nil, err
	}
	run := ViewJobRun(r, s.opts.Region, s.opts.AccountID)
	return &run, nil
}

// CancelJobRun asks the controller to stop an active job run: the run is CANCEL_PENDING until the
// controller has deleted its driver, then CANCELLED.
func (s *Submitter) CancelJobRun(ctx context.Context, virtualClusterID, id string) (*JobRun, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	r, err := s.findJobRun(ctx, virtualClusterID, id)
	if err != nil {
		return nil, err
	}
	if state := r.CurrentState(); state.Terminal() {
		return nil, invalidf("job run %s is %s and can no longer be cancelled", id, state)
	}
	if !r.Spec.Cancel {
		base := r.DeepCopy()
		r.Spec.Cancel = true
		if err := c.Patch(ctx, r, client.MergeFrom(base)); err != nil {
			return nil, fmt.Errorf("cancelling job run %s: %w", id, err)
		}
	}
	run := ViewJobRun(r, s.opts.Region, s.opts.AccountID)
	return &run, nil
}

func (s *Submitter) findJobRun(ctx context.Context, virtualClusterID, id string) (*v1alpha1.JobRun, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	if id == "" || len(validation.IsDNS1123Subdomain(id)) > 0 {
		return nil, &NotFoundError{Kind: "job run", ID: id}
	}
	if virtualClusterID != "" {
		vc, err := s.virtualCluster(ctx, virtualClusterID)
		if err != nil {
			return nil, err
		}
		var r v1alpha1.JobRun
		switch err := c.Get(ctx, client.ObjectKey{Namespace: vc.Namespace, Name: id}, &r); {
		case apierrors.IsNotFound(err):
			return nil, &NotFoundError{Kind: "job run", ID: id}
		case err != nil:
			return nil, fmt.Errorf("reading job run %s: %w", id, err)
		case r.Spec.Request.VirtualClusterID != vc.Name:
			// A run of an earlier virtual cluster on the same namespace.
			return nil, &NotFoundError{Kind: "job run", ID: id}
		}
		return &r, nil
	}
	var list v1alpha1.JobRunList
	if err := c.List(ctx, &list, client.MatchingLabels{LabelJobRunID: id}); err != nil {
		return nil, fmt.Errorf("looking up job run %s: %w", id, err)
	}
	if len(list.Items) == 0 {
		return nil, &NotFoundError{Kind: "job run", ID: id}
	}
	return &list.Items[0], nil
}

func suffix(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}
