# Zone: executors run in one availability zone, their driver's, so shuffle traffic stays in one zone (no
# cross-zone data transfer charges, lower latency) and a zone outage hits a job once. Never at the price of
# a stranded job: a required term goes only to a zone the webhook knows and that can take the pod, and
# (mode bounded) turns into a preference once the application's executors waited on it past the bound.
package sparkplace.placement

zone_key := cfg.zone.topologyKey

zone_mode := cfg.zone.mode

# zone_executor: the executors of node-bound profiles are the pods zone rules apply to.
#
# The rules below start with what OPA's rule index can check before it evaluates anything: the role
# (input.role, which role equals), the zone facts of the input and the zone mode
# (data.sparkplace.config.zone.mode, which zone_mode is). OPA then skips the rules that cannot apply (every
# one of them for a driver) instead of evaluating each: most of what a cache miss costs (README
# "Performance"). They repeat a condition the rule goes on to check, and change no outcome.
zone_executor if {
	input.role == "executor"
	node_bound
}

# zone_value is the zone to follow (the driver's, or in client mode the one the app's executors run in).
zone_value := input.zone.value if input.zone.value != ""

# zone_relaxed is why the application's pin was relaxed (its executors waited past the bound).
zone_relaxed := input.zone.relaxed if input.zone.relaxed != ""

# zone_unschedulable: the webhook found that no schedulable node can take the pod with the required term.
zone_unschedulable if input.zone.unschedulable

# zone_required: pin with a required term. strict always does; bounded does until relaxed, and never with a
# term no schedulable node can meet; preferred never does.
zone_required if zone_mode == "strict"

zone_required if {
	zone_mode == "bounded"
	not zone_unschedulable
	not zone_relaxed
}

# METADATA
# title: zone.executor-follows-driver
# description: |-
#   The zone is known: a required node affinity, or a preferred one.
node_affinity contains {"key": zone_key, "operator": "In", "values": [zone_value]} if {
	input.role == "executor"
	input.zone.value
	zone_executor
	zone_required
}

preferred_node_affinity contains term if {
	input.role == "executor"
	input.zone.value
	zone_executor
	zone_value
	not zone_required
	term := {"weight": 100, "preference": {"matchExpressions": [{"key": zone_key, "operator": "In", "values": [zone_value]}]}}
}

# A pinned executor carries the strictness it was admitted under, so the relaxer (in any replica, under any
# later config) holds it to that: "strict", or "bounded-<bound>".
labels["sparkplace.io/zone-strictness"] := zone_strictness if {
	input.role == "executor"
	zone_executor
	zone_required
	zone_pinned
}

zone_strictness := "strict" if zone_mode == "strict"

zone_strictness := sprintf("bounded-%s", [cfg.zone.bound]) if zone_mode == "bounded"

# zone_pinned: a required zone term is added (a known zone, or a pod affinity term).
zone_pinned if zone_value

zone_pinned if zone_term

rules contains "zone.executor-follows-driver" if {
	input.role == "executor"
	input.zone.source == "driver"
	zone_executor
	zone_required
}

rules contains "zone.executors-stay-together" if {
	input.role == "executor"
	input.zone.source == "executors"
	zone_executor
	zone_required
}

# The zone terms name "this application's pods" with matchLabelKeys: placement fills in the value of the pod's
# own spark-app-selector label when it applies the decision (the pod gets the same explicit matchLabels as
# if the term named the id). The decision reads no app id, driver name or node name, so the executors of
# every application in one zone share it (one cache entry). input.app.hasID guards each term: without the
# label, the term would select the pods of every application (placement would drop it, see
# placement.Decision; the policy does not ask for it).

# Without a known zone: while the driver is not yet scheduled (the webhook's cache lags), a pod affinity to
# it lets the scheduler put the executor wherever the driver lands.
driver_term := {
	"labelSelector": {"matchLabels": {"spark-role": "driver"}},
	"matchLabelKeys": ["spark-app-selector"],
	"topologyKey": zone_key,
} if {
	not zone_value
	input.driver.role == "driver"
	not input.driver.scheduled
	input.app.hasID
}

