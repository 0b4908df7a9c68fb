package submit

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/submit/podtemplate/s3fake"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// submittedAt is when the re:Invent session ran its demo.
var submittedAt = time.Date(2021, 11, 30, 10, 0, 0, 0, time.UTC)

func newTestSubmitter(c client.Client) *Submitter {
	return New(Options{
		Client:    c,
		Clock:     clocktesting.NewFakePassiveClock(submittedAt),
		Random:    rand.NewChaCha8([32]byte{1}),
		Region:    "us-west-2",
		AccountID: "152324983118",
	})
}

// piFlags is the seed's `aws emr-containers start-job-run` example, flag for flag.
var piFlags = RequestFlags{
	VirtualClusterID: "awlrqupqxuy81jws3c0q2ik81",
	Name:             "sample-job-name",
	ExecutionRoleARN: "arn:aws:iam::152324983118:role/emr-eks-job-execution",
	ReleaseLabel:     "emr-6.3.0-latest",
	ClientToken:      "pi-1",
	JobDriver: `{
    "sparkSubmitJobDriver": {
      "entryPoint": "local:///usr/lib/spark/examples/src/main/python/pi.py",
      "sparkSubmitParameters": "--conf spark.executor.instances=2 --conf spark.executor.memory=2G --conf spark.executor.cores=2 --conf spark.driver.cores=1"
    }
  }`,
}

// demoS3 serves the NY taxi demo's pod templates where its requests name them, s3://my-bucket/emr-eks-demo/.
func demoS3(t *testing.T) *s3fake.Server {
	t.Helper()
	objects := map[string]string{}
	for _, name := range []string{"driver-pod-template.yml", "executor-pod-template.yml"} {
		data, err := os.ReadFile(filepath.Join("testdata", "pod-templates", name))
		if err != nil {
			t.Fatal(err)
		}
		objects["my-bucket/emr-eks-demo/"+name] = string(data)
	}
	return s3fake.New(t, objects)
}

func TestDryRunGolden(t *testing.T) {
	cases := map[string]struct {
		request   string // testdata file; empty means the flags alone
		flags     RequestFlags
		namespace string
	}{
		"pi-py":             {flags: piFlags, namespace: "emr-jobs"},
		"ny-taxi-single-az": {request: "ny-taxi-single-az.json", namespace: "emr-jobs"},
		"ny-taxi-nvme":      {request: "ny-taxi-nvme.json", namespace: "emr-jobs"},
		"ny-taxi-spot":      {request: "ny-taxi-spot.json", namespace: "emr-jobs"},
		"ny-taxi-fargate":   {request: "ny-taxi-fargate.json", namespace: "emr-serverless"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := &StartJobRunRequest{}
			if tc.request != "" {
				f, err := os.Open(filepath.Join("testdata", tc.request))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if req, err = DecodeStartJobRun(f); err != nil {
					t.Fatalf("DecodeStartJobRun: %v", err)
				}
			}
			if err := tc.flags.Apply(req); err != nil {
				t.Fatalf("Apply flags: %v", err)
			}
			s := newTestSubmitter(nil)
			s.opts.PodTemplates.S3 = demoS3(t).Client("AKIASUBMITTER")
			plan, err := s.DryRun(req, tc.namespace)
			if err != nil {
				t.Fatalf("DryRun: %v", err)
			}
			var got bytes.Buffer
			for _, w := range plan.Warnings {
				got.WriteString("# warning: " + w + "\n")
			}
			out, err := plan.YAML()
			if err != nil {
				t.Fatal(err)
			}
			got.Write(out)
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("dry run differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}
