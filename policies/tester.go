package policies

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestOptions select what RunTests runs and how it reports. The zero value runs the embedded bundle's tests
// with the default config and prints OPA's `opa test` report.
type TestOptions struct {
	// PolicyDir is added to the bundle as an Engine with that PolicyDir would serve it; the embedded tests run
	// too, so a policy in PolicyDir that breaks them fails the run.
	PolicyDir string
	// ConfigFile is merged over the config defaults, as the webhook's --config: tests run against the deployed
	// config instead of the defaults.
	ConfigFile string
	// Run is a regular expression; only tests whose package-qualified name (e.g.
	// data.sparkplace.placement_test.test_driver_on_demand) matches run. Empty runs all.
	Run string
	// Verbose lists every test, and for a failing one the expression that failed with its variables' values
	// (as `opa test -v --var-values`).
	Verbose bool
	// Coverage reports which policy lines (of the modules that are not tests) the tests evaluate.
	Coverage bool
	// JSON writes one JSON object ({summary, tests, coverage}) instead of text.
	JSON bool
}

// TestReport is the outcome of a RunTests run.
type TestReport struct {
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Errored int `json:"errored"`
	Skipped int `json:"skipped"`
	// Coverage is the percentage of policy lines covered, when TestOptions.Coverage.
	Coverage *float64 `json:"coverage,omitempty"`
	// Replaced are the embedded files the policy dir replaces.
	Replaced []string `json:"replaced,omitempty"`
}

// OK reports whether no test failed or errored.
func (r TestReport) OK() bool { return r.Failed == 0 && r.Errored == 0 }

// RunTests runs the Rego unit tests (test_* rules) of the bundle merged with opts.PolicyDir: the embedded
// *_test.rego and PolicyDir's, over the policies an Engine with the same PolicyDir and ConfigFile would serve.
// Tests see that config as data.sparkplace.config (override it per test with `with data.sparkplace.config as
// ...`) and PolicyDir's data. Every embedded test runs, against whatever PolicyDir adds or replaces; the report
// names the embedded files PolicyDir replaces (a replaced *_test.rego is the one way to drop embedded tests).
//
// The error is for tests that could not run (a policy that does not compile: *CompileError; an unreadable
// dir or config; a bad Run expression); failing tests are counted in the report, and the caller decides the
// exit code from TestReport.OK and Coverage.
func RunTests(ctx context.Context, opts TestOptions, w io.Writer) (TestReport, error) {
	var rep TestReport
	if _, err := regexp.Compile(opts.Run); err != nil {
		return rep, fmt.Errorf("test filter %q: %w", opts.Run, err)
	}
	src, err := loadSources(opts.PolicyDir, opts.ConfigFile)
	if err != nil {
		return rep, err
	}
	modules, err := src.parse(true)
	if err != nil {
		return rep, err
	}
	rep.Replaced = src.replaced
	var cov *cover.Cover
	if opts.Coverage {
		cov = cover.New()
	}
	var results []*tester.Result
	if opts.ConfigFile == "" {
		if results, err = runTests(ctx, opts, modules, src.data(), cov, nil); err != nil {
			return rep, err
		}
	} else {
		// The embedded tests are written for the config defaults: they run against those, over the merged
		// policies; the policy dir's tests run against the deployed config.
		defaults, err := loadSources(opts.PolicyDir, "")
		if err != nil {
			return rep, err
		}
		if results, err = runTests(ctx, opts, modules, defaults.data(), cov, source.embedded); err != nil {
			return rep, err
		}
		fromDir := func(s source) bool { return !s.embedded() }
		dirResults, err := runTests(ctx, opts, modules, src.data(), cov, fromDir)
		if err != nil {
			return rep, err
		}
		results = append(results, dirResults...)
	}
	for _, r := range results {
		switch {
		case r.Skip:
			rep.Skipped++
		case r.Error != nil:
			rep.Errored++
		case r.Fail:
			rep.Failed++
		default:
			rep.Passed++
		}
	}

	// Results arrive in any order; report them by file and line so runs are comparable.
	sort.SliceStable(results, func(i, j int) bool {
		a, b := results[i].Location, results[j].Location
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Row < b.Row
	})
	var coverage *cover.Report
	if cov != nil {
		policyModules := map[string]*ast.Module{}
		for _, f := range src.files {
			if !f.isTest() {
				policyModules[f.name] = modules[f.name]
			}
		}
		coverage = policyCoverage(cov.Report(policyModules), policyModules)
		rep.Coverage = &coverage.Coverage
	}

	if opts.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return rep, enc.Encode(struct {
			Summary  TestReport       `json:"summary"`
			Tests    []*tester.Result `json:"tests"`
			Coverage *cover.Report    `json:"coverage,omitempty"`
		}{rep, results, coverage})
	}
	if len(rep.Replaced) > 0 {
		fmt.Fprintf(w, "the policy dir replaces %s\n\n", strings.Join(rep.Replaced, ", "))
	}
	if opts.ConfigFile != "" {
		fmt.Fprintf(w, "config %s: the policy dir's tests run against it, the embedded tests against the defaults they are written for\n\n", opts.ConfigFile)
	}
	replay := make(chan *tester.Result, len(results))
	for _, r := range results {
		replay <- r
	}
	close(replay)
	err = tester.PrettyReporter{Output: w, Verbose: opts.Verbose, FailureLine: opts.Verbose, LocalVars: opts.Verbose}.Report(replay)
	if err != nil {
		return rep, err
	}
	if coverage != nil {
		writeCoverage(w, coverage)
	}
	// The closing line CI and people read.
	fmt.Fprintf(w, "%d passed, %d failed, %d errored, %d skipped\n", rep.Passed, rep.Failed, rep.Errored, rep.Skipped)
	return rep, nil
}

