package controller

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
	"github.com/sparkplace/sparkplace/submit"
)

// JobRunReconciler drives one JobRun from PENDING to a final state, then deletes it after its TTL.
type JobRunReconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads the API server directly where a stale cache could start a cancelled run.
	APIReader client.Reader
	Clock     clock.PassiveClock
	// Plan holds the submitter-wide settings (release table, region, account, SPARK_USER).
	Plan submit.PlanOptions
	// FinishedTTL is how long finished runs are kept when the run does not say.
	FinishedTTL time.Duration
	// DriverClusterRole is the ClusterRole the driver service accounts are bound to in their namespace.
	DriverClusterRole string
	// Metrics counts transitions.
	Metrics *Metrics
}

// Reconcile moves the run one step; every write is conditional on the version it read.
func (r *JobRunReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var run v1alpha1.JobRun
	if err := r.Client.Get(ctx, req.NamespacedName, &run); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	switch state := run.CurrentState(); {
	case !run.DeletionTimestamp.IsZero():
		return ctrl.Result{}, nil
	case state.Terminal():
		return r.expire(ctx, &run)
	case run.Spec.Cancel:
		return r.cancel(ctx, &run)
	case run.Status.DriverPod == "":
		return r.submit(ctx, &run)
	default:
		return r.track(ctx, &run)
	}
}

// submit creates the driver's objects. It re-reads the run from the API server first: a cache that has not
// seen a cancel yet must not start a driver, and the SUBMITTED write below fails (and the reconcile starts
// over) if the run changed after this read.
func (r *JobRunReconciler) submit(ctx context.Context, cached *v1alpha1.JobRun) (ctrl.Result, error) {
	var run v1alpha1.JobRun
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cached), &run); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if run.CurrentState() != v1alpha1.StatePending || run.Spec.Cancel || run.Status.DriverPod != "" {
		return ctrl.Result{RequeueAfter: retrySoon}, nil
	}
	var vc v1alpha1.VirtualCluster
	switch err := r.Client.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: run.Spec.Request.VirtualClusterID}, &vc); {
	case apierrors.IsNotFound(err):
		return r.fail(ctx, &run, v1alpha1.FailureValidationError, fmt.Sprintf("virtual cluster %q does not exist in namespace %s", run.Spec.Request.VirtualClusterID, run.Namespace))
	case err != nil:
		return ctrl.Result{}, err
	case vc.Status.State == "" && !vc.Spec.Terminate:
		// The virtual cluster's namespace has not been checked yet; its reconcile requeues this run.
		return ctrl.Result{RequeueAfter: time.Second}, nil
	case vc.Status.State != v1alpha1.VirtualClusterRunning || vc.Spec.Terminate:
		return r.fail(ctx, &run, v1alpha1.FailureValidationError, fmt.Sprintf("virtual cluster %s is %s%s", vc.Name, firstNonEmpty(vc.Status.State, v1alpha1.VirtualClusterTerminating), suffix(": ", vc.Status.StateDetails)))
	}
	plan, err := r.plan(&run, &vc)
	if err != nil {
		if submit.IsValidation(err) {
			return r.fail(ctx, &run, v1alpha1.FailureValidationError, err.Error())
		}
		return ctrl.Result{}, err
	}
	if plan.CreateServiceAccount {
		if err := r.ensureDriverAccount(ctx, &vc, plan.ServiceAccount, run.Spec.Request.ExecutionRoleARN); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.createDriver(ctx, &run, plan); err != nil {
		if apierrors.IsForbidden(err) || apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
			// Refused by admission (Pod Security, a placement policy's deny) or by quota: the request's fault.
			return r.fail(ctx, &run, v1alpha1.FailureValidationError, err.Error())
		}
		return ctrl.Result{}, err
	}
	now := r.Clock.Now()
	st := run.Status
	st.State, st.DriverPod, st.SparkAppID = v1alpha1.StateSubmitted, plan.DriverPod.Name, plan.DriverPod.Labels["spark-app-selector"]
	st.SubmittedAt, st.StartDeadline = ptr(metav1.NewTime(now)), ptr(metav1.NewTime(now.Add(plan.StartTimeout)))
	st.StateDetails = "driver pod created"
	return r.setStatus(ctx, &run, st, plan.StartTimeout)
}

