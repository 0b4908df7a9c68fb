package submit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Submission is the outcome of StartJobRun.
type Submission struct {
	Response StartJobRunResponse
	// Existing is true when the clientToken matched an earlier job run and nothing was created.
	Existing bool
	// Warnings are the parts of the request that were accepted but not applied.
	Warnings []string
}

// DryRun plans a job run into namespace without any cluster access: every object it would create.
func (s *Submitter) DryRun(req *StartJobRunRequest, namespace string) (*Plan, error) {
	if namespace == "" {
		return nil, invalidf("a dry run needs a namespace")
	}
	token, err := s.clientToken(req)
	if err != nil {
		return nil, err
	}
	return NewPlan(req, Target{
		Namespace: namespace, VirtualClusterID: req.VirtualClusterID,
		JobRunID: jobRunID(req.VirtualClusterID, token), ClientToken: token,
	}, s.planOptions())
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

// StartJobRun validates req, then creates the job run's objects in its virtual cluster's namespace.
// A request with an already-used clientToken returns the earlier job run and creates nothing.
func (s *Submitter) StartJobRun(ctx context.Context, req *StartJobRunRequest) (*Submission, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	if req == nil {
		return nil, invalidf("empty StartJobRun request")
	}
	ns, err := s.virtualClusterNamespace(ctx, req.VirtualClusterID)
	if err != nil {
		return nil, err
	}
	if ns.Annotations[annotationVCState] == VirtualClusterTerminated {
		return nil, invalidf("virtual cluster %s is %s", req.VirtualClusterID, VirtualClusterTerminated)
	}
	token, err := s.clientToken(req)
	if err != nil {
		return nil, err
	}
	plan, err := NewPlan(req, Target{
		Namespace: ns.Name, VirtualClusterID: req.VirtualClusterID,
		JobRunID: jobRunID(req.VirtualClusterID, token), ClientToken: token,
	}, s.planOptions())
	if err != nil {
		return nil, err
	}
	sub := &Submission{
		Response: StartJobRunResponse{ID: plan.JobRun.ID, Name: plan.JobRun.Name, ARN: plan.JobRun.ARN, VirtualClusterID: plan.JobRun.VirtualClusterID},
		Warnings: plan.Warnings,
	}
	if err := c.Create(ctx, plan.Record); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("recording job run %s: %w", plan.JobRun.ID, err)
		}
		return s.existingSubmission(ctx, plan, sub)
	}
	if err := s.createObjects(ctx, c, plan); err != nil {
		reason := FailureInternalError
		if apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
			reason = FailureValidationError
		}
		if markErr := s.transition(ctx, plan.Record, StateFailed, reason, err.Error(), nil); markErr != nil {
			err = errors.Join(err, markErr)
		}
		return nil, fmt.Errorf("job run %s failed to start: %w", plan.JobRun.ID, err)
	}
	if err := s.transition(ctx, plan.Record, StateSubmitted, "", "", nil); err != nil {
		return nil, err
	}
	return sub, nil
}

func (s *Submitter) existingSubmission(ctx context.Context, plan *Plan, sub *Submission) (*Submission, error) {
	var cm corev1.ConfigMap
	if err := s.opts.Client.Get(ctx, client.ObjectKeyFromObject(plan.Record), &cm); err != nil {
		return nil, fmt.Errorf("reading job run %s: %w", plan.JobRun.ID, err)
	}
	if cm.Annotations[annotationRequestHash] != plan.Record.Annotations[annotationRequestHash] {
		return nil, invalidf("clientToken %q was already used for job run %s with a different request", plan.JobRun.ClientToken, plan.JobRun.ID)
	}
	rec, err := readRecord(&cm)
	if err != nil {
		return nil, err
	}
	sub.Response = StartJobRunResponse{ID: rec.run.ID, Name: rec.run.Name, ARN: rec.run.ARN, VirtualClusterID: rec.run.VirtualClusterID}
	sub.Existing = true
	return sub, nil
}

