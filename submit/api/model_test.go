package api

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
	"github.com/sparkplace/sparkplace/submit"
)

// serviceModel reads the emr-containers service model the installed AWS CLI ships (botocore's).
func serviceModel(t *testing.T) map[string]any {
	t.Helper()
	out, err := exec.Command("python3", "-c", "import botocore, os; print(os.path.dirname(botocore.__file__))").Output()
	if err != nil {
		t.Skip("the AWS CLI (botocore) is not installed")
	}
	paths, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "data", "emr-containers", "*", "service-2.json*"))
	if len(paths) == 0 {
		t.Fatal("botocore has no emr-containers model")
	}
	f, err := os.Open(paths[len(paths)-1])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(f.Name(), ".gz") {
		if r, err = gzip.NewReader(f); err != nil {
			t.Fatal(err)
		}
	}
	var model map[string]any
	if err := json.NewDecoder(r).Decode(&model); err != nil {
		t.Fatal(err)
	}
	return model
}

// TestEveryModelOperationIsServed derives the operations and their declared errors from the service model:
// each is served (no UnknownOperationException), answers 200 or an error type it declares, carries a
// request id; managed endpoints and security configurations answer that they are not supported. Every
// operation is called on resources that exist and on ones that do not.
func TestEveryModelOperationIsServed(t *testing.T) {
	model := serviceModel(t)
	ctx := context.Background()
	c := fakeCluster(t, "analytics")
	s := submit.New(submit.Options{Client: c, Region: "us-east-1", AccountID: "152324983118"})
	vc, err := s.CreateVirtualCluster(ctx, "analytics", "analytics")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.StartJobRun(ctx, &submit.StartJobRunRequest{
		VirtualClusterID: vc.ID, Name: "pi", ExecutionRoleARN: "arn:aws:iam::152324983118:role/emr-job-role", ReleaseLabel: "spark-3.5.3",
		JobDriver: &submit.JobDriver{SparkSubmitJobDriver: &submit.SparkSubmitJobDriver{EntryPoint: "local:///opt/spark/examples/src/main/python/pi.py"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := s.CreateJobTemplate(ctx, &submit.CreateJobTemplateRequest{Name: "pi", ClientToken: "pi", JobTemplateData: submit.JobTemplateData{
		ExecutionRoleARN: "arn:aws:iam::152324983118:role/emr-job-role", ReleaseLabel: "spark-3.5.3",
		JobDriver: submit.JobDriver{SparkSubmitJobDriver: &submit.SparkSubmitJobDriver{EntryPoint: "local:///opt/spark/examples/src/main/python/pi.py"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	const unknown = "0000000000000000000"
	worlds := map[string]struct{ vc, run, template, arn string }{
		"existing": {vc.ID, sub.Response.ID, tpl.ID, sub.Response.ARN},
		"unknown":  {unknown + "000000", unknown, unknown, "arn:aws:emr-containers:us-east-1:152324983118:/virtualclusters/" + unknown},
	}
	opts := testOptions(s, "us-east-1")
	opts.Metrics = NewMetrics(prometheus.NewRegistry())
	h := NewHandler(opts)
	ops := model["operations"].(map[string]any)
	if len(ops) < 20 {
		t.Fatalf("the model has %d operations; is it emr-containers'?", len(ops))
	}
	for name, raw := range ops {
		op := raw.(map[string]any)
		for world, ids := range worlds {
			t.Run(name+"/"+world, func(t *testing.T) {
				httpDef := op["http"].(map[string]any)
				path, _, _ := strings.Cut(httpDef["requestUri"].(string), "?")
				path = strings.NewReplacer("{virtualClusterId}", ids.vc, "{virtualClusterIdentifier}", ids.vc, "{jobRunId}", ids.run,
					"{templateId}", ids.template, "{endpointId}", unknown, "{endpointIdentifier}", unknown, "{securityConfigurationId}", unknown,
					"{resourceArn}", url.PathEscape(ids.arn)).Replace(path)
				body := ""
				if m := httpDef["method"].(string); m == http.MethodPost || m == http.MethodPut {
					body = "{}"
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, signed(t, httpDef["method"].(string), path, body, "secret", "us-east-1", time.Now()))
				if rec.Header().Get("x-amzn-RequestId") == "" {
					t.Error("no x-amzn-RequestId")
				}
				if n := testutil.ToFloat64(opts.Metrics.requests.WithLabelValues(name, strconv.Itoa(rec.Code))); n == 0 {
					t.Errorf("sparkplace_api_requests_total{operation=%q,code=\"%d\"} not counted", name, rec.Code)
				}
				if rec.Code == http.StatusOK {
					return
				}
				var declared []string
				if errs, ok := op["errors"].([]any); ok {
					for _, e := range errs {
						declared = append(declared, e.(map[string]any)["shape"].(string))
					}
				}
				code := rec.Header().Get("x-amzn-errortype")
				if !slices.Contains(declared, code) {
					t.Fatalf("%s %s answered %d %s (%s), which the model does not declare for %s (%v)", httpDef["method"], path, rec.Code, code, rec.Body.String(), name, declared)
				}
				if strings.Contains(name, "ManagedEndpoint") || strings.Contains(name, "SecurityConfiguration") {
					if code != "ValidationException" || !strings.Contains(rec.Body.String(), "not supported") {
						t.Errorf("%s: %s, want a ValidationException saying it is not supported", name, rec.Body.String())
					}
				}
			})
		}
	}
}

// TestTimestampsAsTheModelSays: the model's Date shape is iso8601; every createdAt and finishedAt is written
// in one shape, UTC whole seconds, however precise the stored time.
func TestTimestampsAsTheModelSays(t *testing.T) {
	model := serviceModel(t)
	if f := model["shapes"].(map[string]any)["Date"].(map[string]any)["timestampFormat"]; f != "iso8601" {
		t.Fatalf("the model's Date is %v; this test and submit's wireTime assume iso8601", f)
	}
	at := time.Date(2026, 11, 30, 10, 4, 5, 123456789, time.FixedZone("CET", 3600))
	run := &v1alpha1.JobRun{ObjectMeta: metav1.ObjectMeta{Name: "r", CreationTimestamp: metav1.NewTime(at)}}
	run.Status.FinishedAt = &metav1.Time{Time: at.Add(90500 * time.Millisecond)}
	data, err := json.Marshal(submit.ViewJobRun(run, "us-east-1", "152324983118"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ CreatedAt, FinishedAt string }
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt != "2026-11-30T09:04:05Z" || got.FinishedAt != "2026-11-30T09:05:35Z" {
		t.Errorf("createdAt %q, finishedAt %q; want 2026-11-30T09:04:05Z and 2026-11-30T09:05:35Z", got.CreatedAt, got.FinishedAt)
	}
}
