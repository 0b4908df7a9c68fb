// Package framework runs a real, local Kubernetes control plane for sparkplace's end-to-end tests and demo:
// etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake nodes that pods really get
// scheduled onto), each a child process on free loopback ports under one temporary directory.
//
// Every child runs in its own process group and is started with a parent-death signal, so the whole control
// plane goes away when Stop is called, when the test binary is interrupted (SIGINT/SIGTERM), and even when it
// dies without running cleanups (go test's -timeout panic). Leftovers lets a test check that no process
// outlived it.
//
// On top of the control plane it creates an EKS-like node fleet (Fleet) and runs the sparkplace webhook with
// its own TLS certificate behind a MutatingWebhookConfiguration (Webhook).
package framework
