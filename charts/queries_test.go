package charts_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sparkplace/sparkplace/charts"
)

// queryVariants are the values whose monitoring objects differ: the defaults, and the values that change an
// alert expression (onPolicyError allow, failurePolicy Ignore, another timeout and release).
var queryVariants = map[string]map[string]any{
	"defaults": monitoringValues,
	"allow, Ignore, 10s": withValues(monitoringValues, map[string]any{
		"webhook": map[string]any{"onPolicyError": "allow", "failurePolicy": "Ignore", "timeoutSeconds": 10},
	}),
}

func withValues(base, extra map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// TestEveryQueryParses: every alert expression and every dashboard target parses with Prometheus' own
// parser, selects at least one sparkplace or API server metric, and every alert links its runbook.
func TestEveryQueryParses(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "manifests", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := runbookAnchors(string(readme))
	for name, vals := range queryVariants {
		t.Run(name, func(t *testing.T) {
			objs, err := charts.Render(charts.Options{Values: vals})
			if err != nil {
				t.Fatal(err)
			}
			qs, err := charts.Queries(objs)
			if err != nil {
				t.Fatal(err)
			}
			var alerts, panels int
			for _, q := range qs {
				e, err := charts.Parse(q.Expr)
				if err != nil {
					t.Errorf("%s: %q does not parse: %v", q.Source, q.Expr, err)
					continue
				}
				names := charts.MetricNames(e)
				if !slices.ContainsFunc(names, func(n string) bool {
					return strings.HasPrefix(n, "sparkplace_") || strings.HasPrefix(n, "apiserver_") || n == "up"
				}) && !strings.Contains(q.Expr, "vector(") {
					t.Errorf("%s: %q selects no sparkplace metric (%v)", q.Source, q.Expr, names)
				}
				if strings.HasPrefix(q.Source, "alert ") {
					alerts++
				} else {
					panels++
				}
			}
			if alerts == 0 || panels == 0 {
				t.Fatalf("%d alert and %d panel queries; the monitoring values render none", alerts, panels)
			}
			for _, a := range alertRules(t, objs) {
				url, _, _ := unstructured.NestedString(a, "annotations", "runbook_url")
				name := a["alert"].(string)
				if anchor, ok := strings.CutPrefix(url, "https://github.com/sparkplace/sparkplace/blob/main/manifests/README.md#"); !ok || !anchors[anchor] {
					t.Errorf("alert %s: runbook_url %q is no section of manifests/README.md", name, url)
				}
				if sev, _, _ := unstructured.NestedString(a, "labels", "severity"); sev != "critical" && sev != "warning" {
					t.Errorf("alert %s: severity %q, want critical or warning", name, sev)
				}
			}
		})
	}
}

// alertRules are the rules of the rendered PrometheusRule.
func alertRules(t *testing.T, objs []*unstructured.Unstructured) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, o := range objs {
		if o.GetKind() != "PrometheusRule" {
			continue
		}
		groups, _, _ := unstructured.NestedSlice(o.Object, "spec", "groups")
		for _, g := range groups {
			rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
			for _, r := range rules {
				out = append(out, r.(map[string]any))
			}
		}
	}
	return out
}

// runbookAnchors are the GitHub anchors of the README's headings.
func runbookAnchors(md string) map[string]bool {
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 -]`)
	for _, line := range strings.Split(md, "\n") {
		if title, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "#") {
			out[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(title), ""), " ", "-")] = true
		}
	}
	return out
}