// createObjects creates what spark-submit would, in its order: the driver pod first, then the
// ConfigMap and Service owned by it (so they go when the pod goes); the pod goes if they fail.
func (s *Submitter) createObjects(ctx context.Context, c client.Client, plan *Plan) error {
	if plan.ServiceAccount != nil {
		// Shared by every job run with the same execution role in this namespace.
		for _, obj := range []client.Object{plan.ServiceAccount, plan.Role, plan.RoleBinding} {
			if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
			}
		}
	}
	pod := plan.DriverPod.DeepCopy()
	if err := c.Create(ctx, pod); err != nil {
		return fmt.Errorf("creating driver pod %s: %w", pod.Name, err)
	}
	for _, obj := range []client.Object{plan.ConfigMap.DeepCopy(), plan.Service.DeepCopy()} {
		refs := obj.GetOwnerReferences()
		for i := range refs {
			refs[i].UID = pod.UID
		}
		obj.SetOwnerReferences(refs)
		if err := c.Create(ctx, obj); err != nil {
			err = fmt.Errorf("creating %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
			if delErr := c.Delete(ctx, pod); delErr != nil && !apierrors.IsNotFound(delErr) {
				err = errors.Join(err, fmt.Errorf("deleting driver pod %s: %w", pod.Name, delErr))
			}
			return err
		}
	}
	return nil
}

// ListJobRunsOptions filter ListJobRuns.
type ListJobRunsOptions struct {
	// VirtualClusterID limits the list to one virtual cluster. Defaults to all.
	VirtualClusterID string
	// States keeps only job runs in these states (after refreshing them). Defaults to all.
	States []State
}

// ListJobRuns returns job runs, newest first, each with its state refreshed from its driver pod.
func (s *Submitter) ListJobRuns(ctx context.Context, opts ListJobRunsOptions) ([]JobRun, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	listOpts := []client.ListOption{client.MatchingLabels{LabelKind: kindJobRun}}
	if opts.VirtualClusterID != "" {
		ns, err := s.virtualClusterNamespace(ctx, opts.VirtualClusterID)
		if err != nil {
			return nil, err
		}
		listOpts = append(listOpts, client.InNamespace(ns.Name), client.MatchingLabels{LabelKind: kindJobRun, LabelVirtualClusterID: opts.VirtualClusterID})
	}
	var list corev1.ConfigMapList
	if err := c.List(ctx, &list, listOpts...); err != nil {
		return nil, fmt.Errorf("listing job runs: %w", err)
	}
	var runs []JobRun
	for i := range list.Items {
		rec, err := readRecord(&list.Items[i])
		if err != nil {
			return nil, err
		}
		run, err := s.refresh(ctx, rec)
		if err != nil {
			return nil, err
		}
		if len(opts.States) == 0 || contains(opts.States, run.State) {
			runs = append(runs, *run)
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

// DescribeJobRun returns one job run with its state refreshed. virtualClusterID may be empty.
func (s *Submitter) DescribeJobRun(ctx context.Context, virtualClusterID, id string) (*JobRun, error) {
	rec, err := s.findRecord(ctx, virtualClusterID, id)
	if err != nil {
		return nil, err
	}
	return s.refresh(ctx, rec)
}

// CancelJobRun moves an active job run to CANCEL_PENDING and deletes its driver and executor pods;
// the run becomes CANCELLED once the driver pod is gone.
func (s *Submitter) CancelJobRun(ctx context.Context, virtualClusterID, id string) (*JobRun, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	rec, err := s.findRecord(ctx, virtualClusterID, id)
	if err != nil {
		return nil, err
	}
	run, err := s.refresh(ctx, rec)
	if err != nil {
		return nil, err
	}
	if run.State.Terminal() {
		return nil, invalidf("job run %s is %s and can no longer be cancelled", id, run.State)
	}
	if run.State != StateCancelPending {
		if err := s.transition(ctx, rec.cm, StateCancelPending, "", "", nil); err != nil {
			return nil, err
		}
	}
	ns := rec.cm.Namespace
	driver := &corev1.Pod{}
	driver.Name, driver.Namespace = rec.cm.Annotations[annotationDriverPod], ns
	if err := c.Delete(ctx, driver, client.PropagationPolicy("Background")); err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("deleting driver pod %s: %w", driver.Name, err)
	}
	// Executors are garbage-collected with their driver, but only once the garbage collector gets to
	// them; deleting them here stops the work now.
	if appID := rec.cm.Annotations[annotationSparkAppID]; appID != "" {
		if err := c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns),
			client.MatchingLabels{"spark-app-selector": appID, "spark-role": "executor"}); err != nil {
			return nil, fmt.Errorf("deleting executors of job run %s: %w", id, err)
		}
	}
	return s.DescribeJobRun(ctx, virtualClusterID, id)
}

