package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
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
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
	"github.com/sparkplace/sparkplace/jobs/controller"
	"github.com/sparkplace/sparkplace/submit"
)

// newAPI serves the API over a fake cluster and returns an SDK client pointed at it, as a user would
// configure one (BaseEndpoint, any credentials).
func newAPI(t *testing.T) (*emrcontainers.Client, client.Client) {
	t.Helper()
	c := fakeCluster(t, "analytics")
	s := submit.New(submit.Options{
		Client: c, Clock: clocktesting.NewFakePassiveClock(time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)),
		Random: rand.NewChaCha8([32]byte{7}), Region: "eu-west-1", AccountID: "152324983118",
	})
	srv := httptest.NewServer(NewHandler(testOptions(s, "eu-west-1")))
	t.Cleanup(srv.Close)
	sdk := emrcontainers.New(emrcontainers.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:   srv.Client(),
	})
	return sdk, c
}

// createAnalytics creates the virtual cluster "analytics" on the namespace of that name, with provider
// prod-eks.
func createAnalytics(t *testing.T, sdk *emrcontainers.Client, tags map[string]string) *emrcontainers.CreateVirtualClusterOutput {
	t.Helper()
	vc, err := sdk.CreateVirtualCluster(context.Background(), &emrcontainers.CreateVirtualClusterInput{
		Name: aws.String("analytics"), Tags: tags,
		ContainerProvider: &types.ContainerProvider{Id: aws.String("prod-eks"), Type: types.ContainerProviderTypeEks,
			Info: &types.ContainerInfoMemberEksInfo{Value: types.EksInfo{Namespace: aws.String("analytics")}}},
	})
	if err != nil {
		t.Fatalf("CreateVirtualCluster: %v", err)
	}
	return vc
}

func TestSDKDrivesJobRuns(t *testing.T) {
	sdk, c := newAPI(t)
	ctx := context.Background()
	vc := createAnalytics(t, sdk, nil)
	start := &emrcontainers.StartJobRunInput{
		VirtualClusterId: vc.Id,
		Name:             aws.String("pi"),
		ClientToken:      aws.String("pi-2026-11-02"),
		ExecutionRoleArn: aws.String("arn:aws:iam::152324983118:role/emr-job-role"),
		ReleaseLabel:     aws.String("emr-7.6.0-latest"),
		JobDriver: &types.JobDriver{SparkSubmitJobDriver: &types.SparkSubmitJobDriver{
			EntryPoint:            aws.String("local:///usr/lib/spark/examples/src/main/python/pi.py"),
			SparkSubmitParameters: aws.String("--conf spark.executor.instances=2 --conf spark.executor.memory=2G"),
		}},
		ConfigurationOverrides: &types.ConfigurationOverrides{ApplicationConfiguration: []types.Configuration{{
			Classification: aws.String("spark-defaults"),
			Properties:     map[string]string{"spark.kubernetes.driver.label.sparkplace.io/profile": "on-demand"},
		}}},
	}
	out, err := sdk.StartJobRun(ctx, start)
	if err != nil {
		t.Fatalf("StartJobRun: %v", err)
	}
	if !strings.HasSuffix(aws.ToString(out.Arn), "/virtualclusters/"+aws.ToString(vc.Id)+"/jobruns/"+aws.ToString(out.Id)) {
		t.Errorf("arn %s does not name the job run", aws.ToString(out.Arn))
	}
	again, err := sdk.StartJobRun(ctx, start)
	if err != nil || aws.ToString(again.Id) != aws.ToString(out.Id) {
		t.Errorf("same clientToken: id %s, %v; want %s", aws.ToString(again.Id), err, aws.ToString(out.Id))
	}
	var runs v1alpha1.JobRunList
	if err := c.List(ctx, &runs, client.InNamespace("analytics")); err != nil || len(runs.Items) != 1 {
		t.Fatalf("JobRuns = %d, %v; want 1", len(runs.Items), err)
	}

	desc, err := sdk.DescribeJobRun(ctx, &emrcontainers.DescribeJobRunInput{VirtualClusterId: vc.Id, Id: out.Id})
	if err != nil {
		t.Fatalf("DescribeJobRun: %v", err)
	}
	if desc.JobRun.State != types.JobRunStatePending || aws.ToString(desc.JobRun.ReleaseLabel) != "emr-7.6.0-latest" || desc.JobRun.CreatedAt == nil {
		t.Errorf("job run = state %s, release %s, created %v", desc.JobRun.State, aws.ToString(desc.JobRun.ReleaseLabel), desc.JobRun.CreatedAt)
	}
	list, err := sdk.ListJobRuns(ctx, &emrcontainers.ListJobRunsInput{VirtualClusterId: vc.Id, States: []types.JobRunState{types.JobRunStatePending}})
	if err != nil || len(list.JobRuns) != 1 {
		t.Fatalf("ListJobRuns = %v, %v; want one", list, err)
	}
	if _, err := sdk.CancelJobRun(ctx, &emrcontainers.CancelJobRunInput{VirtualClusterId: vc.Id, Id: out.Id}); err != nil {
		t.Fatalf("CancelJobRun: %v", err)
	}
	desc, err = sdk.DescribeJobRun(ctx, &emrcontainers.DescribeJobRunInput{VirtualClusterId: vc.Id, Id: out.Id})
	if err != nil || desc.JobRun.State != types.JobRunStateCancelPending {
		t.Errorf("after cancel: %v, %v; want CANCEL_PENDING until the controller has deleted the driver", desc, err)
	}
	vcs, err := sdk.ListVirtualClusters(ctx, &emrcontainers.ListVirtualClustersInput{})
	if err != nil || len(vcs.VirtualClusters) != 1 || aws.ToString(vcs.VirtualClusters[0].Name) != "analytics" {
		t.Errorf("ListVirtualClusters = %v, %v", vcs, err)
	}
	for provider, want := range map[string]int{"prod-eks": 1, "other-eks": 0} {
		vcs, err := sdk.ListVirtualClusters(ctx, &emrcontainers.ListVirtualClustersInput{ContainerProviderId: aws.String(provider)})
		if err != nil || len(vcs.VirtualClusters) != want {
			t.Errorf("ListVirtualClusters(containerProviderId %s) = %v, %v; want %d", provider, vcs, err, want)
		}
	}
	var apiErr smithy.APIError
	if _, err := sdk.DeleteVirtualCluster(ctx, &emrcontainers.DeleteVirtualClusterInput{Id: vc.Id}); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" {
		t.Errorf("DeleteVirtualCluster with a run still active: %v, want a ValidationException", err)
	}
}

