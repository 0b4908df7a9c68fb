package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/emrcontainers"
	"github.com/aws/aws-sdk-go-v2/service/emrcontainers/types"
	"github.com/aws/smithy-go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/e2e/framework"
	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
	"github.com/sparkplace/sparkplace/submit/api"
)

// apiKey is an access key the test puts in a credentials Secret.
type apiKey struct{ id, secret, user string }

// startAPI runs `sparkplace api` as the manifests run it: its own ServiceAccount's token, keys from Secrets.
func startAPI(ctx context.Context, t *testing.T, keys ...apiKey) string {
	t.Helper()
	return startAPIWith(ctx, t, apiRun{}, keys...)
}

// apiRun is what a test adds to the API's command line and environment.
type apiRun struct{ args, env []string }

// startAPIWith is startAPI with more flags and environment.
func startAPIWith(ctx context.Context, t *testing.T, run apiRun, keys ...apiKey) string {
	t.Helper()
	for _, k := range keys {
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "api-key-" + strings.ToLower(k.id), Namespace: jobsNamespace, Labels: map[string]string{api.LabelCredentials: "true"}},
			StringData: map[string]string{"accessKeyId": k.id, "secretAccessKey": k.secret, "username": k.user},
		}
		if _, err := cp.Client.CoreV1().Secrets(jobsNamespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ports, err := framework.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	bin := os.Getenv("SPARKPLACE_BIN")
	if bin == "" {
		bin = filepath.Join(cp.Dir, "sparkplace")
	}
	p, err := cp.StartProcess("sparkplace-api", bin, append([]string{"api",
		"--kubeconfig=" + serviceAccountKubeconfig(ctx, t, jobsNamespace, "sparkplace-api"),
		"--listen=" + addr, "--credentials-namespace=" + jobsNamespace, "--protected-namespace=" + jobsNamespace,
		"--region=us-east-1", "--account-id=152324983118",
	}, run.args...), run.env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("API log:\n%s", p.Tail(4000))
		}
		_ = p.Stop(5 * time.Second)
	})
	url := "http://" + addr
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(url + "/virtualclusters")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusForbidden {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("API not answering: %v\n%s", err, p.Tail(2000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func sdkFor(url string, k apiKey) *emrcontainers.Client {
	return emrcontainers.New(emrcontainers.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider(k.id, k.secret, ""),
	})
}

// awsEnv is the environment of an AWS client (the CLI, boto3) signing with key k and nothing else: no
// config or credentials file of the user running the tests.
func awsEnv(t *testing.T, k apiKey) []string {
	t.Helper()
	home := t.TempDir()
	return append(os.Environ(), "AWS_ACCESS_KEY_ID="+k.id, "AWS_SECRET_ACCESS_KEY="+k.secret,
		"AWS_CONFIG_FILE="+filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"))
}

// awsCLI runs the real `aws emr-containers` with key k; it returns the parsed output or the CLI's stderr.
func awsCLI(t *testing.T, url string, k apiKey, args ...string) (map[string]any, error) {
	t.Helper()
	cmd := exec.Command("aws", append([]string{"emr-containers", "--endpoint-url", url, "--region", "us-east-1", "--output", "json"}, args...)...)
	cmd.Env = awsEnv(t, k)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, stderr.String())
	}
	var v map[string]any
	if len(out) > 0 {
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("aws %v printed %q: %v", args, out, err)
		}
	}
	return v, nil
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestAPIAuthenticatesAndIsolatesTenants drives the API with the real AWS CLI (alice) and aws-sdk-go-v2
// (bob), each signing with its own key: the operations work within a tenant's virtual cluster, refused
// requests create nothing, and neither tenant reaches the other's runs.
func TestAPIAuthenticatesAndIsolatesTenants(t *testing.T) {
	requireJobs(t)
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatal("the AWS CLI is required for this test")
	}
	ctx := context.Background()
	alice := apiKey{"AKIAALICE0000000000", "alice-secret", "alice@example.com"}
	bob := apiKey{"AKIABOB00000000000", "bob-secret", "bob@example.com"}
	url := startAPI(ctx, t, alice, bob)
	nsA, nsB := tenantNamespace(t), tenantNamespace(t)
	bind(t, nsA, "sparkplace-job-submitter", alice.user)
	bind(t, nsB, "sparkplace-job-submitter", bob.user)
	admin := newSubmitter(adminClient(t))
	vcA, err := admin.CreateVirtualCluster(ctx, "team-a", nsA)
	if err != nil {
		t.Fatal(err)
	}
	vcB, err := admin.CreateVirtualCluster(ctx, "team-b", nsB)
	if err != nil {
		t.Fatal(err)
	}
	runsIn := func(ns string) int {
		var list v1alpha1.JobRunList
		if err := adminClient(t).List(ctx, &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		return len(list.Items)
	}
	const driver = `{"sparkSubmitJobDriver": {"entryPoint": "local:///usr/lib/spark/examples/src/main/python/pi.py", "sparkSubmitParameters": "--conf spark.executor.instances=2 --conf spark.executor.memory=2G --conf spark.executor.cores=2 --conf spark.driver.cores=1"}}`
	start := func(k apiKey, vcID string, extra ...string) (map[string]any, error) {
		return awsCLI(t, url, k, append([]string{"start-job-run", "--virtual-cluster-id", vcID, "--name", "pi",
			"--execution-role-arn", "arn:aws:iam::152324983118:role/emr-eks-job-execution", "--release-label", "emr-6.3.0-latest",
			"--job-driver", driver}, extra...)...)
	}

	// The AWS CLI, as alice: start, describe, list, cancel.
	job, err := start(alice, vcA.ID)
	if err != nil {
		t.Fatalf("start-job-run: %v", err)
	}
	jobID, _ := job["id"].(string)
	waitRunning(t, nsA, "spark-"+jobID+"-driver")
	desc, err := awsCLI(t, url, alice, "describe-job-run", "--virtual-cluster-id", vcA.ID, "--id", jobID)
	if err != nil {
		t.Fatal(err)
	}
	if run := desc["jobRun"].(map[string]any); run["state"] == "" || run["createdBy"] != "arn:aws:iam::152324983118:user/"+alice.user {
		t.Errorf("describe-job-run = %v, want a state and createdBy the IAM user ARN of %s", run, alice.user)
	}
	list, err := awsCLI(t, url, alice, "list-job-runs", "--virtual-cluster-id", vcA.ID)
	if err != nil || len(list["jobRuns"].([]any)) != 1 {
		t.Errorf("list-job-runs = %v, %v; want alice's run", list, err)
	}

	// aws-sdk-go-v2, as bob: its own virtual cluster works, alice's does not.
	sdkBob := sdkFor(url, bob)
	if _, err := sdkBob.StartJobRun(ctx, &emrcontainers.StartJobRunInput{
		VirtualClusterId: aws.String(vcB.ID), Name: aws.String("pi"), ClientToken: aws.String("bob-1"),
		ExecutionRoleArn: aws.String("arn:aws:iam::152324983118:role/emr-eks-job-execution"), ReleaseLabel: aws.String("emr-6.3.0-latest"),
		JobDriver: &types.JobDriver{SparkSubmitJobDriver: &types.SparkSubmitJobDriver{EntryPoint: aws.String("local:///usr/lib/spark/examples/src/main/python/pi.py")}},
	}); err != nil {
		t.Fatalf("bob StartJobRun in his virtual cluster: %v", err)
	}
	if _, err := sdkBob.ListJobRuns(ctx, &emrcontainers.ListJobRunsInput{VirtualClusterId: aws.String(vcA.ID)}); errorCode(err) != "AccessDeniedException" {
		t.Errorf("bob lists alice's runs: %v, want AccessDeniedException", err)
	}
	if _, err := sdkBob.DescribeJobRun(ctx, &emrcontainers.DescribeJobRunInput{VirtualClusterId: aws.String(vcA.ID), Id: aws.String(jobID)}); errorCode(err) != "AccessDeniedException" {
		t.Errorf("bob describes alice's run: %v, want AccessDeniedException", err)
	}
	if _, err := sdkBob.CancelJobRun(ctx, &emrcontainers.CancelJobRunInput{VirtualClusterId: aws.String(vcA.ID), Id: aws.String(jobID)}); errorCode(err) != "AccessDeniedException" {
		t.Errorf("bob cancels alice's run: %v, want AccessDeniedException", err)
	}
	vcs, err := sdkBob.ListVirtualClusters(ctx, &emrcontainers.ListVirtualClustersInput{})
	if err != nil || len(vcs.VirtualClusters) != 1 || aws.ToString(vcs.VirtualClusters[0].Id) != vcB.ID {
		t.Errorf("bob's ListVirtualClusters = %v, %v; want only %s", vcs, err, vcB.ID)
	}
	if _, err := sdkBob.CreateVirtualCluster(ctx, &emrcontainers.CreateVirtualClusterInput{Name: aws.String("sys"), ContainerProvider: &types.ContainerProvider{
		Id: aws.String("c"), Type: types.ContainerProviderTypeEks, Info: &types.ContainerInfoMemberEksInfo{Value: types.EksInfo{Namespace: aws.String("kube-system")}},
	}}); errorCode(err) != "ValidationException" || !strings.Contains(err.Error(), "system namespace") {
		t.Errorf("a virtual cluster on kube-system: %v, want a ValidationException", err)
	}

	// Refused requests: each answered in the service's shape, nothing created.
	before := runsIn(nsA)
	resp, err := http.Post(url+"/virtualclusters/"+vcA.ID+"/jobruns", "application/json", strings.NewReader(`{"name": "unsigned"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("x-amzn-errortype") != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned: %d %s, want 403 MissingAuthenticationTokenException", resp.StatusCode, resp.Header.Get("x-amzn-errortype"))
	}
	if _, err := start(apiKey{alice.id, "not-alice-secret", ""}, vcA.ID, "--client-token", "wrong-secret"); err == nil || !strings.Contains(err.Error(), "InvalidSignatureException") {
		t.Errorf("wrong secret: %v, want InvalidSignatureException", err)
	}
	// Signed correctly, 20 minutes ago.
	stale, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/virtualclusters/"+vcA.ID+"/jobruns", nil)
	if err != nil {
		t.Fatal(err)
	}
	emptySum := sha256.Sum256(nil)
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: alice.id, SecretAccessKey: alice.secret}, stale,
		hex.EncodeToString(emptySum[:]), "emr-containers", "us-east-1", time.Now().Add(-20*time.Minute)); err != nil {
		t.Fatal(err)
	}
	resp, err = http.DefaultClient.Do(stale)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || body.Type != "InvalidSignatureException" || !strings.Contains(body.Message, "Signature expired") {
		t.Errorf("a 20-minute-old signature: %d %+v, want 403 InvalidSignatureException: Signature expired", resp.StatusCode, body)
	}
	// Outside the virtual cluster's allow-lists: refused with the rule named.
	if _, err := start(alice, vcA.ID, "--configuration-overrides", `{"applicationConfiguration": [{"classification": "spark-defaults", "properties": {"spark.kubernetes.authenticate.driver.serviceAccountName": "clusterrole-aggregation-controller"}}]}`); err == nil || !strings.Contains(err.Error(), "allowedServiceAccounts") {
		t.Errorf("a foreign service account: %v, want a ValidationException naming allowedServiceAccounts", err)
	}
	if _, err := start(alice, vcA.ID, "--configuration-overrides", `{"applicationConfiguration": [{"classification": "spark-defaults", "properties": {"spark.kubernetes.container.image": "evil/spark:latest"}}]}`); err == nil || !strings.Contains(err.Error(), "allowedImages") {
		t.Errorf("a foreign image: %v, want a ValidationException naming allowedImages", err)
	}
	if after := runsIn(nsA); after != before {
		t.Errorf("refused requests changed the runs of %s: %d -> %d", nsA, before, after)
	}

	if _, err := awsCLI(t, url, alice, "cancel-job-run", "--virtual-cluster-id", vcA.ID, "--id", jobID); err != nil {
		t.Fatalf("cancel-job-run: %v", err)
	}
	waitJobRunState(t, admin, vcA.ID, jobID, "CANCELLED")
}
