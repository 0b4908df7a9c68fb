package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSubmitDryRunPodTemplates: `sparkplace submit --dry-run` reads a local pod template from
// --pod-template-dir (relative paths from it) and refuses paths outside it, with the bad-input exit code.
func TestSubmitDryRunPodTemplates(t *testing.T) {
	dir := t.TempDir()
	const template = "apiVersion: v1\nkind: Pod\nmetadata:\n  labels:\n    team: cli\nspec:\n  containers:\n  - name: spark-kubernetes-executor\n"
	if err := os.WriteFile(filepath.Join(dir, "exec.yaml"), []byte(template), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := writeFile(t, "exec.yaml", template)
	cases := map[string]struct {
		ref, wantOut, wantErr string
		wantCode              int
	}{
		"relative to the directory": {ref: "exec.yaml", wantOut: "podspec-configmap-key: |\n    apiVersion: v1"},
		"absolute inside":           {ref: filepath.Join(dir, "exec.yaml"), wantOut: "-driver-podspec-conf-map"},
		"outside the directory":     {ref: outside, wantCode: exitBadInput, wantErr: "outside the submitter's pod template directory"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := run(t, "submit", "--dry-run", "--namespace", "spark-jobs", "--pod-template-dir", dir,
				"--virtual-cluster-id", "awlrqupqxuy81jws3c0q2ik81", "--name", "pi", "--release-label", "spark-3.5.3",
				"--execution-role-arn", "arn:aws:iam::152324983118:role/emr-eks-job-execution", "--client-token", "t1",
				"--job-driver", `{"sparkSubmitJobDriver": {"entryPoint": "local:///opt/spark/examples/src/main/python/pi.py"}}`,
				"--configuration-overrides", `{"applicationConfiguration": [{"classification": "spark-defaults", "properties": {"spark.kubernetes.executor.podTemplateFile": "`+tc.ref+`"}}]}`)
			if code != tc.wantCode || !strings.Contains(out, tc.wantOut) || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d (want %d)\nstdout: %.400s\nstderr: %s\nwant stdout with %q, stderr with %q", code, tc.wantCode, out, errOut, tc.wantOut, tc.wantErr)
			}
		})
	}
}
