package controller

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
)

// driverContainerName is the driver's container in the pods Spark (and the submitter) create.
const driverContainerName = "spark-kubernetes-driver"

// observation is what the driver pod says about a run.
type observation struct {
	state         v1alpha1.JobRunState
	reason        string
	details       string
	finishedAt    *time.Time
	startTimedOut bool
}

// observe maps the driver pod to emr-containers' states. The driver container's exit code decides the
// outcome: RUNNING means that container runs, COMPLETED that it exited 0, FAILED/USER_ERROR any other code.
// A driver that has not started by startDeadline fails (CLUSTER_UNAVAILABLE, or USER_ERROR when its image
// or configuration cannot be used).
func observe(current v1alpha1.JobRunState, pod *corev1.Pod, now time.Time, startDeadline *time.Time) observation {
	status := driverStatus(pod)
	if status != nil && status.State.Terminated != nil {
		t := status.State.Terminated
		finished := t.FinishedAt.UTC()
		if t.FinishedAt.IsZero() {
			finished = now.UTC()
		}
		if t.ExitCode == 0 {
			return observation{state: v1alpha1.StateCompleted, finishedAt: &finished}
		}
		details := fmt.Sprintf("driver container %s exited with code %d", status.Name, t.ExitCode)
		if t.Reason != "" {
			details += " (" + t.Reason + ")"
		}
		if t.Message != "" {
			details += ": " + t.Message
		}
		return observation{state: v1alpha1.StateFailed, reason: v1alpha1.FailureUserError, details: details, finishedAt: &finished}
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		return observation{state: v1alpha1.StateCompleted}
	case corev1.PodFailed:
		details := "driver pod failed"
		if pod.Status.Reason != "" {
			details += ": " + pod.Status.Reason
		}
		if pod.Status.Message != "" {
			details += ": " + pod.Status.Message
		}
		// No exit code means the pod was lost rather than the application failing (eviction, node loss).
		return observation{state: v1alpha1.StateFailed, reason: v1alpha1.FailureClusterUnavailable, details: details}
	}
	if status != nil && status.State.Running != nil {
		return observation{state: v1alpha1.StateRunning}
	}
	details := "driver pod " + string(pod.Status.Phase)
	if status != nil && status.State.Waiting != nil && status.State.Waiting.Reason != "" {
		details = "driver container waiting: " + status.State.Waiting.Reason
	} else if c := podCondition(pod, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse {
		details = "driver pod not scheduled: " + c.Message
	}
	if current != v1alpha1.StateRunning && startDeadline != nil && now.After(*startDeadline) {
		reason := v1alpha1.FailureClusterUnavailable
		if status != nil && status.State.Waiting != nil && userWaitReasons[status.State.Waiting.Reason] {
			reason = v1alpha1.FailureUserError
		}
		return observation{state: v1alpha1.StateFailed, reason: reason, details: "the driver did not start within job-start-timeout (" + details + ")", startTimedOut: true}
	}
	if current == v1alpha1.StateRunning {
		// A driver container restarting is still the same run.
		return observation{state: v1alpha1.StateRunning}
	}
	return observation{state: v1alpha1.StateSubmitted, details: details}
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
