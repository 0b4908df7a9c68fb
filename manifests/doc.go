// Package manifests owns the cluster-wide install of sparkplace: a kustomize base and two overlays,
// overlays/self-signed (the webhook manages its own CA) and overlays/cert-manager (cert-manager issues the
// certificate), plus overlays/monitoring (ServiceMonitor, alert rules, Grafana dashboard; generated from the
// Helm chart in charts/). The YAML is the product; `kubectl kustomize manifests/overlays/<name>` renders it.
//
// [Render] renders an overlay in-process with kustomize's krusty, so tests check what users would apply and
// the end-to-end tests apply exactly that. See README.md for the install paths and settings.
package manifests
