package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sparkplace/sparkplace/submit"
)

// TestJobRunsFromAirflow replays Airflow's EmrContainerOperator with boto3 (e2e/testdata/
// airflow_emr_containers.py) against the API: a task with a retry policy and tags ends COMPLETED, a
// failing one ends FAILED with its failure reason read as the operator reads it, and a killed one is
// cancelled. The test plays the drivers the script's tasks start.
func TestJobRunsFromAirflow(t *testing.T) {
	requireJobs(t)
	if err := exec.Command("python3", "-c", "import boto3").Run(); err != nil {
		t.Skipf("python3 with boto3 is needed to replay Airflow's calls (pip install boto3): %v", err)
	}
	ctx := context.Background()
	key := apiKey{"AKIAAIRFLOW00000000", "airflow-secret", "airflow@example.com"}
	url := startAPI(ctx, t, key)
	ns := tenantNamespace(t)
	bind(t, ns, "sparkplace-job-submitter", key.user)
	admin := newSubmitter(adminClient(t))
	vc, err := admin.CreateVirtualCluster(ctx, "airflow", ns)
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, "python3", filepath.Join("testdata", "airflow_emr_containers.py"), url, vc.ID, "0.2")
	cmd.Env = awsEnv(t, key)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	var results map[string]struct {
		ID, State, FailureReason string
	}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		result, isResult := strings.CutPrefix(lines.Text(), "result ")
		switch {
		case len(f) == 3 && f[0] == "submitted":
			task, id := f[1], f[2]
			ids[task] = id
			driver := waitRunning(t, ns, "spark-"+id+"-driver")
			switch task {
			case "ok":
				exitSubmittedDriver(t, ns, driver.Pod.Name, 0)
			case "fails":
				// A long termination message: stateDetails keeps the model's 256 characters.
				exitDriver(t, ns, driver.Pod.Name, 1, stackTrace)
			}
		case isResult:
			if err := json.Unmarshal([]byte(result), &results); err != nil {
				t.Fatalf("result %s: %v", result, err)
			}
		default:
			t.Logf("replay: %s", lines.Text())
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the Airflow replay failed: %v\n%s", err, stderr.String())
	}

	if r := results["ok"]; r.State != "COMPLETED" || r.ID != ids["ok"] {
		t.Errorf("the task with a retry policy and tags: %+v, want COMPLETED", r)
	}
	run, err := admin.DescribeJobRun(ctx, vc.ID, ids["ok"])
	if err != nil {
		t.Fatal(err)
	}
	if run.Tags["dag"] != "etl" || run.Tags["task"] != "ok" || run.RetryPolicyConfiguration == nil || run.RetryPolicyConfiguration.MaxAttempts != 2 ||
		run.RetryPolicyExecution == nil || run.RetryPolicyExecution.CurrentAttemptCount != 1 {
		t.Errorf("the COMPLETED run: tags %v, retry policy %+v, execution %+v; want Airflow's tags and maxAttempts 2 on attempt 1",
			run.Tags, run.RetryPolicyConfiguration, run.RetryPolicyExecution)
	}
	r := results["fails"]
	details, ok := strings.CutPrefix(r.FailureReason, submit.FailureUserError+" - ")
	if r.State != "FAILED" || !ok || !strings.Contains(details, "exited with code 1") {
		t.Errorf("the failing task: %+v, want FAILED with the reason \"USER_ERROR - <stateDetails>\"", r)
	}
	if n := utf8.RuneCountInString(details); n > 256 || !utf8.ValidString(details) {
		t.Errorf("stateDetails of %d characters (valid UTF-8: %v), want at most the model's 256", n, utf8.ValidString(details))
	}
	// The hook counts CANCEL_PENDING as final; the controller then finishes the cancel.
	if r := results["killed"]; r.State != "CANCEL_PENDING" && r.State != "CANCELLED" {
		t.Errorf("the killed task: %+v, want CANCEL_PENDING or CANCELLED", r)
	}
	waitJobRunState(t, admin, vc.ID, ids["killed"], submit.StateCancelled)
}

// stackTrace is what a failing Spark driver leaves as its termination message: longer than stateDetails may
// be, with multi-byte characters where the cut falls.
var stackTrace = "Exception in thread \"main\" org.apache.spark.SparkException: Job aborted due to stage failure: " +
	strings.Repeat("Täsk 3 in stage 1.0 failed 4 times, most recent failure: java.io.FileNotFoundException: s3a://bücket/päth\n\tat org.apache.hadoop.fs.s3a.S3AFileSystem.open(S3AFileSystem.java:1234)\n", 20)
