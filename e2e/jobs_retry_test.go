package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/emrcontainers"
	"github.com/aws/aws-sdk-go-v2/service/emrcontainers/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
	"github.com/sparkplace/sparkplace/submit"
)

// TestJobRetries starts runs with retryPolicyConfiguration.maxAttempts 3 through the API (aws-sdk-go-v2) and
// plays their drivers: one fails twice then succeeds and ends COMPLETED with currentAttemptCount 3 in
// DescribeJobRun; one is cancelled during its second attempt and ends CANCELLED with no third attempt.
func TestJobRetries(t *testing.T) {
	requireJobs(t)
	ctx := context.Background()
	key := apiKey{"AKIARETRIES00000000", "retries-secret", "retries@example.com"}
	sdk := sdkFor(startAPI(ctx, t, key), key)
	admin := newSubmitter(adminClient(t))
	cases := map[string]struct {
		exits     []int32 // the drivers' exit codes, one per attempt
		cancelAt  int32   // the attempt during which the run is cancelled (0: none)
		wantState types.JobRunState
		wantCount int32
	}{
		"fails twice, then succeeds: COMPLETED on attempt 3": {exits: []int32{1, 1, 0}, wantState: types.JobRunStateCompleted, wantCount: 3},
		"cancelled during attempt 2: no third attempt":       {exits: []int32{1}, cancelAt: 2, wantState: types.JobRunStateCancelled, wantCount: 2},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := tenantNamespace(t)
			bind(t, ns, "sparkplace-job-submitter", key.user)
			vc, err := admin.CreateVirtualCluster(ctx, "retries", ns)
			if err != nil {
				t.Fatal(err)
			}
			req := sparkPi(vc.ID, "")
			out, err := sdk.StartJobRun(ctx, &emrcontainers.StartJobRunInput{
				VirtualClusterId: aws.String(vc.ID), Name: aws.String(req.Name), ExecutionRoleArn: aws.String(req.ExecutionRoleARN),
				ReleaseLabel: aws.String(req.ReleaseLabel), RetryPolicyConfiguration: &types.RetryPolicyConfiguration{MaxAttempts: aws.Int32(3)},
				JobDriver: &types.JobDriver{SparkSubmitJobDriver: &types.SparkSubmitJobDriver{
					EntryPoint: aws.String(req.JobDriver.SparkSubmitJobDriver.EntryPoint), EntryPointArguments: req.JobDriver.SparkSubmitJobDriver.EntryPointArguments,
					SparkSubmitParameters: aws.String(req.JobDriver.SparkSubmitJobDriver.SparkSubmitParameters),
				}},
			})
			if err != nil {
				t.Fatalf("StartJobRun: %v", err)
			}
			id := aws.ToString(out.Id)
			describe := func() *types.JobRun {
				t.Helper()
				d, err := sdk.DescribeJobRun(ctx, &emrcontainers.DescribeJobRunInput{VirtualClusterId: aws.String(vc.ID), Id: aws.String(id)})
				if err != nil {
					t.Fatalf("DescribeJobRun: %v", err)
				}
				return d.JobRun
			}
			for attempt := int32(1); ; attempt++ {
				// Each attempt has its own driver: spark-<id>-driver, then spark-<id>-<attempt>-driver.
				driver := "spark-" + id + "-driver"
				if attempt > 1 {
					driver = fmt.Sprintf("spark-%s-%d-driver", id, attempt)
				}
				waitRunning(t, ns, driver)
				if got := describe().RetryPolicyExecution; got == nil || aws.ToInt32(got.CurrentAttemptCount) != attempt {
					t.Fatalf("attempt %d's driver runs, DescribeJobRun's retryPolicyExecution = %+v", attempt, got)
				}
				if attempt == tc.cancelAt {
					if _, err := sdk.CancelJobRun(ctx, &emrcontainers.CancelJobRunInput{VirtualClusterId: aws.String(vc.ID), Id: aws.String(id)}); err != nil {
						t.Fatalf("CancelJobRun: %v", err)
					}
					break
				}
				exitSubmittedDriver(t, ns, driver, tc.exits[attempt-1])
				if tc.exits[attempt-1] == 0 {
					break
				}
			}
			waitJobRunState(t, admin, vc.ID, id, submit.State(tc.wantState))
			run := describe()
			if run.State != tc.wantState || run.RetryPolicyExecution == nil || aws.ToInt32(run.RetryPolicyExecution.CurrentAttemptCount) != tc.wantCount ||
				run.RetryPolicyConfiguration == nil || aws.ToInt32(run.RetryPolicyConfiguration.MaxAttempts) != 3 {
				t.Errorf("DescribeJobRun = %s, retryPolicyExecution %+v, retryPolicyConfiguration %+v; want %s on attempt %d of 3",
					run.State, run.RetryPolicyExecution, run.RetryPolicyConfiguration, tc.wantState, tc.wantCount)
			}
			// Every failed attempt is recorded; none started after the last.
			var obj v1alpha1.JobRun
			if err := adminClient(t).Get(ctx, client.ObjectKey{Namespace: ns, Name: id}, &obj); err != nil {
				t.Fatal(err)
			}
			if obj.CurrentAttempt() != tc.wantCount || len(obj.Status.PreviousAttempts) != int(tc.wantCount)-1 {
				t.Errorf("status: attempt %d, previous attempts %+v; want attempt %d after %d failed", obj.CurrentAttempt(), obj.Status.PreviousAttempts, tc.wantCount, tc.wantCount-1)
			}
			if tc.cancelAt > 0 {
				waitNoJobPods(t, ns, submit.LabelJobRunID+"="+id)
			}
		})
	}
}
