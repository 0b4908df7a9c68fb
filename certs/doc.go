// Package certs owns the webhook's serving certificate: where it comes from, when it is renewed, and how the
// API server learns to trust it.
//
// A [Source] hands the TLS server its current certificate and reports readiness and expiry. Two implementations
// exist, picked by the server with a switch:
//
//   - [FileSource] reads tls.crt/tls.key from a mounted Secret (cert-manager mode) and reloads them when the
//     kubelet updates the files; cert-manager's cainjector writes the CA bundle into the webhook configuration.
//   - [SelfManaged] keeps an ECDSA CA and a serving certificate in a Secret, renews both before they expire,
//     writes the CA bundle into the MutatingWebhookConfiguration and rotates the CA with an overlap during
//     which the old and the new CA are both trusted, so no admission request fails. Every replica reads the
//     Secret and serves from it; writes use optimistic concurrency on the Secret's resourceVersion, so exactly
//     one replica makes each change.
//
// [CertManagerObjects] builds the cert-manager Issuers and Certificate that the cert-manager overlay under
// manifests/ installs, and [NewCollector] exports each certificate's expiry as a Prometheus gauge.
//
// This package does not import webhook, policies or submit: it only knows about certificates and the two
// Kubernetes objects it writes.
package certs
