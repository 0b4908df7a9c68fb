package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// JobRunState is an emr-containers job-run state.
// +kubebuilder:validation:Enum=PENDING;SUBMITTED;RUNNING;COMPLETED;FAILED;CANCEL_PENDING;CANCELLED
type JobRunState string

// The job-run states of emr-containers, in the order a run moves through them.
const (
	StatePending       JobRunState = "PENDING"        // accepted, driver not created yet
	StateSubmitted     JobRunState = "SUBMITTED"      // driver pod created, driver container not running yet
	StateRunning       JobRunState = "RUNNING"        // driver container running
	StateCompleted     JobRunState = "COMPLETED"      // driver container exited 0
	StateFailed        JobRunState = "FAILED"         // driver container exited non-zero, or the run could not start
	StateCancelPending JobRunState = "CANCEL_PENDING" // cancel asked, driver pod still terminating
	StateCancelled     JobRunState = "CANCELLED"      // driver pod gone after a cancel
)

// States lists every state, for validation of filters.
var States = []JobRunState{StatePending, StateSubmitted, StateRunning, StateCompleted, StateFailed, StateCancelPending, StateCancelled}

// Terminal reports whether no further transition can happen.
func (s JobRunState) Terminal() bool {
	return s == StateCompleted || s == StateFailed || s == StateCancelled
}

// Failure reasons of emr-containers.
const (
	FailureInternalError      = "INTERNAL_ERROR"
	FailureUserError          = "USER_ERROR"
	FailureValidationError    = "VALIDATION_ERROR"
	FailureClusterUnavailable = "CLUSTER_UNAVAILABLE"
)

// JobRunSpec is what the submitter asked for. Only the controller acts on it; the request never changes.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.cancel) || !oldSelf.cancel || (has(self.cancel) && self.cancel)",message="a cancel cannot be withdrawn"
// +kubebuilder:validation:XValidation:rule="has(self.podTemplates) == has(oldSelf.podTemplates)",message="pod templates are set when a job run is created, never added or removed"
type JobRunSpec struct {
	// Request is the StartJobRun request as sent. Immutable.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="the request of a job run is immutable"
	Request JobRunRequest `json:"request"`
	// CreatedBy is who submitted the run (the API's authenticated caller). Immutable.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="createdBy is immutable"
	CreatedBy string `json:"createdBy,omitempty"`
	// Tags are the run's tags (TagResource and UntagResource change them); they start as the request's.
	// +optional
	Tags map[string]string `json:"tags,omitempty"`
	// PodTemplates are the pod templates the request's spark.kubernetes.{driver,executor}.podTemplateFile
	// name, as the submitter fetched them (from S3, a ConfigMap of the run's namespace, or its template
	// directory), so that the controller fetches nothing. Immutable.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="the pod templates of a job run are immutable"
	PodTemplates *PodTemplates `json:"podTemplates,omitempty"`
	// Cancel asks the controller to stop the run; it cannot be withdrawn.
	// +optional
	Cancel bool `json:"cancel,omitempty"`
	// TTLSecondsAfterFinished deletes the run this long after it finished. Defaults to the controller's
	// --finished-ttl (30 days).
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
}

// PodTemplates are the contents of a run's pod template files (YAML or JSON Pods), at most 128 KiB each.
type PodTemplates struct {
	// Driver is spark.kubernetes.driver.podTemplateFile's content.
	// +optional
	// +kubebuilder:validation:MaxLength=131072
	Driver string `json:"driver,omitempty"`
	// Executor is spark.kubernetes.executor.podTemplateFile's content; the driver reads it from the ConfigMap
	// <prefix>-driver-podspec-conf-map mounted at /opt/spark/pod-template, as with spark-submit.
	// +optional
	// +kubebuilder:validation:MaxLength=131072
	Executor string `json:"executor,omitempty"`
}

// JobRunStatus is what the controller observed. Only the controller writes it (the status subresource).
type JobRunStatus struct {
	// State is the emr-containers state; empty means PENDING.
	// +optional
	State JobRunState `json:"state,omitempty"`
	// FailureReason is set on FAILED: INTERNAL_ERROR, USER_ERROR, VALIDATION_ERROR or CLUSTER_UNAVAILABLE.
	// +optional
	FailureReason string `json:"failureReason,omitempty"`
	// StateDetails says why, in words (at most 256 characters).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	StateDetails string `json:"stateDetails,omitempty"`
	// DriverPod is the driver pod's name once it was created.
	// +optional
	DriverPod string `json:"driverPod,omitempty"`
	// SparkAppID is the driver's spark-app-selector.
	// +optional
	SparkAppID string `json:"sparkAppId,omitempty"`
	// SubmittedAt is when the driver pod was created; the start timeout counts from here.
	// +optional
	SubmittedAt *metav1.Time `json:"submittedAt,omitempty"`
	// StartDeadline is when a driver that is not running yet fails (job-start-timeout after SubmittedAt).
	// +optional
	StartDeadline *metav1.Time `json:"startDeadline,omitempty"`
	// FinishedAt is when the run reached a final state.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
	// Attempt is the current attempt (retryPolicyConfiguration.maxAttempts); 0 means the first.
	// +optional
	Attempt int32 `json:"attempt,omitempty"`
	// PreviousAttempts are the attempts that failed and were retried, oldest first.
	// +optional
	// +listType=atomic
	PreviousAttempts []JobRunAttempt `json:"previousAttempts,omitempty"`
}

// JobRunAttempt is how one attempt of a retried run ended.
type JobRunAttempt struct {
	Attempt int32 `json:"attempt"`
	// DriverPod is the attempt's driver pod.
	DriverPod string `json:"driverPod,omitempty"`
	// State, FailureReason and StateDetails are the attempt's final state.
	State         JobRunState `json:"state"`
	FailureReason string      `json:"failureReason,omitempty"`
	// +kubebuilder:validation:MaxLength=256
	StateDetails string       `json:"stateDetails,omitempty"`
	FinishedAt   *metav1.Time `json:"finishedAt,omitempty"`
}

// CurrentAttempt is the attempt the run is on, counting from 1.
func (r *JobRun) CurrentAttempt() int32 {
	return max(r.Status.Attempt, 1)
}

// JobRun is one emr-containers job run. Its name is the run's id.
// +kubebuilder:object:root=true
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[0-9a-z]{1,40}$')",message="a job run's name is its id: 1-40 characters of [0-9a-z]"
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=jr,categories=sparkplace
// +kubebuilder:printcolumn:name="Job",type=string,JSONPath=`.spec.request.name`
// +kubebuilder:printcolumn:name="Virtual Cluster",type=string,JSONPath=`.spec.request.virtualClusterId`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.failureReason`
// +kubebuilder:printcolumn:name="Attempt",type=integer,JSONPath=`.status.attempt`,priority=1
// +kubebuilder:printcolumn:name="Driver",type=string,JSONPath=`.status.driverPod`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type JobRun struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   JobRunSpec   `json:"spec"`
	Status JobRunStatus `json:"status,omitempty"`
}

// CurrentState is the status's state, PENDING when the controller has not written one yet.
func (r *JobRun) CurrentState() JobRunState {
	if r.Status.State == "" {
		return StatePending
	}
	return r.Status.State
}

// JobRunList is a list of JobRuns.
// +kubebuilder:object:root=true
type JobRunList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []JobRun `json:"items"`
}
