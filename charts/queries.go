package charts

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Query is one PromQL expression the chart ships.
type Query struct {
	// Source names it: "alert NAME" or "panel TITLE".
	Source string
	Expr   string
}

// Queries returns every PromQL expression in the rendered objects: each rule of a PrometheusRule and each
// target of a Grafana dashboard in a ConfigMap (a data key ending in .json).
func Queries(objs []*unstructured.Unstructured) ([]Query, error) {
	var out []Query
	for _, o := range objs {
		switch o.GetKind() {
		case "PrometheusRule":
			groups, _, err := unstructured.NestedSlice(o.Object, "spec", "groups")
			if err != nil {
				return nil, fmt.Errorf("PrometheusRule %s: %w", o.GetName(), err)
			}
			for _, g := range groups {
				rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
				for _, r := range rules {
					r := r.(map[string]any)
					name, _ := r["alert"].(string)
					if name == "" {
						name, _ = r["record"].(string)
					}
					expr, _ := r["expr"].(string)
					out = append(out, Query{Source: "alert " + name, Expr: expr})
				}
			}
		case "ConfigMap":
			data, _, _ := unstructured.NestedStringMap(o.Object, "data")
			for key, js := range data {
				if !strings.HasSuffix(key, ".json") {
					continue
				}
				qs, err := dashboardQueries([]byte(js))
				if err != nil {
					return nil, fmt.Errorf("ConfigMap %s, %s: %w", o.GetName(), key, err)
				}
				out = append(out, qs...)
			}
		}
	}
	return out, nil
}

// dashboardQueries returns the targets of every panel, rows' nested panels included.
func dashboardQueries(js []byte) ([]Query, error) {
	type panel struct {
		Title   string  `json:"title"`
		Panels  []panel `json:"panels"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	}
	var d struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(js, &d); err != nil {
		return nil, err
	}
	var out []Query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				out = append(out, Query{Source: "panel " + p.Title, Expr: t.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out, nil
}

// grafanaVariables are sample values for the variables the dashboard's queries use, so that they parse as
// PromQL: Grafana's interval variables and the dashboard's own.
var grafanaVariables = map[string]string{
	"__rate_interval": "5m", "__interval": "1m", "__range": "6h",
	"timeout": "5", "job": "sparkplace-webhook",
}

var variableRef = regexp.MustCompile(`\$\{?(\w+)\}?`)

// Parse parses a query as Prometheus does, with Grafana variables replaced by sample values; an unknown
// variable is an error.
func Parse(expr string) (parser.Expr, error) {
	var unknown []string
	expanded := variableRef.ReplaceAllStringFunc(expr, func(ref string) string {
		name := variableRef.FindStringSubmatch(ref)[1]
		v, ok := grafanaVariables[name]
		if !ok {
			unknown = append(unknown, ref)
		}
		return v
	})
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown Grafana variables %v", unknown)
	}
	return parser.NewParser(parser.Options{}).ParseExpr(expanded)
}

// MetricNames returns the names of the metrics a parsed expression selects, sorted, once each.
func MetricNames(e parser.Expr) []string {
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
			if name != "" && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
		return nil
	})
	slices.Sort(names)
	return names
}
