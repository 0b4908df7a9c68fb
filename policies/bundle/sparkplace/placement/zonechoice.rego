# Zone choice and spot safety: drivers are steered to the zone where their executors fit, executors spread
# over the spot pools of their zone, and autoscalers are kept from evicting drivers.
package sparkplace.placement

# chosen_zone is the zone the webhook's capacity index picked for a driver (input.zoneChoice: the zone, and
# why: capacity, hint, weight or round-robin); undefined when it picked none.
chosen_zone := input.zoneChoice.zone if input.zoneChoice.zone != ""

# steered_driver: a driver under a node-bound profile that leaves its zone to sparkplace.
steered_driver if {
	input.role == "driver"
	node_bound
	cfg.driverZone.enabled
	chosen_zone
	not pod_constrains_zone
}

# The driver prefers the chosen zone. Preferred, not required: the choice is made for the executors' spot
# capacity, and a required term could keep the driver Pending when the zone's on-demand nodes are full. The
# executors then follow wherever the driver lands.
# (input.role and input.zoneChoice.zone first: the rule index skips these for executors; see zone_executor.)
preferred_node_affinity contains zone_preference if {
	input.role == "driver"
	input.zoneChoice.zone
	steered_driver
}

zone_preference := {
	"weight": cfg.driverZone.weight,
	"preference": {"matchExpressions": [{"key": cfg.zone.topologyKey, "operator": "In", "values": [chosen_zone]}]},
}

rules contains sprintf("zone.driver-%s", [input.zoneChoice.reason]) if {
	input.role == "driver"
	input.zoneChoice.zone
	steered_driver
}

# pod_constrains_zone: the user chose the zone (nodeSelector, required or preferred node affinity on the key).
pod_constrains_zone if input.pod.spec.nodeSelector[cfg.zone.topologyKey]

pod_constrains_zone if {
	some term in input.pod.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms
	some req in term.matchExpressions
	req.key == cfg.zone.topologyKey
}

# A preference equal to sparkplace's own (a reinvoked admission: the choice is the same) is not the user's.
pod_constrains_zone if {
	some term in input.pod.spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution
	term != zone_preference
	some req in term.preference.matchExpressions
	req.key == cfg.zone.topologyKey
}

# METADATA
# title: spot.executors-spread-over-pools
# description: |-
#   Spot executors of one application spread over the spot pools (instance types, node groups, NodePools) of
#   their zone, so one reclaim of a pool does not take every executor of the job. ScheduleAnyway: the spread
#   only scores nodes, it never keeps an executor Pending. "The application's executors" is matchLabelKeys
#   spark-app-selector (see zone.rego's driver_term): the decision is shared by every application.
topology_spread contains constraint if {
	input.role == "executor"
	profile in spot_profiles
	cfg.spotPools.enabled
	input.app.hasID
	constraint := {
		"maxSkew": cfg.spotPools.maxSkew,
		"topologyKey": cfg.spotPools.topologyKey,
		"whenUnsatisfiable": "ScheduleAnyway",
		"labelSelector": {"matchLabels": {"spark-role": "executor"}},
		"matchLabelKeys": ["spark-app-selector"],
	}
}

rules contains "spot.executors-spread-over-pools" if {
	some _ in topology_spread
}

# METADATA
# title: autoscaler.driver-not-evicted
# description: |-
#   Losing a driver loses the job: autoscalers must not evict it to scale a node down.
annotations[key] := value if {
	input.role == "driver"
	node_bound
	some key, value in cfg.autoscaler.driverAnnotations
}

rules contains "autoscaler.driver-not-evicted" if {
	input.role == "driver"
	node_bound
	count(cfg.autoscaler.driverAnnotations) > 0
}

# protectExecutors is a boolean (the config keeps each default's type), so == true is what a condition on it
# tests; written so, the rule index skips these two rules while it is false, as it is by default.

# METADATA
# title: autoscaler.executor-not-evicted
# description: |-
#   Executors get the same protection when their shuffle data matters (no external shuffle service, dynamic
#   allocation with shuffle tracking): config autoscaler.protectExecutors.
annotations[key] := value if {
	input.role == "executor"
	data.sparkplace.config.autoscaler.protectExecutors == true
	node_bound
	some key, value in cfg.autoscaler.driverAnnotations
}

rules contains "autoscaler.executor-not-evicted" if {
	input.role == "executor"
	data.sparkplace.config.autoscaler.protectExecutors == true
	node_bound
	count(cfg.autoscaler.driverAnnotations) > 0
}
