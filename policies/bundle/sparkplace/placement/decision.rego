# METADATA
# title: Spark pod placement
# description: |-
#   The entry point: data.sparkplace.placement.decision, the Decision the webhook applies to a Spark pod.
#
#   Each concern (capacity, zone, nvme, fargate, isolation) lives in its own file and contributes to the
#   partial rules below; this file only assembles them. Keys of the decision are the JSON fields of
#   placement.Decision; the webhook rejects any other key.
# schemas:
#   - input: schema.input
#   - data.sparkplace.config: schema.config
package sparkplace.placement

# The concerns contribute through partial rules, which evaluate to {} when nothing contributes:
#   node_selector, labels, annotations   maps; two concerns giving one key different values is a policy
#                           error (eval_conflict_error), never a silent override;
#   tolerations, node_affinity, pod_affinity, preferred_node_affinity, preferred_pod_affinity,
#   topology_spread, rules, notes, deny   sets, so a value contributed twice appears once.

# local_dirs is set by the nvme concern; init_containers likewise.
default local_dirs := null

default init_containers := []

# A pod that is neither a driver nor an executor gets an empty decision: nothing to do.
default decision := {}

# METADATA
# title: Placement decision
# description: |-
#   The Decision the webhook applies to a Spark pod (the JSON fields of placement.Decision). A pod the
#   policy refuses gets only the reasons (deny) and the rules that led there; a pod that is neither a
#   driver nor an executor gets {}.
# scope: document
# entrypoint: true
decision := without_empty({"deny": sort(deny), "rules": sort(rules)}) if {
	role
	count(deny) > 0
} else := placed if role

# METADATA
# title: Accepted pod's decision
# description: What every concern contributes, for a pod the policy accepts.
placed := without_empty({
	"nodeSelector": node_selector,
	"labels": labels,
	# sort lists a set in its own order (what a comprehension over it gives), in one builtin call.
	"tolerations": sort(tolerations),
	"nodeAffinity": sort(node_affinity),
	"podAffinity": sort(pod_affinity),
	"preferredNodeAffinity": sort(preferred_node_affinity),
	"preferredPodAffinity": sort(preferred_pod_affinity),
	"topologySpreadConstraints": sort(topology_spread),
	"annotations": annotations,
	"localDirs": local_dirs,
	"initContainers": init_containers,
	"rules": sort(rules),
	"notes": sort(notes),
})

# without_empty drops empty fields (null: no local dirs, or nothing in it) so the decision (and the pod
# annotation) shows only what applies. Written out rather than through a helper function: it runs on every
# field of every decision, and a function call costs several times the two comparisons.
without_empty(fields) := {key: value |
	some key, value in fields
	value != null
	count(value) > 0
}
