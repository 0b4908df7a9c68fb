// Command helmlint is `helm lint --strict` from Helm's Go SDK, so `make lint` needs no helm binary: it lints
// a chart with its default values and with each ci/*-values.yaml (the chart-testing convention), and fails on
// any warning or error.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: helmlint CHART_DIR...")
		os.Exit(2)
	}
	failed := false
	for _, dir := range os.Args[1:] {
		ok, err := lintChart(dir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "helmlint: %s: %v\n", dir, err)
			os.Exit(2)
		}
		failed = failed || !ok
	}
	if failed {
		os.Exit(1)
	}
}

// lintChart lints dir once per values set and prints every message; ok is false if any is a warning or worse.
func lintChart(dir string) (ok bool, err error) {
	sets, err := filepath.Glob(filepath.Join(dir, "ci", "*-values.yaml"))
	if err != nil {
		return false, err
	}
	ok = true
	for _, set := range append([]string{""}, sets...) {
		vals := map[string]any{}
		name := "default values"
		if set != "" {
			f, err := os.Open(set)
			if err != nil {
				return false, err
			}
			vals, err = loader.LoadValues(f)
			f.Close()
			if err != nil {
				return false, fmt.Errorf("%s: %w", set, err)
			}
			name = filepath.Base(set)
		}
		result := lint.RunAll(dir, vals, "sparkplace")
		for _, m := range result.Messages {
			fmt.Printf("%s (%s): %s\n", dir, name, m.Error())
			if m.Severity >= support.WarningSev {
				ok = false
			}
		}
		fmt.Printf("%s (%s): linted, %d messages\n", dir, name, len(result.Messages))
	}
	return ok, nil
}
