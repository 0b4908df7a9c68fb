package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
	"github.com/sparkplace/sparkplace/submit"
)

var created = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// fixture is a fake cluster with an open namespace, a RUNNING virtual cluster on it and one PENDING run.
type fixture struct {
	c     client.Client
	r     *JobRunReconciler
	clock *clocktesting.FakeClock
	key   client.ObjectKey
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	vc := &v1alpha1.VirtualCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "vc1", Namespace: "sales", UID: "vc-uid"},
		Spec:       v1alpha1.VirtualClusterSpec{Name: "sales"},
		Status:     v1alpha1.VirtualClusterStatus{State: v1alpha1.VirtualClusterRunning},
	}
	run := &v1alpha1.JobRun{
		ObjectMeta: metav1.ObjectMeta{Name: "run1", Namespace: "sales", UID: "run-uid", CreationTimestamp: metav1.NewTime(created)},
		Spec: v1alpha1.JobRunSpec{Request: v1alpha1.JobRunRequest{
			Name: "pi", VirtualClusterID: "vc1", ClientToken: "t1", ReleaseLabel: "spark-3.5.3",
			ExecutionRoleARN: "arn:aws:iam::152324983118:role/spark-jobs",
			JobDriver: &v1alpha1.JobDriver{SparkSubmitJobDriver: &v1alpha1.SparkSubmitJobDriver{
				EntryPoint: "local:///opt/spark/examples/src/main/python/pi.py",
			}},
		}},
	}
	c := fake.NewClientBuilder().WithScheme(s).WithStatusSubresource(&v1alpha1.JobRun{}, &v1alpha1.VirtualCluster{}).
		WithObjects(vc, run).Build()
	clock := clocktesting.NewFakeClock(created.Add(time.Second))
	return &fixture{
		c:     c,
		clock: clock,
		key:   client.ObjectKeyFromObject(run),
		r: &JobRunReconciler{Client: c, APIReader: c, Clock: clock, FinishedTTL: time.Hour,
			DriverClusterRole: "sparkplace-spark-driver", Metrics: NewMetrics(prometheus.NewRegistry(), c)},
	}
}

func (f *fixture) reconcile(t *testing.T) {
	t.Helper()
	if _, err := f.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: f.key}); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
}

func (f *fixture) run(t *testing.T) *v1alpha1.JobRun {
	t.Helper()
	var r v1alpha1.JobRun
	if err := f.c.Get(context.Background(), f.key, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func (f *fixture) pods(t *testing.T) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := f.c.List(context.Background(), &pods, client.InNamespace("sales"), client.MatchingLabels{submit.LabelJobRunID: "run1"}); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

func (f *fixture) setDriver(t *testing.T, phase corev1.PodPhase, state corev1.ContainerState) {
	t.Helper()
	var pod corev1.Pod
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: "sales", Name: f.run(t).Status.DriverPod}, &pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = phase
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: driverContainerName, State: state}}
	if err := f.c.Status().Update(context.Background(), &pod); err != nil {
		t.Fatal(err)
	}
}

func TestJobRunLifecycle(t *testing.T) {
	f := newFixture(t)
	f.reconcile(t)
	run := f.run(t)
	if run.Status.State != v1alpha1.StateSubmitted || run.Status.DriverPod != "spark-run1-driver" || run.Status.StartDeadline == nil {
		t.Fatalf("after the first reconcile: %+v", run.Status)
	}
	var sa corev1.ServiceAccount
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: "sales", Name: submit.ServiceAccountName(run.Spec.Request.ExecutionRoleARN)}, &sa); err != nil {
		t.Errorf("the virtual cluster's driver service account: %v", err)
	}
	pods := f.pods(t)
	if len(pods) != 1 || !metav1.IsControlledBy(&pods[0], run) {
		t.Fatalf("driver pods = %d, want 1 controlled by the run", len(pods))
	}
	// Reconciling again (another replica, a restart) creates nothing more.
	f.reconcile(t)
	if n := len(f.pods(t)); n != 1 {
		t.Errorf("pods after a second reconcile = %d, want 1", n)
	}
	f.setDriver(t, corev1.PodRunning, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}})
	f.reconcile(t)
	if s := f.run(t).Status.State; s != v1alpha1.StateRunning {
		t.Fatalf("state = %s, want RUNNING", s)
	}
	f.setDriver(t, corev1.PodSucceeded, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, FinishedAt: metav1.NewTime(created.Add(time.Minute))}})
	f.reconcile(t)
	if s := f.run(t).Status; s.State != v1alpha1.StateCompleted || s.FinishedAt == nil {
		t.Fatalf("status = %+v, want COMPLETED with finishedAt", s)
	}
	// The driver pod goes (PodGC, node scale-down): the run keeps its state.
	if err := f.c.Delete(context.Background(), &pods[0]); err != nil {
		t.Fatal(err)
	}
	f.reconcile(t)
	if s := f.run(t).Status.State; s != v1alpha1.StateCompleted {
		t.Errorf("after the driver pod was deleted: %s, want COMPLETED", s)
	}
	// The TTL (an hour after it finished) passes: the run is deleted.
	f.clock.SetTime(created.Add(time.Minute + time.Hour + time.Second))
	f.reconcile(t)
	var r v1alpha1.JobRun
	if err := f.c.Get(context.Background(), f.key, &r); !apierrors.IsNotFound(err) {
		t.Errorf("after its TTL the run is still there: %v", err)
	}
}

