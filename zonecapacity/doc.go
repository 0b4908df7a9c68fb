// Package zonecapacity owns the estimate of free spot capacity per zone that steers Spark drivers: an index fed
// by node, pod and DaemonSet events and kept up to date incrementally, so that choosing a driver's zone costs
// O(zones) at admission, not a walk over the cluster. It is pure: no client, no informer, no Rego; the webhook
// feeds it from its informer caches and `policy eval` from --objects.
//
// What it counts, per zone, for the nodes executors of a profile may use (a Pool: schedulable nodes whose
// labels match the profile's node selector and whose NoSchedule/NoExecute taints its tolerations tolerate):
//
//   - allocatable CPU and memory of those nodes,
//   - minus the requests of the Spark pods bound to them (Spark nodes are isolated: Spark pods and DaemonSets
//     are what runs there) and of the DaemonSets whose node selector and tolerations admit them,
//   - minus the requests of Spark executors not yet bound but pinned to the zone (created, waiting for the
//     scheduler),
//   - minus the size hint of drivers admitted in the last seconds, whose executors do not exist yet; as each
//     of their executors appears it takes over from the hint.
package zonecapacity