// runTests runs the test rules of modules against data; keep, when set, selects the results by the source
// file of their test.
func runTests(ctx context.Context, opts TestOptions, modules map[string]*ast.Module, data map[string]any, cov *cover.Cover, keep func(source) bool) ([]*tester.Result, error) {
	store := inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(false))
	txn, err := store.NewTransaction(ctx, storage.TransactionParams{})
	if err != nil {
		return nil, fmt.Errorf("opening policy store: %w", err)
	}
	defer store.Abort(ctx, txn)
	compiler, err := newCompiler()
	if err != nil {
		return nil, err
	}
	runner := tester.NewRunner().
		// print() in a test shows under the test's line, as with `opa test -v`.
		SetCompiler(compiler.WithEnablePrintStatements(true)).
		CapturePrintOutput(true).
		SetDefaultRegoVersion(ast.RegoV1).
		SetStore(store).
		SetModules(modules).
		SetTimeout(10 * time.Second).
		RaiseBuiltinErrors(true).
		EnableTracing(opts.Verbose).
		Filter(opts.Run)
	if cov != nil {
		runner = runner.SetCoverageQueryTracer(cov)
	}
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		var errs ast.Errors
		if errors.As(err, &errs) {
			return nil, &CompileError{Errors: errs}
		}
		return nil, fmt.Errorf("running policy tests: %w", err)
	}
	var results []*tester.Result
	for r := range ch {
		if keep == nil || r.Location == nil || keep(source{name: r.Location.File}) {
			results = append(results, r)
		}
	}
	return results, ctx.Err()
}

// policyCoverage keeps the policy files of a coverage report: the tests' own lines are not policy.
func policyCoverage(r cover.Report, policyModules map[string]*ast.Module) *cover.Report {
	out := &cover.Report{Files: map[string]*cover.FileReport{}}
	for f, fr := range r.Files {
		if _, ok := policyModules[f]; ok {
			out.Files[f] = fr
			out.CoveredLines += fr.CoveredLines
			out.NotCoveredLines += fr.NotCoveredLines
		}
	}
	if total := out.CoveredLines + out.NotCoveredLines; total > 0 {
		out.Coverage = 100 * float64(out.CoveredLines) / float64(total)
	}
	return out
}

// writeCoverage prints the coverage of each policy file and the lines no test evaluates.
func writeCoverage(w io.Writer, r *cover.Report) {
	files := make([]string, 0, len(r.Files))
	for f := range r.Files {
		files = append(files, f)
	}
	sort.Strings(files)
	fmt.Fprintf(w, "coverage: %.2f%% of %d policy lines\n", r.Coverage, r.CoveredLines+r.NotCoveredLines)
	for _, f := range files {
		fr := r.Files[f]
		var missed []string
		for _, rg := range fr.NotCovered {
			m := fmt.Sprint(rg.Start.Row)
			if rg.End.Row != rg.Start.Row {
				m += fmt.Sprintf("-%d", rg.End.Row)
			}
			if !slices.Contains(missed, m) { // a range can be reported once per kind
				missed = append(missed, m)
			}
		}
		line := fmt.Sprintf("  %6.2f%%  %s", fr.Coverage, f)
		if len(missed) > 0 {
			line += "  not covered: " + strings.Join(missed, ", ")
		}
		fmt.Fprintln(w, line)
	}
}
