package submit

import (
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// State is an EMR job-run state.
type State string

// The job-run states of emr-containers, in the order a run moves through them.
const (
	StatePending       State = "PENDING"        // accepted, driver not created yet
	StateSubmitted     State = "SUBMITTED"      // driver pod created, driver container not running yet
	StateRunning       State = "RUNNING"        // driver container running
	StateCompleted     State = "COMPLETED"      // driver container exited 0
	StateFailed        State = "FAILED"         // driver container exited non-zero, or the run could not start
	StateCancelPending State = "CANCEL_PENDING" // cancel asked, driver pod still terminating
	StateCancelled     State = "CANCELLED"      // driver pod gone after a cancel
)

// States lists every state, for flag validation.
var States = []State{StatePending, StateSubmitted, StateRunning, StateCompleted, StateFailed, StateCancelPending, StateCancelled}

// Terminal reports whether no further transition can happen.
func (s State) Terminal() bool {
	return s == StateCompleted || s == StateFailed || s == StateCancelled
}

// Failure reasons of emr-containers.
const (
	FailureInternalError      = "INTERNAL_ERROR"
	FailureUserError          = "USER_ERROR"
	FailureValidationError    = "VALIDATION_ERROR"
	FailureClusterUnavailable = "CLUSTER_UNAVAILABLE"
)

// JobRun is DescribeJobRun's jobRun, as stored and as printed.
type JobRun struct {
	ID                     string                  `json:"id"`
	Name                   string                  `json:"name,omitempty"`
	VirtualClusterID       string                  `json:"virtualClusterId"`
	ARN                    string                  `json:"arn"`
	State                  State                   `json:"state"`
	ClientToken            string                  `json:"clientToken,omitempty"`
	ExecutionRoleARN       string                  `json:"executionRoleArn,omitempty"`
	ReleaseLabel           string                  `json:"releaseLabel,omitempty"`
	ConfigurationOverrides *ConfigurationOverrides `json:"configurationOverrides,omitempty"`
	JobDriver              *JobDriver              `json:"jobDriver,omitempty"`
	CreatedAt              time.Time               `json:"createdAt"`
	CreatedBy              string                  `json:"createdBy,omitempty"`
	FinishedAt             *time.Time              `json:"finishedAt,omitempty"`
	StateDetails           string                  `json:"stateDetails,omitempty"`
	FailureReason          string                  `json:"failureReason,omitempty"`
	Tags                   map[string]string       `json:"tags,omitempty"`
}

// Labels and annotations sparkplace puts on what it creates.
const (
	LabelJobRunID         = "sparkplace.io/job-run-id"
	LabelVirtualClusterID = "sparkplace.io/virtual-cluster-id"
	LabelProfile          = "sparkplace.io/profile"
	// LabelKind tells sparkplace's own records (job runs) apart from the Spark objects.
	LabelKind = "sparkplace.io/kind"
	// LabelState mirrors the record's state so `jobs list --state` is a label selector.
	LabelState     = "sparkplace.io/state"
	labelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "sparkplace"
	kindJobRun     = "job-run"

	annotationDriverPod    = "sparkplace.io/driver-pod"
	annotationSparkAppID   = "sparkplace.io/spark-app-id"
	annotationRequestHash  = "sparkplace.io/request-hash"
	annotationStartTimeout = "sparkplace.io/job-start-timeout"

	recordKey = "jobRun.json"
)

// recordName is the job run's record ConfigMap: it outlives the driver pod, so state survives a cancel.
func recordName(jobRunID string) string { return "sparkplace-jobrun-" + jobRunID }

// record is a job run's stored form.
type record struct {
	cm  *corev1.ConfigMap
	run JobRun
}

func newRecordConfigMap(namespace string, run JobRun, annotations map[string]string) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      recordName(run.ID),
			Namespace: namespace,
			Labels: map[string]string{
				LabelJobRunID:         run.ID,
				LabelVirtualClusterID: run.VirtualClusterID,
				LabelKind:             kindJobRun,
				labelManagedBy:        managedBy,
			},
			Annotations: annotations,
		},
	}
	if err := setRecordRun(cm, run); err != nil {
		return nil, err
	}
	return cm, nil
}

func setRecordRun(cm *corev1.ConfigMap, run JobRun) error {
	data, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding job run %s: %w", run.ID, err)
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[recordKey] = string(data)
	cm.Labels[LabelState] = string(run.State)
	return nil
}

func readRecord(cm *corev1.ConfigMap) (*record, error) {
	var run JobRun
	if err := json.Unmarshal([]byte(cm.Data[recordKey]), &run); err != nil {
		return nil, fmt.Errorf("reading job-run record %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return &record{cm: cm, run: run}, nil
}
