// Package submit owns job runs: it turns an Amazon EMR on EKS StartJobRun request into the objects
// spark-submit --deploy-mode cluster creates (the driver's properties ConfigMap, the headless driver
// Service and the driver pod), plus the ServiceAccount, Role and RoleBinding a driver needs, and it keeps
// virtual clusters and job-run state in Kubernetes so that nothing lives on the submitter's disk.
//
// The work is split in two so that every validation happens before anything is created:
//   - Plan (pure): request + target namespace → every object, or a *ValidationError;
//   - Submitter: looks up the virtual cluster, makes the submission idempotent on clientToken, creates the
//     planned objects and derives job-run state (EMR's PENDING … COMPLETED) from the driver pod.
//
// It imports only Kubernetes API machinery and the controller-runtime client; placement is the webhook's job.
package submit
