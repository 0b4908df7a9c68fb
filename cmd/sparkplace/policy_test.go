package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// run executes the sparkplace command line and returns its exit code (as main would) and output.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	var ee *exitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &ee):
		return ee.code, out.String(), err.Error()
	default:
		return 1, out.String(), err.Error()
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// guardrailBreakingDir replaces nvme.rego with a copy whose init container asks for CAP_SYS_ADMIN.
func guardrailBreakingDir(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "policies", "bundle", "sparkplace", "placement", "nvme.rego"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(src), `"add": ["CHOWN"]`, `"add": ["CHOWN", "SYS_ADMIN"]`, 1)
	if broken == string(src) {
		t.Fatal(`nvme.rego no longer adds ["CHOWN"]; update this test`)
	}
	return filepath.Dir(writeFile(t, "nvme.rego", broken))
}

func TestPolicyEval(t *testing.T) {
	const testdata = "../../webhook/testdata"
	executor := filepath.Join(testdata, "pods", "spark-3.5-executor.yaml")
	cluster := filepath.Join(testdata, "cluster.yaml")
	withProfile := func(t *testing.T, profile string) string {
		data, err := os.ReadFile(executor)
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, "pod.yaml", strings.Replace(string(data), "    spark-role: executor\n", "    spark-role: executor\n    sparkplace.io/profile: "+profile+"\n", 1))
	}
	cases := map[string]struct {
		args       func(t *testing.T) []string
		wantCode   int
		wantOut    string // regexp on stdout
		wantErrMsg string // regexp on the error
	}{
		"executor placed in its driver's zone": {
			args:     func(*testing.T) []string { return []string{"--pod", executor, "--objects", cluster} },
			wantCode: 0,
			wantOut:  `(?s)us-east-1b.*eks.amazonaws.com/capacityType: SPOT`,
		},
		"explain names the rules": {
			args:     func(*testing.T) []string { return []string{"--pod", executor, "--objects", cluster, "-o", "explain"} },
			wantCode: 0,
			wantOut:  `(?s)driver:    pi-5c0f4a93b1d2e7f8-driver on node ip-10-0-42-17.ec2.internal in zone us-east-1b.*zone.executor-follows-driver`,
		},
		"explain shows the decision as every application shares it, the pod its own application": {
			args:     func(*testing.T) []string { return []string{"--pod", executor, "--objects", cluster, "-o", "explain"} },
			wantCode: 0,
			wantOut:  `(?s)decision:\n.*  topologySpreadConstraints:\n  - labelSelector:\n      matchLabels:\n        spark-role: executor\n    matchLabelKeys:\n    - spark-app-selector\n`,
		},
		"the placed pod's spread selects its own application's executors": {
			args:     func(*testing.T) []string { return []string{"--pod", executor, "--objects", cluster} },
			wantCode: 0,
			wantOut:  `(?s)topologySpreadConstraints:\n  - labelSelector:\n      matchLabels:\n        spark-app-selector: spark-9f2c4e6a8b0d4f1e3a5c7e9b1d3f5a7c\n        spark-role: executor\n    maxSkew: 1\n`,
		},
		"OPA's evaluator alone places it the same": {
			args: func(*testing.T) []string {
				return []string{"--pod", executor, "--objects", cluster, "--policy-evaluator", "topdown"}
			},
			wantCode: 0,
			wantOut:  `(?s)us-east-1b.*eks.amazonaws.com/capacityType: SPOT`,
		},
		"an unknown evaluator": {
			args:       func(*testing.T) []string { return []string{"--pod", executor, "--policy-evaluator", "wasm"} },
			wantCode:   exitBadInput,
			wantErrMsg: `policy evaluator "wasm": want plan or topdown`,
		},
		"a custom policy with its own data file and config section": {
			args: func(t *testing.T) []string {
				data, err := os.ReadFile(filepath.Join(testdata, "pods", "spark-3.5-driver.yaml"))
				if err != nil {
					t.Fatal(err)
				}
				pod := writeFile(t, "pod.yaml", strings.Replace(string(data), "namespace: spark-jobs", "namespace: etl", 1))
				return []string{"--pod", pod, "--policy-dir", "../../policies/testdata/custom", "--config", "../../policies/testdata/custom-config.yaml",
					"--guardrails", "../../policies/testdata/custom-guardrails.yaml", "-o", "explain"}
			},
			wantCode: 0,
			wantOut:  `(?s)custom.team-label.*example.com/cost-center: cc-42\n *example.com/team: data-platform`,
		},
		"input output is the policy input": {
			args:     func(*testing.T) []string { return []string{"--pod", executor, "--objects", cluster, "-o", "input"} },
			wantCode: 0,
			wantOut:  `(?s)^\{\n  "operation": "CREATE",\n  "role": "executor",.*"zone": "us-east-1b".*"pod": \{`,
		},
		"input output of a denied pod, with the denial's exit code": {
			args:     func(t *testing.T) []string { return []string{"--pod", withProfile(t, "gpu"), "-o", "input"} },
			wantCode: exitDenied,
			wantOut:  `"sparkplace.io/profile": "gpu"`,
		},
		"patch output": {
			args:     func(*testing.T) []string { return []string{"--pod", executor, "-o", "patch"} },
			wantCode: 0,
			wantOut:  `"path": "/spec/affinity"`,
		},
		"missing pod file": {
			args:       func(t *testing.T) []string { return []string{"--pod", filepath.Join(t.TempDir(), "missing.yaml")} },
			wantCode:   exitBadInput,
			wantErrMsg: `no such file`,
		},
		"unknown profile is denied": {
			args:       func(t *testing.T) []string { return []string{"--pod", withProfile(t, "gpu")} },
			wantCode:   exitDenied,
			wantErrMsg: `denied: .*gpu`,
		},
		"malformed YAML": {
			args: func(t *testing.T) []string {
				return []string{"--pod", writeFile(t, "pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: [name: x\n")}
			},
			wantCode:   exitBadInput,
			wantErrMsg: `bad input: .*pod.yaml`,
		},
		"malformed JSON": {
			args: func(t *testing.T) []string {
				return []string{"--pod", writeFile(t, "pod.json", `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": }`)}
			},
			wantCode:   exitBadInput,
			wantErrMsg: `bad input: .*pod.json`,
		},
		"not a pod": {
			args: func(t *testing.T) []string {
				return []string{"--pod", writeFile(t, "deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n")}
			},
			wantCode:   exitBadInput,
			wantErrMsg: `is a Deployment, not a Pod`,
		},
		"pod without Spark labels": {
			args: func(t *testing.T) []string {
				return []string{"--pod", writeFile(t, "nginx.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nginx\n  labels:\n    app: nginx\n")}
			},
			wantCode:   exitBadInput,
			wantErrMsg: `not a Spark pod: the spark-role label is neither driver nor executor`,
		},
		"objects with an unsupported kind": {
			args: func(t *testing.T) []string {
				return []string{"--pod", executor, "--objects", writeFile(t, "cluster.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")}
			},
			wantCode:   exitBadInput,
			wantErrMsg: `unsupported ConfigMap \(want Node, Pod, Namespace or DaemonSet\)`,
		},
		"policy with a syntax error": {
			args: func(*testing.T) []string {
				return []string{"--pod", executor, "--policy-dir", "../../policies/testdata/broken"}
			},
			wantCode:   exitBadInput,
			wantErrMsg: `zone\.rego:\d+: rego_parse_error`,
		},
		"policy whose decision breaks a guardrail": {
			args: func(t *testing.T) []string {
				return []string{"--pod", withProfile(t, "nvme"), "--policy-dir", guardrailBreakingDir(t)}
			},
			wantCode:   exitBadInput,
			wantErrMsg: `breaks a guardrail: .*capabilities.add: SYS_ADMIN is not allowed`,
		},
		"config with an unknown key": {
			args: func(t *testing.T) []string {
				return []string{"--pod", executor, "--config", writeFile(t, "c.yaml", "isolation:\n  enable: false\n")}
			},
			wantCode:   exitBadInput,
			wantErrMsg: `unknown key isolation.enable`,
		},
		"unknown output format": {
			args:       func(*testing.T) []string { return []string{"--pod", executor, "-o", "table"} },
			wantCode:   exitBadInput,
			wantErrMsg: `unknown output format "table"`,
		},
		"no pod": {
			args:       func(*testing.T) []string { return nil },
			wantCode:   exitBadInput,
			wantErrMsg: `--pod is required`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, out, errMsg := run(t, append([]string{"policy", "eval"}, tc.args(t)...)...)
			if code != tc.wantCode {
				t.Fatalf("exit code = %d, want %d; error: %s", code, tc.wantCode, errMsg)
			}
			if tc.wantOut != "" && !regexp.MustCompile(tc.wantOut).MatchString(out) {
				t.Errorf("output does not match %q:\n%s", tc.wantOut, out)
			}
			if tc.wantErrMsg != "" && !regexp.MustCompile(tc.wantErrMsg).MatchString(errMsg) {
				t.Errorf("error %q does not match %q", errMsg, tc.wantErrMsg)
			}
		})
	}
}

