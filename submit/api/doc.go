// Package api serves the emr-containers REST API (rest-json, version 2020-10-01) over a submit.Submitter,
// so the AWS CLI (`aws emr-containers --endpoint-url`), the AWS SDKs and Airflow's EmrContainerOperator can
// drive sparkplace unchanged. It owns the HTTP side: refusing cross-site browser requests, verifying SigV4
// signatures against a key table kept in Kubernetes Secrets, acting for each caller through impersonation
// (so Kubernetes RBAC on JobRuns and VirtualClusters scopes what it may do), paths, query parameters,
// pagination, and EMR's error shape ({"__type", "message"} plus the x-amzn-errortype header).
package api
