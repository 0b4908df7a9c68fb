// Package webhook owns the admission path for Spark pods: decoding the AdmissionReview, classifying the pod,
// building the policy input (with the driver's zone from cluster state), asking the policy engine, applying
// the decision and answering with a JSON patch; plus the server around it and its metrics. The same Placer
// serves the webhook and `sparkplace policy eval`.
package webhook
