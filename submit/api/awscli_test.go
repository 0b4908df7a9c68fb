package api

import (
	"encoding/json"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/sparkplace/sparkplace/submit"
)

// TestAWSCLI runs the real `aws emr-containers` against the API: what users type, with --endpoint-url.
// It is skipped where the AWS CLI is not installed.
func TestAWSCLI(t *testing.T) {
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("aws CLI not installed")
	}
	s := submit.New(submit.Options{
		Client: fakeCluster(t, "emr-jobs"),
		Clock:  clocktesting.NewFakePassiveClock(time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)),
		Random: rand.NewChaCha8([32]byte{9}), Region: "us-west-2", AccountID: "152324983118",
	})
	srv := httptest.NewServer(NewHandler(testOptions(s, "us-west-2")))
	defer srv.Close()
	home := t.TempDir()
	run := func(args ...string) (map[string]any, string, error) {
		cmd := exec.Command(awsBin, append([]string{"emr-containers", "--endpoint-url", srv.URL, "--output", "json"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_DEFAULT_REGION=us-west-2",
			"AWS_CONFIG_FILE="+filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, stderr.String(), err
		}
		var v map[string]any
		if len(out) > 0 {
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("aws %v printed %q: %v", args, out, err)
			}
		}
		return v, stderr.String(), nil
	}

	vc, stderr, err := run("create-virtual-cluster", "--name", "emr-jobs", "--container-provider",
		`{"id": "prod-eks", "type": "EKS", "info": {"eksInfo": {"namespace": "emr-jobs"}}}`)
	if err != nil {
		t.Fatalf("create-virtual-cluster: %v\n%s", err, stderr)
	}
	vcID, _ := vc["id"].(string)
	// The seed's pi.py example, as typed.
	job, stderr, err := run("start-job-run", "--virtual-cluster-id", vcID, "--name", "sample-job-name",
		"--execution-role-arn", "arn:aws:iam::152324983118:role/emr-eks-job-execution", "--release-label", "emr-6.3.0-latest",
		"--job-driver", `{"sparkSubmitJobDriver": {"entryPoint": "local:///usr/lib/spark/examples/src/main/python/pi.py",
		  "sparkSubmitParameters": "--conf spark.executor.instances=2 --conf spark.executor.memory=2G --conf spark.executor.cores=2 --conf spark.driver.cores=1"}}`)
	if err != nil {
		t.Fatalf("start-job-run: %v\n%s", err, stderr)
	}
	jobID, _ := job["id"].(string)
	desc, stderr, err := run("describe-job-run", "--virtual-cluster-id", vcID, "--id", jobID)
	if err != nil {
		t.Fatalf("describe-job-run: %v\n%s", err, stderr)
	}
	if state := desc["jobRun"].(map[string]any)["state"]; state != "PENDING" {
		t.Errorf("state = %v, want PENDING (no controller runs here)", state)
	}
	_, stderr, err = run("describe-job-run", "--virtual-cluster-id", vcID, "--id", "0000000000000000000")
	if err == nil || !strings.Contains(stderr, "ResourceNotFoundException") {
		t.Errorf("unknown job run: err %v, stderr %q; want ResourceNotFoundException", err, stderr)
	}
}
