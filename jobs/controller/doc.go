// Package controller owns every state transition of sparkplace's job runs and virtual clusters. It is a
// leader-elected controller-runtime manager (`sparkplace controller`):
//   - a VirtualCluster becomes RUNNING when its namespace is open to virtual clusters (the platform team's
//     label, never a system namespace), ARRESTED otherwise, and TERMINATED once deleted and idle;
//   - a JobRun is planned with the submit package against its virtual cluster's policy; the controller
//     creates the driver's service account (once per virtual cluster and execution role), the driver pod and
//     the objects it owns, records SUBMITTED, RUNNING and the final state from the driver container with the
//     reason, enforces the start timeout with its own clock, carries out cancels, keeps the final state when
//     the driver pod is gone, and deletes finished runs after their TTL.
//
// Reads elsewhere (the API, the CLI) have no side effects: only this package writes status.
package controller
