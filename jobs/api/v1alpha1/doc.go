// Package v1alpha1 holds sparkplace's job API types in the sparkplace.io group: VirtualCluster (a namespace
// the platform team opened to Spark jobs, with what its jobs may use) and JobRun (one emr-containers job run:
// the StartJobRun request as spec, the state the controller observed as status). They are CRDs, so
// Kubernetes RBAC on them is the tenancy model, and `kubectl get jobruns -A` shows every run.
//
// The CRD manifests under manifests/base/jobs/crds are generated from these types by controller-gen
// (`make generate`); CI fails when they are out of date.
//
// +kubebuilder:object:generate=true
// +groupName=sparkplace.io
package v1alpha1
