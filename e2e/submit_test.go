package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/e2e/sparksim"
	"github.com/sparkplace/sparkplace/placement"
	"github.com/sparkplace/sparkplace/submit"
)

// TestSubmitJobRuns drives job runs end to end: sparkplace's submitter creates the driver from an EMR
// StartJobRun request, the webhook places it, the simulated driver allocates executors that the webhook
// places too, and the job run's state follows the driver: RUNNING, then COMPLETED on exit 0, FAILED/USER_ERROR
// on exit 1, and CANCELLED with no pod left after a cancel. kwok plays the kubelet, so the driver's exit is
// written into the pod status here, as a kubelet would.
func TestSubmitJobRuns(t *testing.T) {
	requireJobs(t)
	ctx := context.Background()
	s := newSubmitter(adminClient(t))
	ns := tenantNamespace(t)
	vc, err := s.CreateVirtualCluster(ctx, "e2e-analytics", ns)
	if err != nil {
		t.Fatalf("CreateVirtualCluster: %v", err)
	}

	tests := map[string]struct {
		exitCode   *int32 // nil: cancel the running job instead
		wantState  submit.State
		wantReason string
	}{
		"driver exits 0: COMPLETED":          {exitCode: exitCodeOf(0), wantState: submit.StateCompleted},
		"driver exits 1: FAILED, USER_ERROR": {exitCode: exitCodeOf(1), wantState: submit.StateFailed, wantReason: submit.FailureUserError},
		"cancelled while running: CANCELLED": {wantState: submit.StateCancelled},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sub, err := s.StartJobRun(ctx, sparkPi(vc.ID, t.Name()))
			if err != nil {
				t.Fatalf("StartJobRun: %v", err)
			}
			id := sub.Response.ID
			driver := waitRunning(t, ns, "spark-"+id+"-driver")
			if _, ok := driver.Pod.Annotations[placement.AnnotationKey]; !ok {
				t.Errorf("driver %s was not placed by the webhook (no %s annotation)", driver.Pod.Name, placement.AnnotationKey)
			}
			if driver.capacity() != "ON_DEMAND" {
				t.Errorf("driver on %s (%s), want ON_DEMAND capacity", driver.Node.Name, driver.capacity())
			}

			// The driver allocates its executors as Spark would from the properties the submitter wrote.
			app := submittedApp(driver.Pod)
			alloc := sparksim.Allocator{Client: cp.Client, App: app}
			res, err := alloc.Run(ctx, 2)
			if err != nil {
				t.Fatalf("allocate executors: %v", err)
			}
			for _, p := range res.Created {
				e := waitRunning(t, ns, p.Name)
				if e.capacity() != "SPOT" || e.zone() != driver.zone() {
					t.Errorf("executor %s on %s (%s, %s), want SPOT in the driver's zone %s", e.Pod.Name, e.Node.Name, e.capacity(), e.zone(), driver.zone())
				}
			}
			waitJobRunState(t, s, vc.ID, id, submit.StateRunning)

			if tc.exitCode == nil {
				run, err := s.CancelJobRun(ctx, vc.ID, id)
				if err != nil {
					t.Fatalf("CancelJobRun: %v", err)
				}
				if run.State != submit.StateCancelPending && run.State != submit.StateCancelled {
					t.Errorf("state right after cancel = %s, want CANCEL_PENDING or CANCELLED", run.State)
				}
			} else {
				exitSubmittedDriver(t, ns, driver.Pod.Name, *tc.exitCode)
			}
			run := waitJobRunState(t, s, vc.ID, id, tc.wantState)
			if run.FailureReason != tc.wantReason {
				t.Errorf("failureReason = %q, want %q (details %q)", run.FailureReason, tc.wantReason, run.StateDetails)
			}
			if tc.exitCode == nil {
				waitNoJobPods(t, ns, submit.LabelJobRunID+"="+id)
			}
		})
	}

	runs, err := s.ListJobRuns(ctx, submit.ListJobRunsOptions{VirtualClusterID: vc.ID})
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, r := range runs {
		states = append(states, string(r.State))
	}
	slices.Sort(states)
	if want := []string{"CANCELLED", "COMPLETED", "FAILED"}; !slices.Equal(states, want) {
		t.Errorf("job runs in states %v, want %v", states, want)
	}
}

// submittedApp describes a submitted driver to the simulator, so its executors look like Spark's for this job.
func submittedApp(driver *corev1.Pod) *sparksim.App {
	app := sparksim.NewApp(driver.Labels[sparksim.LabelAppName], driver.Namespace)
	app.ID = driver.Labels[sparksim.LabelAppSelector]
	app.ResourcePrefix = driver.Name[:len(driver.Name)-len("-driver")]
	app.ServiceAccount = driver.Spec.ServiceAccountName
	app.Image = driver.Spec.Containers[0].Image
	// What spark.kubernetes.executor.label.* in the submitted properties puts on executors.
	app.ExecutorLabels = map[string]string{
		submit.LabelJobRunID:         driver.Labels[submit.LabelJobRunID],
		submit.LabelVirtualClusterID: driver.Labels[submit.LabelVirtualClusterID],
	}
	return app
}