func (s *Submitter) findRecord(ctx context.Context, virtualClusterID, id string) (*record, error) {
	c, err := s.client()
	if err != nil {
		return nil, err
	}
	labels := client.MatchingLabels{LabelKind: kindJobRun, LabelJobRunID: id}
	opts := []client.ListOption{labels}
	if virtualClusterID != "" {
		ns, err := s.virtualClusterNamespace(ctx, virtualClusterID)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.InNamespace(ns.Name))
	}
	var list corev1.ConfigMapList
	if err := c.List(ctx, &list, opts...); err != nil {
		return nil, fmt.Errorf("looking up job run %s: %w", id, err)
	}
	if len(list.Items) == 0 {
		return nil, &NotFoundError{Kind: "job run", ID: id}
	}
	return readRecord(&list.Items[0])
}

// refresh derives the state of a non-terminal run from its driver pod and stores any change, so the
// final state is kept once the pod is gone.
func (s *Submitter) refresh(ctx context.Context, rec *record) (*JobRun, error) {
	if rec.run.State.Terminal() {
		return &rec.run, nil
	}
	var pod *corev1.Pod
	var p corev1.Pod
	switch err := s.opts.Client.Get(ctx, client.ObjectKey{Namespace: rec.cm.Namespace, Name: rec.cm.Annotations[annotationDriverPod]}, &p); {
	case err == nil:
		pod = &p
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading driver pod of job run %s: %w", rec.run.ID, err)
	}
	timeout, err := time.ParseDuration(rec.cm.Annotations[annotationStartTimeout])
	if err != nil {
		timeout = defaultJobStartTimeout
	}
	now := s.opts.Clock.Now()
	obs := observe(rec.run, pod, now, timeout)
	if obs.state == rec.run.State && obs.details == rec.run.StateDetails {
		return &rec.run, nil
	}
	if obs.startTimedOut && pod != nil {
		if err := s.opts.Client.Delete(ctx, pod, client.PropagationPolicy("Background")); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("deleting driver pod %s after job-start-timeout: %w", pod.Name, err)
		}
	}
	if err := s.transition(ctx, rec.cm, obs.state, obs.reason, obs.details, obs.finishedAt); err != nil {
		return nil, err
	}
	updated, err := readRecord(rec.cm)
	if err != nil {
		return nil, err
	}
	return &updated.run, nil
}

// transition stores a new state on the record cm (updated in place).
func (s *Submitter) transition(ctx context.Context, cm *corev1.ConfigMap, state State, reason, details string, finishedAt *time.Time) error {
	rec, err := readRecord(cm)
	if err != nil {
		return err
	}
	run := rec.run
	run.State, run.FailureReason, run.StateDetails = state, reason, details
	if state.Terminal() {
		if finishedAt == nil {
			now := s.opts.Clock.Now().UTC()
			finishedAt = &now
		}
		run.FinishedAt = finishedAt
	}
	updated := cm.DeepCopy()
	if err := setRecordRun(updated, run); err != nil {
		return err
	}
	err = s.opts.Client.Update(ctx, updated)
	if apierrors.IsConflict(err) {
		// Someone else (a describe racing the submission, a cancel) moved the record: take theirs and
		// apply ours on top, unless theirs is already final.
		var latest corev1.ConfigMap
		if err := s.opts.Client.Get(ctx, client.ObjectKeyFromObject(cm), &latest); err != nil {
			return fmt.Errorf("re-reading job run %s: %w", run.ID, err)
		}
		current, err := readRecord(&latest)
		if err != nil {
			return err
		}
		*cm = latest
		if current.run.State.Terminal() || current.run.State == state ||
			current.run.State == StateCancelPending && !state.Terminal() {
			return nil
		}
		return s.transition(ctx, cm, state, reason, details, finishedAt)
	}
	if err != nil {
		return fmt.Errorf("storing state %s of job run %s: %w", state, run.ID, err)
	}
	*cm = *updated
	return nil
}