func TestSDKSeesEMRErrors(t *testing.T) {
	sdk, _ := newAPI(t)
	ctx := context.Background()
	vc := createAnalytics(t, sdk, nil)
	valid := func() *emrcontainers.StartJobRunInput {
		return &emrcontainers.StartJobRunInput{
			VirtualClusterId: vc.Id, Name: aws.String("etl"), ClientToken: aws.String("t"),
			ExecutionRoleArn: aws.String("arn:aws:iam::152324983118:role/emr-job-role"), ReleaseLabel: aws.String("spark-3.5.3"),
			JobDriver: &types.JobDriver{SparkSubmitJobDriver: &types.SparkSubmitJobDriver{EntryPoint: aws.String("s3://b/etl.jar"), SparkSubmitParameters: aws.String("--class Etl")}},
		}
	}
	cases := map[string]struct {
		call     func() error
		wantCode string
		wantMsg  string
	}{
		"unknown virtual cluster": {
			call: func() error {
				in := valid()
				in.VirtualClusterId = aws.String("0000000000000000000000000")
				_, err := sdk.StartJobRun(ctx, in)
				return err
			},
			wantCode: "ResourceNotFoundException", wantMsg: "virtual cluster 0000000000000000000000000 not found",
		},
		"--conf without =": {
			call: func() error {
				in := valid()
				in.JobDriver.SparkSubmitJobDriver.SparkSubmitParameters = aws.String("--class Etl --conf spark.executor.instances")
				_, err := sdk.StartJobRun(ctx, in)
				return err
			},
			wantCode: "ValidationException", wantMsg: "is not key=value",
		},
		"unknown job run": {
			call: func() error {
				_, err := sdk.DescribeJobRun(ctx, &emrcontainers.DescribeJobRunInput{VirtualClusterId: vc.Id, Id: aws.String("0000000000000000000")})
				return err
			},
			wantCode: "ResourceNotFoundException", wantMsg: "job run 0000000000000000000 not found",
		},
		"cancelling an unknown run: the model declares no ResourceNotFoundException": {
			call: func() error {
				_, err := sdk.CancelJobRun(ctx, &emrcontainers.CancelJobRunInput{VirtualClusterId: vc.Id, Id: aws.String("0000000000000000000")})
				return err
			},
			wantCode: "ValidationException", wantMsg: "job run 0000000000000000000 not found",
		},
		"listing runs of an unknown virtual cluster": {
			call: func() error {
				_, err := sdk.ListJobRuns(ctx, &emrcontainers.ListJobRunsInput{VirtualClusterId: aws.String("0000000000000000000000000")})
				return err
			},
			wantCode: "ValidationException", wantMsg: "not found",
		},
		"an unknown state": {
			call: func() error {
				_, err := sdk.ListJobRuns(ctx, &emrcontainers.ListJobRunsInput{VirtualClusterId: vc.Id, States: []types.JobRunState{"FINISHED"}})
				return err
			},
			wantCode: "ValidationException", wantMsg: `"FINISHED" is not one of`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.call()
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want an API error", err)
			}
			if apiErr.ErrorCode() != tc.wantCode || !strings.Contains(apiErr.ErrorMessage(), tc.wantMsg) {
				t.Errorf("got %s %q, want %s containing %q", apiErr.ErrorCode(), apiErr.ErrorMessage(), tc.wantCode, tc.wantMsg)
			}
			var re interface{ ServiceRequestID() string }
			if !errors.As(err, &re) || re.ServiceRequestID() == "" {
				t.Errorf("no x-amzn-RequestId reached the SDK: %v", err)
			}
		})
	}
}