# METADATA
# title: zone.executor-affinity-fallback
# description: |-
#   In client mode with no driver pod, the executors keep together: a pod affinity to the application's
#   executors. The scheduler lets the first one go to any node with the label (it matches its own term), and
#   every later one follows it; once one is bound the webhook pins the rest to its zone by node affinity.
executors_term := {
	"labelSelector": {"matchLabels": {"spark-role": "executor"}},
	"matchLabelKeys": ["spark-app-selector"],
	"topologyKey": zone_key,
} if {
	not zone_value
	not input.driver.found
	input.app.hasID
}

zone_term := driver_term

zone_term := executors_term

pod_affinity contains zone_term if {
	input.role == "executor"
	zone_executor
	zone_required
}

preferred_pod_affinity contains {"weight": 100, "podAffinityTerm": zone_term} if {
	input.role == "executor"
	zone_executor
	not zone_required
}

rules contains "zone.executor-affinity-fallback" if {
	input.role == "executor"
	input.driver.role == "driver"
	zone_executor
	zone_required
	driver_term
}

rules contains "zone.executors-stay-together" if {
	input.role == "executor"
	zone_executor
	zone_required
	executors_term
}

rules contains "zone.preferred" if {
	input.role == "executor"
	data.sparkplace.config.zone.mode == "preferred"
	input.zone.value
	zone_executor
	zone_value
}

rules contains "zone.preferred" if {
	input.role == "executor"
	data.sparkplace.config.zone.mode == "preferred"
	zone_executor
	zone_term
}

# METADATA
# title: zone.relaxed-after-bound
# description: |-
#   Why the zone is not required, or required though it cannot be met: the annotation says it.
rules contains "zone.relaxed-after-bound" if {
	input.role == "executor"
	data.sparkplace.config.zone.mode == "bounded"
	input.zone.relaxed
	zone_executor
	zone_relaxed
}

notes contains sprintf("zone %s is preferred, not required: executors of this application waited longer than %s for room in their zone (%s)", [zone_value, cfg.zone.bound, zone_relaxed]) if {
	input.role == "executor"
	data.sparkplace.config.zone.mode == "bounded"
	input.zone.relaxed
	input.zone.value
	zone_executor
	zone_relaxed
	zone_value
}

# METADATA
# title: zone.relaxed-no-schedulable-node
# description: |-
#   The label tells every webhook replica (and the next executors) that this application's pin is relaxed.
labels["sparkplace.io/zone-relaxed"] := zone_relaxed if {
	input.role == "executor"
	data.sparkplace.config.zone.mode == "bounded"
	input.zone.relaxed
	zone_executor
	zone_relaxed
}

rules contains "zone.relaxed-no-schedulable-node" if {
	input.role == "executor"
	input.zone.unschedulable
	zone_executor
	zone_mode != "strict"
	zone_unschedulable
}

notes contains sprintf("no schedulable node with %s=%s can take this executor (cordoned, not ready, tainted or not matching its selectors): the zone is preferred, not required", [zone_key, zone_value]) if {
	input.role == "executor"
	input.zone.unschedulable
	input.zone.value
	zone_executor
	zone_mode != "strict"
	zone_unschedulable
	zone_value
}

notes contains sprintf("no schedulable node that can take this executor has the label %s: its zone is not pinned", [zone_key]) if {
	input.role == "executor"
	input.zone.unschedulable
	zone_executor
	zone_mode != "strict"
	zone_unschedulable
	not zone_value
}

notes contains sprintf("no schedulable node with %s=%s can take this executor now; zone.mode strict keeps the zone required, so it waits", [zone_key, zone_value]) if {
	input.role == "executor"
	data.sparkplace.config.zone.mode == "strict"
	input.zone.unschedulable
	zone_executor
	zone_unschedulable
}

# METADATA
# title: zone.driver-zone-unknown
# description: |-
#   The driver runs on a node without the topology label (bare metal, kubeadm): there is no zone to follow.
#   The note does not name the node (policy eval -o explain does): a decision naming it would be cached per
#   node, not shared by the executors of every driver without a zone.
rules contains "zone.driver-zone-unknown" if {
	input.role == "executor"
	input.driver.scheduled == true
	zone_executor
	not zone_value
}

notes contains sprintf("the driver's node has no label %s: executors are not pinned to a zone", [zone_key]) if {
	input.role == "executor"
	input.driver.scheduled == true
	zone_executor
	not zone_value
}
