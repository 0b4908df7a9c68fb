package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestRunTests(t *testing.T) {
	cases := map[string]struct {
		opts TestOptions
		// wantFailed are the names of the tests that must fail; every other test must pass.
		wantFailed []string
		wantOut    []string // substrings of the report
		onlyRun    string   // every test reported has a name matching this
		// moreFailed: other tests than wantFailed may fail too (embedded tests that change as the bundle does).
		moreFailed bool
		wantErr    string
	}{
		"a replaced policy is held to the embedded tests too": {
			opts: TestOptions{PolicyDir: "testdata/replace", Verbose: true},
			wantOut: []string{
				"the policy dir replaces policies/bundle/sparkplace/placement/isolation.rego, policies/bundle/sparkplace/placement/isolation_test.rego",
				"testdata/replace/isolation_test.rego:5:", "data.sparkplace.placement_test.test_batch_nodes: PASS",
			},
			wantFailed: []string{"test_spot_driver_decision"},
			moreFailed: true,
		},
		"a failing test of the dir is counted": {
			opts:       TestOptions{PolicyDir: "testdata/failingtest"},
			wantFailed: []string{"test_drivers_on_spot_is_wrong"},
			wantOut:    []string{"testdata/failingtest/extra_test.rego:5:"},
		},
		"a dir that breaks embedded tests fails them": {
			opts:       TestOptions{PolicyDir: "testdata/breaksfargate"},
			wantFailed: []string{"test_fargate_decision"},
			moreFailed: true,
			wantOut:    []string{"policies/bundle/sparkplace/placement/fargate_test.rego:5:"},
		},
		"-v shows the failing expression and its variables": {
			opts:       TestOptions{PolicyDir: "testdata/failingtest", Verbose: true},
			wantFailed: []string{"test_drivers_on_spot_is_wrong"},
			wantOut: []string{
				"FAILURES",
				"testdata/failingtest/extra_test.rego:6:",
				`placement.node_selector["eks.amazonaws.com/capacityType"] == "SPOT"`,
				`"ON_DEMAND"`,
			},
		},
		"-r selects tests": {
			opts:    TestOptions{Run: `placement_test\.test_fargate_`, Verbose: true},
			onlyRun: `placement_test\.test_fargate_`,
			wantOut: []string{"test_fargate_decision: PASS"},
		},
		"--config: embedded tests keep the defaults, the dir's tests get the deployed config": {
			opts:    TestOptions{PolicyDir: "testdata/deployedconfig", ConfigFile: "testdata/karpenter.yaml", Verbose: true},
			wantOut: []string{"test_driver_on_karpenter_on_demand: PASS", "test_spot_driver_decision: PASS"},
		},
		"the dir's test fails without the deployed config": {
			opts:       TestOptions{PolicyDir: "testdata/deployedconfig"},
			wantFailed: []string{"test_driver_on_karpenter_on_demand"},
		},
		"a policy that does not compile": {
			opts:    TestOptions{PolicyDir: "testdata/broken"},
			wantErr: "zone.rego:7: rego_parse_error",
		},
		"a bad -r": {
			opts:    TestOptions{Run: "("},
			wantErr: "test filter",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var out strings.Builder
			rep, err := RunTests(context.Background(), tc.opts, &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("RunTests: %v", err)
			}
			for _, want := range tc.wantOut {
				if !strings.Contains(out.String(), want) {
					t.Errorf("report does not contain %q:\n%s", want, out.String())
				}
			}
			for _, failed := range tc.wantFailed {
				if !regexp.MustCompile(`(?m)^data\.sparkplace\.placement_test\.` + failed + `: FAIL`).MatchString(out.String()) {
					t.Errorf("report does not name %s as failed:\n%s", failed, out.String())
				}
			}
			if (rep.Failed != len(tc.wantFailed) && !tc.moreFailed) || rep.Errored != 0 || rep.Passed == 0 {
				t.Errorf("report %+v, want %d failed, none errored", rep, len(tc.wantFailed))
			}
			if tc.onlyRun != "" {
				for _, m := range regexp.MustCompile(`(?m)^(data\.\S+): (PASS|FAIL)`).FindAllStringSubmatch(out.String(), -1) {
					if !regexp.MustCompile(tc.onlyRun).MatchString(m[1]) {
						t.Errorf("%s ran; only tests matching %s should", m[1], tc.onlyRun)
					}
				}
			}
		})
	}
}

func TestRunTestsCoverage(t *testing.T) {
	coverage := func(t *testing.T, dir string) float64 {
		t.Helper()
		var out strings.Builder
		rep, err := RunTests(context.Background(), TestOptions{PolicyDir: dir, Coverage: true}, &out)
		if err != nil || !rep.OK() || rep.Coverage == nil {
			t.Fatalf("RunTests: %+v, %v\n%s", rep, err, out.String())
		}
		if strings.Contains(out.String(), "_test.rego") {
			t.Errorf("coverage lists test files:\n%s", out.String())
		}
		if dir != "" && !strings.Contains(out.String(), filepath.Join(dir, "extra.rego")+"  not covered: 4, 5, 6, 7, 8, 11, 12, 13, 14, 17, 18, 19, 22, 23, 24") {
			t.Errorf("coverage does not list the untested lines of %s:\n%s", dir, out.String())
		}
		return *rep.Coverage
	}
	bundle, untested := coverage(t, ""), coverage(t, "testdata/untested")
	if untested >= bundle {
		t.Errorf("coverage with an untested rule %.2f%%, want below the bundle's %.2f%%", untested, bundle)
	}
}

func TestRunTestsJSON(t *testing.T) {
	var out bytes.Buffer
	rep, err := RunTests(context.Background(), TestOptions{PolicyDir: "testdata/failingtest", Coverage: true, JSON: true}, &out)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Summary TestReport `json:"summary"`
		Tests   []struct {
			Name    string `json:"name"`
			Package string `json:"package"`
			Fail    bool   `json:"fail"`
		} `json:"tests"`
		Coverage struct {
			Coverage float64 `json:"coverage"`
		} `json:"coverage"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if got.Summary.Failed != 1 || got.Summary.Passed != rep.Passed || len(got.Tests) != rep.Passed+1 {
		t.Errorf("summary %+v with %d tests, want 1 failed of %d", got.Summary, len(got.Tests), rep.Passed+1)
	}
	if got.Coverage.Coverage <= 0 || got.Coverage.Coverage != *rep.Coverage {
		t.Errorf("coverage %v, want %v", got.Coverage.Coverage, *rep.Coverage)
	}
}