// testKey is the access key the tests sign with.
const testKey = "AKIDEXAMPLE"

// testOptions serve svc to requests signed for region with testKey and the secret "secret".
func testOptions(svc Service, region string) Options {
	return Options{
		Keys:       StaticKeys{testKey: {SecretAccessKey: "secret", Caller: Caller{User: "tester@example.com"}}},
		ServiceFor: func(Caller) (Service, error) { return svc, nil },
		Region:     region,
	}
}

// signed is a request signed as the SDKs sign it.
func signed(t *testing.T, method, path, body, secret, region string, at time.Time) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	sum := sha256.Sum256([]byte(body))
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: secret}, r, hex.EncodeToString(sum[:]), "emr-containers", region, at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fakeCluster is a fake API server holding namespaces the platform team opened to virtual clusters.
func fakeCluster(t *testing.T, namespaces ...string) client.WithWatch {
	t.Helper()
	s, err := controller.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(s).WithStatusSubresource(&v1alpha1.JobRun{}, &v1alpha1.VirtualCluster{})
	for _, ns := range namespaces {
		b = b.WithObjects(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{v1alpha1.LabelVirtualClustersAllowed: "true"}}})
	}
	return b.Build()
}

func TestInvalidJSONBody(t *testing.T) {
	h := NewHandler(testOptions(submit.New(submit.Options{Client: fakeCluster(t)}), "us-east-1"))
	body := `{"name": "nyTaxiAnalytics", "configurationOverrides": {"applicationConfiguration": [{"classification": "spark-defaults", "properties": ["spark.a": "b"]}]}}`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, signed(t, http.MethodPost, "/virtualclusters/abc/jobruns", body, "secret", "us-east-1", time.Now()))
	if rec.Code != http.StatusBadRequest || rec.Header().Get("x-amzn-errortype") != "ValidationException" ||
		!strings.Contains(rec.Body.String(), `"__type":"ValidationException"`) || !strings.Contains(rec.Body.String(), "line 1, column 146") {
		t.Errorf("got %d %v %s", rec.Code, rec.Header(), rec.Body.String())
	}
}

