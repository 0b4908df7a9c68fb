package submit

import (
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
)

func TestJobTemplates(t *testing.T) {
	c, s, vc := newCluster(t)
	ctx := context.Background()
	def := "2"
	tmpl, err := s.CreateJobTemplate(ctx, &CreateJobTemplateRequest{
		Name: "nightly-rollup", ClientToken: "t1",
		JobTemplateData: JobTemplateData{
			ExecutionRoleARN: "arn:aws:iam::152324983118:role/spark-jobs", ReleaseLabel: "spark-3.5.3",
			JobDriver: JobDriver{SparkSubmitJobDriver: &SparkSubmitJobDriver{
				EntryPoint:            "s3://acme-jobs/sales/sales-rollup-assembly-1.4.0.jar",
				EntryPointArguments:   []string{"--date", "${Date}"},
				SparkSubmitParameters: "--class com.acme.sales.Rollup --conf spark.executor.instances=${Executors}",
			}},
			ParameterConfiguration: map[string]v1alpha1.TemplateParameterConfiguration{
				"Date":      {Type: v1alpha1.TemplateParameterString},
				"Executors": {Type: v1alpha1.TemplateParameterNumber, DefaultValue: &def},
			},
			JobTags: map[string]string{"team": "sales"},
		},
	})
	if err != nil {
		t.Fatalf("CreateJobTemplate: %v", err)
	}
	if again, err := s.CreateJobTemplate(ctx, &CreateJobTemplateRequest{Name: "nightly-rollup", ClientToken: "t1", JobTemplateData: tmpl.JobTemplateData}); err != nil || again.ID != tmpl.ID {
		t.Errorf("retried create = %v, %v; want %s", again, err, tmpl.ID)
	}
	start := func(params map[string]string) (*Submission, error) {
		return s.StartJobRun(ctx, &StartJobRunRequest{Name: "rollup", VirtualClusterID: vc.ID, ClientToken: strings.Join(sortedKeys(params), "-") + "x",
			JobTemplateID: tmpl.ID, JobTemplateParameters: params})
	}
	sub, err := start(map[string]string{"Date": `2026-11-02"`})
	if err != nil {
		t.Fatalf("StartJobRun from the template: %v", err)
	}
	var run v1alpha1.JobRun
	if err := c.Get(ctx, client.ObjectKey{Namespace: "sales", Name: sub.Response.ID}, &run); err != nil {
		t.Fatal(err)
	}
	d := run.Spec.Request.JobDriver.SparkSubmitJobDriver
	if d.EntryPointArguments[1] != `2026-11-02"` || !strings.HasSuffix(d.SparkSubmitParameters, "spark.executor.instances=2") || run.Spec.Request.Tags["team"] != "sales" {
		t.Errorf("resolved request = %+v, tags %v", d, run.Spec.Request.Tags)
	}
	for params, want := range map[string]struct {
		params map[string]string
		msg    string
	}{
		"missing": {map[string]string{}, "jobTemplateParameters.Date is required"},
		"number":  {map[string]string{"Date": "d", "Executors": "many"}, `jobTemplateParameters.Executors="many": job template ` + tmpl.ID + " declares it a NUMBER"},
		"unknown": {map[string]string{"Date": "d", "Dat": "x"}, "jobTemplateParameters.Dat: job template " + tmpl.ID + " declares no such parameter"},
	} {
		if _, err := start(want.params); !IsValidation(err) || !strings.Contains(err.Error(), want.msg) {
			t.Errorf("%s: err = %v, want %q", params, err, want.msg)
		}
	}
	_, err = s.CreateJobTemplate(ctx, &CreateJobTemplateRequest{Name: "broken", ClientToken: "t2", JobTemplateData: JobTemplateData{
		ExecutionRoleARN: "${Role}", ReleaseLabel: "spark-3.5.3", JobDriver: tmpl.JobTemplateData.JobDriver,
		ParameterConfiguration: tmpl.JobTemplateData.ParameterConfiguration,
	}})
	if !IsValidation(err) || !strings.Contains(err.Error(), "${Role}") {
		t.Errorf("a template using an undeclared parameter: %v", err)
	}
	if err := s.DeleteJobTemplate(ctx, tmpl.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DescribeJobTemplate(ctx, tmpl.ID); !IsNotFound(err) {
		t.Errorf("after delete: %v, want not found", err)
	}
	if r, err := s.DescribeJobRun(ctx, vc.ID, sub.Response.ID); err != nil || r.JobDriver == nil {
		t.Errorf("the run started from a deleted template: %v, %v", r, err)
	}
}