func TestCancelBeforeAndAfterTheDriver(t *testing.T) {
	for name, cancelAfterSubmit := range map[string]bool{"cancel before the driver exists": false, "cancel of a submitted run": true} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			if cancelAfterSubmit {
				f.reconcile(t)
			}
			run := f.run(t)
			base := run.DeepCopy()
			run.Spec.Cancel = true
			if err := f.c.Patch(context.Background(), run, client.MergeFrom(base)); err != nil {
				t.Fatal(err)
			}
			f.reconcile(t)
			if cancelAfterSubmit {
				// The fake client deletes at once; a real API server may report CANCEL_PENDING first.
				f.reconcile(t)
			}
			if s := f.run(t).Status.State; s != v1alpha1.StateCancelled {
				t.Errorf("state = %s, want CANCELLED", s)
			}
			if n := len(f.pods(t)); n != 0 {
				t.Errorf("%d pods left behind a CANCELLED run", n)
			}
			f.reconcile(t)
			if n := len(f.pods(t)); n != 0 {
				t.Errorf("a reconcile after the cancel created %d pods", n)
			}
		})
	}
}

func TestStartTimeoutByTheControllersClock(t *testing.T) {
	f := newFixture(t)
	f.reconcile(t)
	f.setDriver(t, corev1.PodPending, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}})
	f.reconcile(t)
	if s := f.run(t).Status.State; s != v1alpha1.StateSubmitted {
		t.Fatalf("state = %s, want SUBMITTED within the timeout", s)
	}
	f.clock.SetTime(created.Add(16 * time.Minute))
	f.reconcile(t)
	if s := f.run(t).Status; s.State != v1alpha1.StateFailed || s.FailureReason != v1alpha1.FailureUserError {
		t.Errorf("status = %+v, want FAILED USER_ERROR", s)
	}
	if n := len(f.pods(t)); n != 0 {
		t.Errorf("%d pods left after the start timeout", n)
	}
}

func TestRunRefusedByPolicyFails(t *testing.T) {
	f := newFixture(t)
	run := f.run(t)
	var vc v1alpha1.VirtualCluster
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: "sales", Name: "vc1"}, &vc); err != nil {
		t.Fatal(err)
	}
	vc.Spec.Policy.AllowedExecutionRoles = []string{"arn:aws:iam::152324983118:role/other-*"}
	if err := f.c.Update(context.Background(), &vc); err != nil {
		t.Fatal(err)
	}
	f.reconcile(t)
	s := f.run(t).Status
	if s.State != v1alpha1.StateFailed || s.FailureReason != v1alpha1.FailureValidationError || len(s.StateDetails) > 256 ||
		!strings.Contains(s.StateDetails, "allowedExecutionRoles") {
		t.Errorf("status = %+v, want FAILED VALIDATION_ERROR naming the rule", s)
	}
	if n := len(f.pods(t)); n != 0 || run.Status.DriverPod != "" {
		t.Errorf("a refused run got %d pods", n)
	}
}

