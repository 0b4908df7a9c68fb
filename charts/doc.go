// Package charts owns the Helm chart of sparkplace (sparkplace/): what the kustomize overlays in manifests/
// install, with values, a values.schema.json, the Grafana dashboard and the Prometheus alert rules.
//
// [Render] renders the chart in-process with Helm's own engine, the way `helm template` does, so the tests
// check what users would install: the chart matches the kustomize overlays object by object, every PromQL
// expression parses, and the end-to-end tests apply exactly what it renders.
package charts