// TestSDKJobTemplates: templates are created, listed, described and deleted, and StartJobRun fills one with
// jobTemplateParameters; a parameter of the wrong type is refused naming it.
func TestSDKJobTemplates(t *testing.T) {
	sdk, c := newAPI(t)
	ctx := context.Background()
	vc := createAnalytics(t, sdk, nil)
	tmpl, err := sdk.CreateJobTemplate(ctx, &emrcontainers.CreateJobTemplateInput{
		Name: aws.String("pi"), ClientToken: aws.String("pi-template"),
		JobTemplateData: &types.JobTemplateData{
			ExecutionRoleArn: aws.String("arn:aws:iam::152324983118:role/emr-job-role"), ReleaseLabel: aws.String("emr-7.6.0-latest"),
			JobDriver: &types.JobDriver{SparkSubmitJobDriver: &types.SparkSubmitJobDriver{
				EntryPoint:            aws.String("local:///usr/lib/spark/examples/src/main/python/pi.py"),
				SparkSubmitParameters: aws.String("--conf spark.executor.instances=${Executors}"),
			}},
			ParameterConfiguration: map[string]types.TemplateParameterConfiguration{"Executors": {Type: types.TemplateParameterDataTypeNumber}},
		},
	})
	if err != nil {
		t.Fatalf("CreateJobTemplate: %v", err)
	}
	desc, err := sdk.DescribeJobTemplate(ctx, &emrcontainers.DescribeJobTemplateInput{Id: tmpl.Id})
	if err != nil || aws.ToString(desc.JobTemplate.Name) != "pi" {
		t.Errorf("DescribeJobTemplate = %v, %v", desc, err)
	}
	list, err := sdk.ListJobTemplates(ctx, &emrcontainers.ListJobTemplatesInput{})
	if err != nil || len(list.Templates) != 1 {
		t.Errorf("ListJobTemplates = %v, %v", list, err)
	}
	run, err := sdk.StartJobRun(ctx, &emrcontainers.StartJobRunInput{
		VirtualClusterId: vc.Id, Name: aws.String("pi"), ClientToken: aws.String("from-template"),
		JobTemplateId: tmpl.Id, JobTemplateParameters: map[string]string{"Executors": "4"},
	})
	if err != nil {
		t.Fatalf("StartJobRun from a template: %v", err)
	}
	var jr v1alpha1.JobRun
	if err := c.Get(ctx, client.ObjectKey{Namespace: "analytics", Name: aws.ToString(run.Id)}, &jr); err != nil ||
		!strings.HasSuffix(jr.Spec.Request.JobDriver.SparkSubmitJobDriver.SparkSubmitParameters, "instances=4") {
		t.Errorf("the run's request = %+v, %v", jr.Spec.Request.JobDriver, err)
	}
	_, err = sdk.StartJobRun(ctx, &emrcontainers.StartJobRunInput{
		VirtualClusterId: vc.Id, Name: aws.String("pi"), ClientToken: aws.String("bad-param"),
		JobTemplateId: tmpl.Id, JobTemplateParameters: map[string]string{"Executors": "four"},
	})
	if errorCode(err) != "ValidationException" || !strings.Contains(err.Error(), "Executors") {
		t.Errorf("a NUMBER parameter given a word: %v, want a ValidationException naming it", err)
	}
	if _, err := sdk.DeleteJobTemplate(ctx, &emrcontainers.DeleteJobTemplateInput{Id: tmpl.Id}); err != nil {
		t.Fatalf("DeleteJobTemplate: %v", err)
	}
	if _, err := sdk.DescribeJobTemplate(ctx, &emrcontainers.DescribeJobTemplateInput{Id: tmpl.Id}); errorCode(err) != "ResourceNotFoundException" {
		t.Errorf("a deleted template: %v, want ResourceNotFoundException", err)
	}
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestSDKTags: tags are set, listed and removed on a virtual cluster and a job run through their ARNs.
func TestSDKTags(t *testing.T) {
	sdk, _ := newAPI(t)
	ctx := context.Background()
	vc := createAnalytics(t, sdk, map[string]string{"team": "sales"})
	run, err := sdk.StartJobRun(ctx, &emrcontainers.StartJobRunInput{
		VirtualClusterId: vc.Id, Name: aws.String("pi"), ClientToken: aws.String("tags"), Tags: map[string]string{"cost-center": "42"},
		ExecutionRoleArn: aws.String("arn:aws:iam::152324983118:role/emr-job-role"), ReleaseLabel: aws.String("emr-7.6.0-latest"),
		JobDriver: &types.JobDriver{SparkSubmitJobDriver: &types.SparkSubmitJobDriver{EntryPoint: aws.String("local:///usr/lib/spark/examples/src/main/python/pi.py")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for arn, want := range map[string]map[string]string{
		aws.ToString(vc.Arn):  {"team": "sales", "env": "prod"},
		aws.ToString(run.Arn): {"cost-center": "42", "env": "prod"},
	} {
		if _, err := sdk.TagResource(ctx, &emrcontainers.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{"env": "prod"}}); err != nil {
			t.Fatalf("TagResource %s: %v", arn, err)
		}
		got, err := sdk.ListTagsForResource(ctx, &emrcontainers.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		if err != nil || !maps.Equal(got.Tags, want) {
			t.Errorf("ListTagsForResource %s = %v, %v; want %v", arn, got, err, want)
		}
		if _, err := sdk.UntagResource(ctx, &emrcontainers.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"env"}}); err != nil {
			t.Fatalf("UntagResource %s: %v", arn, err)
		}
		if got, err := sdk.ListTagsForResource(ctx, &emrcontainers.ListTagsForResourceInput{ResourceArn: aws.String(arn)}); err != nil || got.Tags["env"] != "" {
			t.Errorf("after UntagResource %s: %v, %v", arn, got, err)
		}
	}
}