// observation is what the driver pod says about a run.
type observation struct {
	state         State
	reason        string
	details       string
	finishedAt    *time.Time
	startTimedOut bool
}

// submissionGrace is how long a PENDING record without a driver pod is taken to be a submission in
// progress rather than one that crashed half-way.
const submissionGrace = 2 * time.Minute

// observe maps the driver pod to EMR's states. The driver container's exit code decides the outcome:
// RUNNING means that container runs, COMPLETED that it exited 0, FAILED/USER_ERROR any other code.
func observe(run JobRun, pod *corev1.Pod, now time.Time, startTimeout time.Duration) observation {
	if pod == nil {
		switch run.State {
		case StateCancelPending:
			return observation{state: StateCancelled, details: "cancelled by user"}
		case StatePending:
			if now.Sub(run.CreatedAt) < submissionGrace {
				return observation{state: StatePending}
			}
			return observation{state: StateFailed, reason: FailureInternalError, details: "the submission did not create the driver pod"}
		default:
			return observation{state: StateFailed, reason: FailureInternalError, details: "the driver pod was deleted before it finished"}
		}
	}
	if run.State == StateCancelPending {
		return observation{state: StateCancelPending, details: run.StateDetails}
	}
	status := driverStatus(pod)
	if status != nil && status.State.Terminated != nil {
		t := status.State.Terminated
		finished := t.FinishedAt.UTC()
		if t.FinishedAt.IsZero() {
			finished = now.UTC()
		}
		if t.ExitCode == 0 {
			return observation{state: StateCompleted, finishedAt: &finished}
		}
		details := fmt.Sprintf("driver container %s exited with code %d", status.Name, t.ExitCode)
		if t.Reason != "" {
			details += " (" + t.Reason + ")"
		}
		if t.Message != "" {
			details += ": " + t.Message
		}
		return observation{state: StateFailed, reason: FailureUserError, details: details, finishedAt: &finished}
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		return observation{state: StateCompleted}
	case corev1.PodFailed:
		details := "driver pod failed"
		if pod.Status.Reason != "" {
			details += ": " + pod.Status.Reason
		}
		if pod.Status.Message != "" {
			details += ": " + pod.Status.Message
		}
		// No exit code means the pod was lost rather than the application failing (eviction, node loss).
		return observation{state: StateFailed, reason: FailureClusterUnavailable, details: details}
	}
	if status != nil && status.State.Running != nil {
		return observation{state: StateRunning}
	}
	details := "driver pod " + string(pod.Status.Phase)
	if status != nil && status.State.Waiting != nil && status.State.Waiting.Reason != "" {
		details = "driver container waiting: " + status.State.Waiting.Reason
	} else if unschedulable := podCondition(pod, corev1.PodScheduled); unschedulable != nil && unschedulable.Status == corev1.ConditionFalse {
		details = "driver pod not scheduled: " + unschedulable.Message
	}
	if now.Sub(run.CreatedAt) > startTimeout && run.State != StateRunning {
		reason := FailureClusterUnavailable
		if status != nil && status.State.Waiting != nil && userWaitReasons[status.State.Waiting.Reason] {
			reason = FailureUserError
		}
		return observation{state: StateFailed, reason: reason, details: fmt.Sprintf("the driver did not start within job-start-timeout %s (%s)", startTimeout, details), startTimedOut: true}
	}
	return observation{state: StateSubmitted, details: details}
}

// userWaitReasons are container waits caused by the request (bad image, missing secret) rather than
// by cluster capacity.
var userWaitReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true,
}

func driverStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == driverContainerName {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	if len(pod.Status.ContainerStatuses) > 0 {
		return &pod.Status.ContainerStatuses[0]
	}
	return nil
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}
