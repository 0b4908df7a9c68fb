package controller

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
)

func TestObserve(t *testing.T) {
	submitted := time.Date(2021, 11, 30, 10, 0, 0, 0, time.UTC)
	deadline := submitted.Add(15 * time.Minute)
	finished := submitted.Add(10 * time.Minute)
	pod := func(phase corev1.PodPhase, state corev1.ContainerState, conds ...corev1.PodCondition) *corev1.Pod {
		p := &corev1.Pod{Status: corev1.PodStatus{Phase: phase, Conditions: conds}}
		if state != (corev1.ContainerState{}) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: driverContainerName, State: state}}
		}
		return p
	}
	exited := func(code int32, reason string) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, FinishedAt: metav1.NewTime(finished)}}
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	pulling := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}
	unschedulable := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/12 nodes are available: 12 Insufficient memory."}
	cases := map[string]struct {
		current v1alpha1.JobRunState
		pod     *corev1.Pod
		after   time.Duration
		want    observation
	}{
		"driver running":         {pod: pod(corev1.PodRunning, running), want: observation{state: v1alpha1.StateRunning}},
		"driver exited 0":        {pod: pod(corev1.PodSucceeded, exited(0, "Completed")), want: observation{state: v1alpha1.StateCompleted, finishedAt: &finished}},
		"exit code before phase": {pod: pod(corev1.PodRunning, exited(0, "Completed")), want: observation{state: v1alpha1.StateCompleted, finishedAt: &finished}},
		"driver exited 1": {pod: pod(corev1.PodFailed, exited(1, "Error")), want: observation{state: v1alpha1.StateFailed, reason: v1alpha1.FailureUserError,
			details: "driver container spark-kubernetes-driver exited with code 1 (Error)", finishedAt: &finished}},
		"driver OOM killed": {pod: pod(corev1.PodFailed, exited(137, "OOMKilled")), want: observation{state: v1alpha1.StateFailed, reason: v1alpha1.FailureUserError,
			details: "driver container spark-kubernetes-driver exited with code 137 (OOMKilled)", finishedAt: &finished}},
		"evicted without an exit": {pod: pod(corev1.PodFailed, corev1.ContainerState{}), want: observation{state: v1alpha1.StateFailed, reason: v1alpha1.FailureClusterUnavailable, details: "driver pod failed"}},
		"unschedulable within the timeout stays SUBMITTED": {
			pod: pod(corev1.PodPending, corev1.ContainerState{}, unschedulable), after: 14 * time.Minute,
			want: observation{state: v1alpha1.StateSubmitted, details: "driver pod not scheduled: 0/12 nodes are available: 12 Insufficient memory."},
		},
		"unschedulable past the timeout: cluster unavailable": {
			pod: pod(corev1.PodPending, corev1.ContainerState{}, unschedulable), after: 16 * time.Minute,
			want: observation{state: v1alpha1.StateFailed, reason: v1alpha1.FailureClusterUnavailable, startTimedOut: true,
				details: "the driver did not start within job-start-timeout (driver pod not scheduled: 0/12 nodes are available: 12 Insufficient memory.)"},
		},
		"image never pulled past the timeout: user error": {
			pod: pod(corev1.PodPending, pulling), after: 16 * time.Minute,
			want: observation{state: v1alpha1.StateFailed, reason: v1alpha1.FailureUserError, startTimedOut: true,
				details: "the driver did not start within job-start-timeout (driver container waiting: ImagePullBackOff)"},
		},
		"a running driver restarting is past its start": {
			current: v1alpha1.StateRunning, pod: pod(corev1.PodRunning, pulling), after: time.Hour,
			want: observation{state: v1alpha1.StateRunning},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			current := tc.current
			if current == "" {
				current = v1alpha1.StateSubmitted
			}
			got := observe(current, tc.pod, submitted.Add(tc.after), &deadline)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(observation{})); diff != "" {
				t.Errorf("observation (-want +got):\n%s", diff)
			}
		})
	}
}