func TestPolicyTest(t *testing.T) {
	const testdata = "../../policies/testdata"
	cases := map[string]struct {
		args     []string
		wantCode int
		wantOut  string // regexp on stdout
		wantErr  string // regexp on the error
	}{
		"the embedded bundle passes": {
			wantCode: 0,
			wantOut:  `(?m)^\d+ passed, 0 failed, 0 errored, 0 skipped$`,
		},
		"a dir that breaks an embedded test fails and names it": {
			args:     []string{filepath.Join(testdata, "breaksfargate")},
			wantCode: exitTestsFailed,
			wantOut:  `(?m)^data\.sparkplace\.placement_test\.test_fargate_decision: FAIL`,
			wantErr:  `1 Rego test\(s\) failed`,
		},
		"coverage of the bundle meets 95%": {
			args:     []string{"--coverage", "--threshold", "95"},
			wantCode: 0,
			wantOut:  `(?m)^coverage: (9[5-9]|100)\.\d\d% of \d+ policy lines$`,
		},
		"coverage is reported per policy file": {
			args:     []string{"--coverage"},
			wantCode: 0,
			wantOut:  `(?m)^coverage: \d+\.\d\d% of \d+ policy lines\n +\d+\.\d\d%  policies/bundle/sparkplace/placement/capacity.rego$`,
		},
		// The bundle alone covers over 99%; the untested rules bring the total below 98%.
		"a dir with untested rules fails the 95% threshold": {
			args:     []string{filepath.Join(testdata, "untested"), "--threshold", "95"},
			wantCode: exitCoverageLow,
			wantOut:  `untested/extra.rego  not covered: 4,`,
			wantErr:  `coverage \d+\.\d\d% is below --threshold 95%`,
		},
		"--config runs the dir's tests against the deployed config": {
			args:     []string{filepath.Join(testdata, "deployedconfig"), "--config", filepath.Join(testdata, "karpenter.yaml"), "-v"},
			wantCode: 0,
			wantOut:  `test_driver_on_karpenter_on_demand: PASS`,
		},
		"a custom policy's tests with its data file and config section": {
			args:     []string{filepath.Join(testdata, "custom"), "--config", filepath.Join(testdata, "custom-config.yaml"), "-v", "--threshold", "95"},
			wantCode: 0,
			wantOut:  `(?s)test_team_from_the_policy_data: PASS.*100\.00%  \.\./\.\./policies/testdata/custom/team.rego`,
		},
		"-r and -v": {
			args:     []string{"-v", "-r", "test_fargate_decision"},
			wantCode: 0,
			wantOut:  `(?s)test_fargate_decision: PASS.*\n1 passed, 0 failed`,
		},
		"json": {
			args:     []string{"--format", "json", filepath.Join(testdata, "failingtest")},
			wantCode: exitTestsFailed,
			wantOut:  `(?s)^\{\n  "summary": \{\n    "passed": \d+,\n    "failed": 1,`,
		},
		"a policy that does not compile": {
			args:     []string{filepath.Join(testdata, "broken")},
			wantCode: exitBadInput,
			wantErr:  `zone.rego:7: rego_parse_error`,
		},
		"a bad threshold": {
			args:     []string{"--threshold", "120"},
			wantCode: exitBadInput,
			wantErr:  `--threshold 120: want a percentage`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, out, errMsg := run(t, append([]string{"policy", "test"}, tc.args...)...)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d (error %q)\n%s", code, tc.wantCode, errMsg, out)
			}
			if tc.wantOut != "" && !regexp.MustCompile(tc.wantOut).MatchString(out) {
				t.Errorf("output does not match %q:\n%s", tc.wantOut, out)
			}
			if tc.wantErr != "" && !regexp.MustCompile(tc.wantErr).MatchString(errMsg) {
				t.Errorf("error %q does not match %q", errMsg, tc.wantErr)
			}
		})
	}
}