// plan computes the run's objects exactly as the submitter validated them: the same request, creation time
// and a random stream seeded by the run's uid, so planning again after a restart gives the same objects.
func (r *JobRunReconciler) plan(run *v1alpha1.JobRun, vc *v1alpha1.VirtualCluster) (*submit.Plan, error) {
	opts := r.Plan
	opts.Now = run.CreationTimestamp.Time
	opts.Random = rand.NewChaCha8(sha256.Sum256(fmt.Appendf(nil, "%s/%d", run.UID, run.CurrentAttempt())))
	opts.CreatedBy, opts.PodTemplates = run.Spec.CreatedBy, run.Spec.PodTemplates
	return submit.NewPlan(&run.Spec.Request, submit.Target{
		Namespace: run.Namespace, VirtualClusterID: vc.Name, JobRunID: run.Name,
		ClientToken: run.Spec.Request.ClientToken, Policy: &vc.Spec.Policy, Attempt: run.CurrentAttempt(),
	}, opts)
}

// createDriver creates the driver pod (owned by the run, so it goes with the run) and then the ConfigMaps
// (spark.properties, the executor pod template) and Service the pod owns, as spark-submit does. Objects that already exist are from an earlier attempt of the
// same plan.
func (r *JobRunReconciler) createDriver(ctx context.Context, run *v1alpha1.JobRun, plan *submit.Plan) error {
	pod := plan.DriverPod.DeepCopy()
	if err := controllerutil.SetControllerReference(run, pod, r.Client.Scheme()); err != nil {
		return err
	}
	err := r.Client.Create(ctx, pod)
	if apierrors.IsAlreadyExists(err) {
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return fmt.Errorf("reading driver pod %s: %w", pod.Name, err)
		}
		if !metav1.IsControlledBy(pod, run) {
			return apierrors.NewBadRequest(fmt.Sprintf("pod %s already exists and is not this job run's driver", pod.Name))
		}
	} else if err != nil {
		return fmt.Errorf("creating driver pod %s: %w", pod.Name, err)
	}
	owned := []client.Object{plan.ConfigMap.DeepCopy(), plan.Service.DeepCopy()}
	if plan.PodTemplateConfigMap != nil {
		owned = append(owned, plan.PodTemplateConfigMap.DeepCopy())
	}
	for _, obj := range owned {
		refs := obj.GetOwnerReferences()
		for i := range refs {
			refs[i].UID = pod.UID
		}
		obj.SetOwnerReferences(refs)
		if err := r.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
		}
	}
	return nil
}

// ensureDriverAccount creates the virtual cluster's service account for an execution role and binds it to
// the driver ClusterRole in the namespace, once: both are owned by the virtual cluster.
func (r *JobRunReconciler) ensureDriverAccount(ctx context.Context, vc *v1alpha1.VirtualCluster, name, roleARN string) error {
	labels := map[string]string{submit.LabelVirtualClusterID: vc.Name, "app.kubernetes.io/managed-by": "sparkplace"}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: vc.Namespace, Labels: labels,
		Annotations: map[string]string{"eks.amazonaws.com/role-arn": roleARN},
	}}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: vc.Namespace, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r.DriverClusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: vc.Namespace}},
	}
	for _, obj := range []client.Object{sa, binding} {
		if err := controllerutil.SetControllerReference(vc, obj, r.Client.Scheme()); err != nil {
			return err
		}
		if err := r.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating driver %T %s/%s: %w", obj, vc.Namespace, name, err)
		}
	}
	return nil
}