// TestRetries: with maxAttempts 3 a driver that fails twice is attempted again each time, and the third
// attempt's success completes the run; a cancel during the second attempt ends it with no third.
func TestRetries(t *testing.T) {
	fail := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}
	for name, cancelDuringSecond := range map[string]bool{"fails twice then succeeds": false, "cancelled during the second attempt": true} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			run := f.run(t)
			run.Spec.Request.RetryPolicyConfiguration = &v1alpha1.RetryPolicyConfiguration{MaxAttempts: 3}
			if err := f.c.Update(context.Background(), run); err != nil {
				t.Fatal(err)
			}
			var drivers []string
			for attempt := int32(1); attempt <= 3; attempt++ {
				f.reconcile(t) // creates the attempt's driver
				run := f.run(t)
				if run.CurrentAttempt() != attempt || run.Status.State != v1alpha1.StateSubmitted {
					t.Fatalf("attempt %d: status %+v", attempt, run.Status)
				}
				drivers = append(drivers, run.Status.DriverPod)
				if pods := f.pods(t); len(pods) != 1 {
					t.Fatalf("attempt %d: %d pods, want its driver only", attempt, len(pods))
				}
				if attempt == 2 && cancelDuringSecond {
					base := run.DeepCopy()
					run.Spec.Cancel = true
					if err := f.c.Patch(context.Background(), run, client.MergeFrom(base)); err != nil {
						t.Fatal(err)
					}
					f.reconcile(t)
					f.reconcile(t)
					if got := f.run(t); got.Status.State != v1alpha1.StateCancelled || got.CurrentAttempt() != 2 || len(f.pods(t)) != 0 {
						t.Fatalf("after the cancel: %+v, %d pods", got.Status, len(f.pods(t)))
					}
					f.reconcile(t)
					if got := f.run(t); got.CurrentAttempt() != 2 || len(f.pods(t)) != 0 {
						t.Fatalf("a third attempt started after the cancel: %+v", got.Status)
					}
					return
				}
				if attempt < 3 {
					f.setDriver(t, corev1.PodFailed, fail)
				} else {
					f.setDriver(t, corev1.PodSucceeded, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}})
				}
				f.reconcile(t)
			}
			got := f.run(t)
			if got.Status.State != v1alpha1.StateCompleted || got.CurrentAttempt() != 3 || len(got.Status.PreviousAttempts) != 2 {
				t.Fatalf("status = %+v, want COMPLETED on attempt 3 after two failed attempts", got.Status)
			}
			if view := submit.ViewJobRun(got, "us-east-1", "152324983118"); view.RetryPolicyExecution == nil || view.RetryPolicyExecution.CurrentAttemptCount != 3 {
				t.Errorf("DescribeJobRun's retryPolicyExecution = %+v, want currentAttemptCount 3", view.RetryPolicyExecution)
			}
			if drivers[0] == drivers[1] || drivers[1] == drivers[2] {
				t.Errorf("attempts shared a driver pod name: %v", drivers)
			}
		})
	}
}

// TestExecutorPodTemplate: the controller creates the executor template's ConfigMap from the template the run
// holds (it fetches nothing), owned by the driver pod so that it goes with the driver; the driver mounts it.
func TestExecutorPodTemplate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const template = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: spark-kubernetes-executor\n"
	run := f.run(t)
	run.Spec.Request.ConfigurationOverrides = &v1alpha1.ConfigurationOverrides{ApplicationConfiguration: []v1alpha1.Configuration{{
		Classification: "spark-defaults", Properties: map[string]string{"spark.kubernetes.executor.podTemplateFile": "s3://acme/exec.yaml"},
	}}}
	run.Spec.PodTemplates = &v1alpha1.PodTemplates{Executor: template}
	if err := f.c.Update(ctx, run); err != nil {
		t.Fatal(err)
	}
	f.reconcile(t)
	if s := f.run(t).Status; s.State != v1alpha1.StateSubmitted {
		t.Fatalf("status = %+v, want SUBMITTED", s)
	}
	pods := f.pods(t)
	if len(pods) != 1 {
		t.Fatalf("driver pods = %d, want 1", len(pods))
	}
	var cm corev1.ConfigMap
	if err := f.c.Get(ctx, client.ObjectKey{Namespace: "sales", Name: "spark-run1-driver-podspec-conf-map"}, &cm); err != nil {
		t.Fatalf("the executor template's ConfigMap: %v", err)
	}
	if cm.Data["podspec-configmap-key"] != template || !metav1.IsControlledBy(&cm, &pods[0]) {
		t.Errorf("ConfigMap data %q owners %+v, want the template, controlled by the driver pod", cm.Data, cm.OwnerReferences)
	}
	mounted := false
	for _, v := range pods[0].Spec.Volumes {
		mounted = mounted || (v.ConfigMap != nil && v.ConfigMap.Name == cm.Name)
	}
	if !mounted {
		t.Errorf("the driver does not mount %s: %+v", cm.Name, pods[0].Spec.Volumes)
	}
}