// TestInputFixtureRecipe follows the README's recipe: the input `policy eval -o input` prints for a pod becomes
// a rule of a _test.rego file (JSON is Rego), and a test over it passes under `policy test`.
func TestInputFixtureRecipe(t *testing.T) {
	const testdata = "../../webhook/testdata"
	code, input, errMsg := run(t, "policy", "eval", "--pod", filepath.Join(testdata, "pods", "spark-3.5-executor.yaml"),
		"--objects", filepath.Join(testdata, "cluster.yaml"), "-o", "input")
	if code != 0 {
		t.Fatalf("policy eval -o input: exit %d: %s", code, errMsg)
	}
	test := "package sparkplace.placement_test\n\nimport data.sparkplace.placement\n\npi_executor := " + input +
		"\ntest_pi_executor_follows_its_driver if {\n\tplacement.decision.nodeAffinity[0].values == [\"us-east-1b\"] with input as pi_executor\n}\n"
	dir := filepath.Dir(writeFile(t, "pi_executor_test.rego", test))
	code, out, errMsg := run(t, "policy", "test", dir, "-r", "pi_executor", "-v")
	if code != 0 || !strings.Contains(out, "test_pi_executor_follows_its_driver: PASS") {
		t.Errorf("policy test over the fixture: exit %d (%s)\n%s", code, errMsg, out)
	}
}
