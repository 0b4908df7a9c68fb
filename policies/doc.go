// Package policies owns the Rego side of sparkplace: the embedded default policy bundle (a standard OPA bundle:
// bundle/sparkplace/placement/*.rego with their *_test.rego next to them, and bundle/sparkplace/config/data.yaml,
// the defaults of data.sparkplace.config), loading it
// with an optional policy directory and config file on top, compiling it once, evaluating the prepared query
// per admission (with a deadline and a decision cache; a cache miss runs the query's plan, OPA's planner's
// intermediate representation, with OPA's own evaluator as the reference and fallback: plan.go), hot reload
// with last-known-good, and running the bundle's Rego unit tests.
//
// It turns an Input into a placement.Decision; it does not validate guardrails or touch pods (package
// placement does), and knows nothing about admission or the cluster (package webhook does).
package policies
