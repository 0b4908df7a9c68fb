// Package placement owns the Decision a policy returns for a Spark pod: its type, the guardrails it is
// validated against, and its idempotent application to a corev1.Pod. It is pure: no client, no Rego, no HTTP.
package placement
