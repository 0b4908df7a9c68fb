package submit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
)

// State is an emr-containers job-run state.
type State = v1alpha1.JobRunState

// The job-run states, as the API types define them.
const (
	StatePending       = v1alpha1.StatePending
	StateSubmitted     = v1alpha1.StateSubmitted
	StateRunning       = v1alpha1.StateRunning
	StateCompleted     = v1alpha1.StateCompleted
	StateFailed        = v1alpha1.StateFailed
	StateCancelPending = v1alpha1.StateCancelPending
	StateCancelled     = v1alpha1.StateCancelled
)

// States lists every state, for flag validation.
var States = v1alpha1.States

// Failure reasons of emr-containers.
const (
	FailureInternalError      = v1alpha1.FailureInternalError
	FailureUserError          = v1alpha1.FailureUserError
	FailureValidationError    = v1alpha1.FailureValidationError
	FailureClusterUnavailable = v1alpha1.FailureClusterUnavailable
)

// JobRun is DescribeJobRun's jobRun: the emr-containers view of a v1alpha1.JobRun.
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
	// RetryPolicyConfiguration and RetryPolicyExecution are set for runs with a retry policy.
	RetryPolicyConfiguration *RetryPolicyConfiguration `json:"retryPolicyConfiguration,omitempty"`
	RetryPolicyExecution     *RetryPolicyExecution     `json:"retryPolicyExecution,omitempty"`
}

// RetryPolicyExecution is how far a retried run has got.
type RetryPolicyExecution struct {
	CurrentAttemptCount int32 `json:"currentAttemptCount"`
}

// Labels sparkplace puts on what it creates.
const (
	LabelJobRunID         = "sparkplace.io/job-run-id"
	LabelVirtualClusterID = "sparkplace.io/virtual-cluster-id"
	LabelProfile          = "sparkplace.io/profile"
	labelManagedBy        = "app.kubernetes.io/managed-by"
	managedBy             = "sparkplace"
)

// ViewJobRun is the emr-containers view of a run. It reads only the object: a run whose cancel was asked
// and not yet carried out shows CANCEL_PENDING.
func ViewJobRun(r *v1alpha1.JobRun, region, accountID string) JobRun {
	req := r.Spec.Request
	state := r.CurrentState()
	if r.Spec.Cancel && !state.Terminal() {
		state = StateCancelPending
	}
	run := JobRun{
		ID:                     r.Name,
		Name:                   req.Name,
		VirtualClusterID:       req.VirtualClusterID,
		ARN:                    jobRunARN(region, accountID, req.VirtualClusterID, r.Name),
		State:                  state,
		ClientToken:            req.ClientToken,
		ExecutionRoleARN:       req.ExecutionRoleARN,
		ReleaseLabel:           req.ReleaseLabel,
		ConfigurationOverrides: req.ConfigurationOverrides,
		JobDriver:              req.JobDriver,
		CreatedAt:              wireTime(r.CreationTimestamp.Time),
		CreatedBy:              r.Spec.CreatedBy,
		StateDetails:           r.Status.StateDetails,
		FailureReason:          r.Status.FailureReason,
		Tags:                   r.Spec.Tags,
	}
	if run.Tags == nil {
		run.Tags = req.Tags
	}
	if f := r.Status.FinishedAt; f != nil {
		t := wireTime(f.Time)
		run.FinishedAt = &t
	}
	if p := req.RetryPolicyConfiguration; p != nil {
		run.RetryPolicyConfiguration = p
		run.RetryPolicyExecution = &RetryPolicyExecution{CurrentAttemptCount: r.CurrentAttempt()}
	}
	return run
}

// wireTime is a timestamp as the service writes its iso8601 Date fields: UTC, whole seconds (Kubernetes keeps
// no more), so every createdAt and finishedAt has the same shape, 2006-01-02T15:04:05Z.
func wireTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

func jobRunARN(region, account, vc, id string) string {
	return fmt.Sprintf("arn:aws:emr-containers:%s:%s:/virtualclusters/%s/jobruns/%s",
		firstNonEmpty(region, "us-east-1"), firstNonEmpty(account, "000000000000"), vc, id)
}

// requestHash identifies a request so that a reused clientToken with a different body is refused.
func requestHash(req *StartJobRunRequest) string {
	c := *req
	c.ClientToken = ""
	// Marshalling plain strings, maps and slices cannot fail.
	data, _ := json.Marshal(c)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}
