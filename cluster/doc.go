// Package cluster owns the webhook's view of the cluster: what it caches (Spark pods and nodes, stripped by
// transform functions to the fields placement reads, and namespace labels), the index built from those caches,
// and the questions placement asks of it: an executor's driver as Spark links it, the zone executors follow,
// whether any schedulable node can take a pod, which executors wait on their placement. The server feeds the
// index from informers (the Spark pods' own, NewPodInformer, strips them before decoding them); `policy eval
// --objects` feeds it from a file through the same transforms and filters,
// so both see the same cluster. Memory grows with Spark pods, not with the cluster's other pods.
package cluster
