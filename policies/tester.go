package policies

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestSummary counts the outcomes of a RunTests run.
type TestSummary struct {
	Passed, Failed, Errored, Skipped int
}

// OK reports whether no test failed or errored.
func (s TestSummary) OK() bool { return s.Failed == 0 && s.Errored == 0 }

// RunTests runs the Rego unit tests (test_* rules) of the bundle and writes one line per test to w, then a
// summary line. With dir empty it runs the embedded bundle's own *_test.rego. With dir it runs the tests in
// dir's *_test.rego against the bundle as an Engine with PolicyDir dir would serve it (dir's files replacing
// embedded files of the same name); the embedded tests' input builders (driver_input, executor_input, ...
// in package sparkplace.placement_test) are available to them. Tests see the default config as
// data.sparkplace.config (override it per test with `with data.sparkplace.config as ...`).
//
// The error is for tests that could not run (a policy that does not compile: *CompileError); failing tests
// are counted in the summary, and the caller decides the exit code from TestSummary.OK.
func RunTests(ctx context.Context, dir string, w io.Writer) (TestSummary, error) {
	var sum TestSummary
	src, err := loadSources(dir, "")
	if err != nil {
		return sum, err
	}
	modules, err := src.parse(true)
	if err != nil {
		return sum, err
	}
	store := inmem.NewFromObjectWithOpts(
		map[string]any{"sparkplace": map[string]any{"config": src.config}},
		inmem.OptRoundTripOnWrite(false),
	)
	txn, err := store.NewTransaction(ctx, storage.TransactionParams{})
	if err != nil {
		return sum, fmt.Errorf("opening policy store: %w", err)
	}
	defer store.Abort(ctx, txn)

	compiler, err := newCompiler()
	if err != nil {
		return sum, err
	}
	ch, err := tester.NewRunner().
		// print() in a test shows under the test's line, as with `opa test -v`.
		SetCompiler(compiler.WithEnablePrintStatements(true)).
		CapturePrintOutput(true).
		SetDefaultRegoVersion(ast.RegoV1).
		SetStore(store).
		SetModules(modules).
		SetTimeout(10*time.Second).
		RaiseBuiltinErrors(true).
		RunTests(ctx, txn)
	if err != nil {
		var errs ast.Errors
		if errors.As(err, &errs) {
			return sum, &CompileError{Errors: errs}
		}
		return sum, fmt.Errorf("running policy tests: %w", err)
	}

	// Results arrive in any order; report them by file and line so runs are comparable.
	var results []*tester.Result
	for r := range ch {
		if dir == "" || isFrom(r, dir) {
			results = append(results, r)
		}
	}
	sort.Slice(results, func(i, j int) bool {
		a, b := results[i].Location, results[j].Location
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Row < b.Row
	})
	for _, r := range results {
		outcome := "PASS"
		switch {
		case r.Skip:
			outcome = "SKIP"
			sum.Skipped++
		case r.Error != nil:
			outcome = "ERROR"
			sum.Errored++
		case r.Fail:
			outcome = "FAIL"
			sum.Failed++
		default:
			sum.Passed++
		}
		fmt.Fprintf(w, "%-5s %s:%d %s (%s)\n", outcome, r.Location.File, r.Location.Row,
			strings.TrimPrefix(r.Package, "data.")+"."+r.Name, r.Duration.Round(time.Microsecond))
		if r.Error != nil {
			fmt.Fprintf(w, "      %v\n", r.Error)
		}
		if len(r.Output) > 0 {
			for _, line := range strings.Split(strings.TrimRight(string(r.Output), "\n"), "\n") {
				fmt.Fprintf(w, "      %s\n", line)
			}
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed, %d errored, %d skipped\n", sum.Passed, sum.Failed, sum.Errored, sum.Skipped)
	return sum, ctx.Err()
}

// isFrom reports whether a test result comes from a file in dir (rather than the embedded bundle).
func isFrom(r *tester.Result, dir string) bool {
	return r.Location != nil && filepath.Dir(r.Location.File) == filepath.Clean(dir)
}