// track follows the driver pod. A pod that is gone before the run finished fails the run; a finished run
// is never changed again, so its state outlives the pod.
func (r *JobRunReconciler) track(ctx context.Context, run *v1alpha1.JobRun) (ctrl.Result, error) {
	var pod corev1.Pod
	key := client.ObjectKey{Namespace: run.Namespace, Name: run.Status.DriverPod}
	err := r.Client.Get(ctx, key, &pod)
	if apierrors.IsNotFound(err) {
		// The cache may not have seen a pod created moments ago.
		err = r.APIReader.Get(ctx, key, &pod)
	}
	switch {
	case apierrors.IsNotFound(err):
		const details = "the driver pod was deleted before it finished"
		if run.CurrentAttempt() < maxAttempts(run) {
			return r.retry(ctx, run, v1alpha1.FailureInternalError, details)
		}
		return r.fail(ctx, run, v1alpha1.FailureInternalError, details)
	case err != nil:
		return ctrl.Result{}, err
	}
	now := r.Clock.Now()
	var deadline *time.Time
	if d := run.Status.StartDeadline; d != nil {
		deadline = &d.Time
	}
	obs := observe(run.CurrentState(), &pod, now, deadline)
	if obs.state == v1alpha1.StateFailed && run.CurrentAttempt() < maxAttempts(run) {
		return r.retry(ctx, run, obs.reason, obs.details)
	}
	if obs.startTimedOut {
		if err := r.deletePods(ctx, run); err != nil {
			return ctrl.Result{}, err
		}
	}
	st := run.Status
	st.State, st.FailureReason, st.StateDetails = obs.state, obs.reason, obs.details
	if obs.finishedAt != nil {
		st.FinishedAt = ptr(metav1.NewTime(*obs.finishedAt))
	}
	var wait time.Duration
	if obs.state == v1alpha1.StateSubmitted && deadline != nil {
		wait = deadline.Sub(now) + time.Second
	}
	if st.State == run.Status.State && st.StateDetails == run.Status.StateDetails {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	return r.setStatus(ctx, run, st, wait)
}

// maxAttempts is the run's retryPolicyConfiguration.maxAttempts, 1 without one.
func maxAttempts(run *v1alpha1.JobRun) int32 {
	if p := run.Spec.Request.RetryPolicyConfiguration; p != nil {
		return max(p.MaxAttempts, 1)
	}
	return 1
}

// retry records the failed attempt, removes its pods and starts the next attempt from PENDING; a cancel
// seen before the next driver is created stops the retries.
func (r *JobRunReconciler) retry(ctx context.Context, run *v1alpha1.JobRun, reason, details string) (ctrl.Result, error) {
	if err := r.deletePods(ctx, run); err != nil {
		return ctrl.Result{}, err
	}
	attempt := run.CurrentAttempt()
	st := run.Status
	st.PreviousAttempts = append(slices.Clone(st.PreviousAttempts), v1alpha1.JobRunAttempt{
		Attempt: attempt, DriverPod: st.DriverPod, State: v1alpha1.StateFailed, FailureReason: reason,
		StateDetails: truncate(details), FinishedAt: ptr(metav1.NewTime(r.Clock.Now())),
	})
	st.Attempt = attempt + 1
	st.State, st.FailureReason, st.DriverPod, st.SparkAppID = v1alpha1.StatePending, "", "", ""
	st.SubmittedAt, st.StartDeadline = nil, nil
	st.StateDetails = fmt.Sprintf("attempt %d failed (%s); starting attempt %d of %d", attempt, reason, attempt+1, maxAttempts(run))
	return r.setStatus(ctx, run, st, 0)
}

// cancel deletes the run's pods (driver and executors carry its job-run-id label) and records CANCELLED
// only once the API server has none left, so no driver runs behind a CANCELLED run.
func (r *JobRunReconciler) cancel(ctx context.Context, run *v1alpha1.JobRun) (ctrl.Result, error) {
	if err := r.deletePods(ctx, run); err != nil {
		return ctrl.Result{}, err
	}
	var pods corev1.PodList
	if err := r.APIReader.List(ctx, &pods, client.InNamespace(run.Namespace), client.MatchingLabels{submit.LabelJobRunID: run.Name}); err != nil {
		return ctrl.Result{}, err
	}
	st := run.Status
	if len(pods.Items) > 0 {
		if st.State == v1alpha1.StateCancelPending {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		}
		st.State, st.StateDetails = v1alpha1.StateCancelPending, fmt.Sprintf("cancel asked: deleting %d pods", len(pods.Items))
		return r.setStatus(ctx, run, st, time.Second)
	}
	st.State, st.FailureReason, st.StateDetails = v1alpha1.StateCancelled, "", "cancelled by user"
	return r.setStatus(ctx, run, st, 0)
}

func (r *JobRunReconciler) deletePods(ctx context.Context, run *v1alpha1.JobRun) error {
	err := r.Client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(run.Namespace),
		client.MatchingLabels{submit.LabelJobRunID: run.Name}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil {
		return fmt.Errorf("deleting the pods of job run %s: %w", run.Name, err)
	}
	return nil
}

// expire deletes a finished run once its TTL has passed; the objects it owns go with it.
func (r *JobRunReconciler) expire(ctx context.Context, run *v1alpha1.JobRun) (ctrl.Result, error) {
	ttl := r.FinishedTTL
	if s := run.Spec.TTLSecondsAfterFinished; s != nil {
		ttl = time.Duration(*s) * time.Second
	}
	finished := run.CreationTimestamp.Time
	if f := run.Status.FinishedAt; f != nil {
		finished = f.Time
	}
	if left := finished.Add(ttl).Sub(r.Clock.Now()); left > 0 {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	// The preconditions make a run changed since this read (or re-created under its name) survive.
	switch err := r.Client.Delete(ctx, run, client.Preconditions{UID: &run.UID, ResourceVersion: &run.ResourceVersion}); {
	case err == nil:
		r.Metrics.expired.Inc()
	case !apierrors.IsNotFound(err) && !apierrors.IsConflict(err):
		return ctrl.Result{}, fmt.Errorf("deleting finished job run %s: %w", run.Name, err)
	}
	return ctrl.Result{}, nil
}

// fail records FAILED with reason and details.
func (r *JobRunReconciler) fail(ctx context.Context, run *v1alpha1.JobRun, reason, details string) (ctrl.Result, error) {
	st := run.Status
	st.State, st.FailureReason, st.StateDetails = v1alpha1.StateFailed, reason, details
	return r.setStatus(ctx, run, st, 0)
}

// retrySoon is the wait before a reconcile whose read was stale starts over (the watch event that made it
// stale usually arrives first).
const retrySoon = 250 * time.Millisecond

// maxStateDetails is the service model's bound on stateDetails.
const maxStateDetails = 256

// setStatus writes st if the run is still the version read; a conflict means someone changed the run (a
// cancel, another replica) and the reconcile starts over from the new version.
func (r *JobRunReconciler) setStatus(ctx context.Context, run *v1alpha1.JobRun, st v1alpha1.JobRunStatus, requeueAfter time.Duration) (ctrl.Result, error) {
	from := run.CurrentState()
	st.StateDetails = truncate(st.StateDetails)
	if st.State.Terminal() && st.FinishedAt == nil {
		st.FinishedAt = ptr(metav1.NewTime(r.Clock.Now()))
	}
	updated := run.DeepCopy()
	updated.Status = st
	if err := r.Client.Status().Update(ctx, updated); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return ctrl.Result{RequeueAfter: retrySoon}, nil
		}
		return ctrl.Result{}, fmt.Errorf("recording %s of job run %s: %w", st.State, run.Name, err)
	}
	if to := updated.CurrentState(); to != from {
		r.Metrics.transitions.WithLabelValues(string(from), string(to)).Inc()
		ctrl.LoggerFrom(ctx).Info("job run state", "from", from, "to", to, "reason", st.FailureReason, "details", st.StateDetails)
	}
	if st.State.Terminal() {
		// Come back when the TTL is up.
		return r.expire(ctx, updated)
	}
	return ctrl.Result{RequeueAfter: requeueAfter}, nil
}

// truncate keeps stateDetails within the service model's 256 characters.
func truncate(details string) string {
	if len(details) <= maxStateDetails {
		return details
	}
	return strings.ToValidUTF8(details[:maxStateDetails-3], "") + "..."
}

func ptr[T any](v T) *T { return &v }

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func suffix(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}
