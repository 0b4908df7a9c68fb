// Package e2e holds sparkplace's end-to-end tests: Spark pods, created as spark-submit and a Spark driver
// create them, go through a real kube-apiserver, the sparkplace webhook over TLS, the real kube-scheduler and
// kwok nodes of an EKS-like fleet; the tests assert on where the pods end up.
//
// One control plane serves the whole package (TestMain); each test works in its own namespace. Run with
// `make e2e` (or `go test ./e2e/...`, which builds the control plane first when bin/control-plane is empty);
// `go test -short` skips the package.
package e2e