// exitSubmittedDriver writes what a kubelet reports when the driver container exits with code.
func exitSubmittedDriver(t *testing.T, ns, name string, code int32) {
	t.Helper()
	exitDriver(t, ns, name, code, "")
}

// exitDriver writes the driver's exit as a kubelet would, with the container's termination message (what
// Spark's driver writes to /dev/termination-log, up to the kubelet's 4096 bytes).
func exitDriver(t *testing.T, ns, name string, code int32, message string) {
	t.Helper()
	ctx := context.Background()
	pod, err := cp.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	phase, reason := corev1.PodSucceeded, "Completed"
	if code != 0 {
		phase, reason = corev1.PodFailed, "Error"
	}
	now := metav1.Now()
	pod.Status.Phase = phase
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: sparksim.DriverContainer, Image: pod.Spec.Containers[0].Image,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: message, FinishedAt: now}},
	}}
	if _, err := cp.Client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("driver exit %d: %v", code, err)
	}
}

func waitJobRunState(t *testing.T, s *submit.Submitter, vcID, id string, want submit.State) *submit.JobRun {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		run, err := s.DescribeJobRun(context.Background(), vcID, id)
		if err != nil {
			t.Fatalf("DescribeJobRun: %v", err)
		}
		if run.State == want {
			return run
		}
		if run.State.Terminal() || time.Now().After(deadline) {
			t.Fatalf("job run %s is %s (%s %s), want %s", id, run.State, run.FailureReason, run.StateDetails, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func waitNoJobPods(t *testing.T, ns, selector string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		list, err := cp.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pods with %s still there a minute after cancel", len(list.Items), selector)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func exitCodeOf(code int32) *int32 { return &code }

// TestSubmitCLI runs the commands users type: vc create, submit (the seed's pi.py request on stdin),
// jobs describe, jobs list, jobs cancel --wait, against the real API server.
func TestSubmitCLI(t *testing.T) {
	requireJobs(t)
	bin := os.Getenv("SPARKPLACE_BIN")
	if bin == "" {
		bin = filepath.Join(cp.Dir, "sparkplace")
	}
	sparkplace := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--kubeconfig", cp.Kubeconfig)...)
		cmd.Stdin = strings.NewReader(stdin)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sparkplace %v: %v\n%s", args, err, stderr.String())
		}
		return string(out)
	}
	ns := tenantNamespace(t)
	var vc struct{ ID string }
	if err := json.Unmarshal([]byte(sparkplace("", "vc", "create", "--name", "cli-analytics", "--namespace", ns)), &vc); err != nil {
		t.Fatal(err)
	}
	request := `{
  "name": "sample-job-name",
  "virtualClusterId": "` + vc.ID + `",
  "executionRoleArn": "arn:aws:iam::152324983118:role/emr-eks-job-execution",
  "releaseLabel": "emr-6.3.0-latest",
  "jobDriver": {
    "sparkSubmitJobDriver": {
      "entryPoint": "local:///usr/lib/spark/examples/src/main/python/pi.py",
      "sparkSubmitParameters": "--conf spark.executor.instances=2 --conf spark.executor.memory=2G --conf spark.executor.cores=2 --conf spark.driver.cores=1"
    }
  }
}`
	var job submit.StartJobRunResponse
	if err := json.Unmarshal([]byte(sparkplace(request, "submit", "--job-run", "-", "--region", "us-west-2")), &job); err != nil {
		t.Fatal(err)
	}
	waitRunning(t, ns, "spark-"+job.ID+"-driver")
	waitJobRunState(t, newSubmitter(adminClient(t)), vc.ID, job.ID, submit.StateRunning)
	var desc struct{ JobRun submit.JobRun }
	if err := json.Unmarshal([]byte(sparkplace("", "jobs", "describe", job.ID)), &desc); err != nil {
		t.Fatal(err)
	}
	if desc.JobRun.State != submit.StateRunning {
		t.Errorf("jobs describe: state %s, want RUNNING", desc.JobRun.State)
	}
	if out := sparkplace("", "jobs", "list", "--virtual-cluster-id", vc.ID, "--state", "running"); !strings.Contains(out, job.ID) {
		t.Errorf("jobs list --state running does not show %s:\n%s", job.ID, out)
	}
	if out := sparkplace("", "jobs", "cancel", job.ID, "--wait", "1m"); !strings.Contains(out, `"state": "CANCELLED"`) {
		t.Errorf("jobs cancel --wait printed %s, want CANCELLED", out)
	}
	waitNoJobPods(t, ns, submit.LabelJobRunID+"="+job.ID)
}
