// Package scratch owns the per-pod NVMe scratch directories on a node once their pods are gone: the sweep of
// `sparkplace node-agent`, run as a DaemonSet on NVMe nodes. The webhook's nvme profile gives each Spark pod
// <root>/<namespace>/<pod>/<volume> (placement.PodDir) and its init container records the pod's UID there
// (placement.PodUIDFile); the sweep removes the directories of pods that no longer exist on the node, or
// have terminated (OOM-killed and evicted executors included), and never those of a live pod.
package scratch
