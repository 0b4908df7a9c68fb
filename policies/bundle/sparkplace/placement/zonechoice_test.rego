package sparkplace.placement_test

import data.sparkplace.placement

# steered_input is a driver under profile for which the capacity index chose zone for reason.
steered_input(profile, zone, reason) := object.union(driver_input(profile), {"zoneChoice": {"zone": zone, "reason": reason}})

zone_preference(zone) := {
	"weight": 100,
	"preference": {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]}]},
}

test_driver_prefers_the_chosen_zone if {
	d := placement.decision with input as steered_input("spot", "us-east-1c", "capacity")
	d.preferredNodeAffinity == [zone_preference("us-east-1c")]
	"zone.driver-capacity" in d.rules
}

test_rule_names_the_reason if {
	some reason in ["hint", "weight", "round-robin"]
	rules := placement.rules with input as steered_input("nvme", "us-east-1a", reason)
	sprintf("zone.driver-%s", [reason]) in rules
}

test_driver_zone_follows_config if {
	d := placement.decision with input as steered_input("spot", "rack-2", "capacity")
		with data.sparkplace.config.zone.topologyKey as "example.com/rack"
		with data.sparkplace.config.driverZone.weight as 40
	d.preferredNodeAffinity == [{"weight": 40, "preference": {"matchExpressions": [{"key": "example.com/rack", "operator": "In", "values": ["rack-2"]}]}}]
}

test_no_zone_preference_when_disabled_or_unchosen if {
	count(placement.preferred_node_affinity) == 0 with input as steered_input("spot", "us-east-1c", "capacity")
		with data.sparkplace.config.driverZone.enabled as false
	count(placement.preferred_node_affinity) == 0 with input as driver_input("spot")
	count(placement.preferred_node_affinity) == 0 with input as steered_input("spot", "", "capacity")
}

test_no_zone_preference_for_executors_or_fargate if {
	count(placement.preferred_node_affinity) == 0 with input as object.union(executor_input("spot", "us-east-1a"), {"zoneChoice": {"zone": "us-east-1c", "reason": "capacity"}})
	count(placement.preferred_node_affinity) == 0 with input as steered_input("fargate", "us-east-1c", "capacity")
}

test_user_zone_is_left_alone if {
	by_selector := object.union(steered_input("spot", "us-east-1c", "capacity"), {"pod": {"spec": {"nodeSelector": {"topology.kubernetes.io/zone": "us-east-1a"}}}})
	count(placement.preferred_node_affinity) == 0 with input as by_selector
	required := {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a"]}]}]}}}
	by_required := object.union(steered_input("spot", "us-east-1c", "capacity"), {"pod": {"spec": {"affinity": required}}})
	count(placement.preferred_node_affinity) == 0 with input as by_required
	by_preferred := object.union(steered_input("spot", "us-east-1c", "capacity"), {"pod": {"spec": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [zone_preference("us-east-1a")]}}}}})
	count(placement.preferred_node_affinity) == 0 with input as by_preferred
	not "zone.driver-capacity" in placement.rules with input as by_preferred
}

test_spot_executors_spread_over_pools if {
	d := placement.decision with input as executor_input("spot", "us-east-1a")
	d.topologySpreadConstraints == [{
		"maxSkew": 1,
		"topologyKey": "node.kubernetes.io/instance-type",
		"whenUnsatisfiable": "ScheduleAnyway",
		"labelSelector": {"matchLabels": {"spark-role": "executor"}},
		"matchLabelKeys": ["spark-app-selector"],
	}]
	"spot.executors-spread-over-pools" in d.rules
	some c in placement.topology_spread with input as executor_input("nvme", "")
	c.whenUnsatisfiable == "ScheduleAnyway"
}

test_pool_key_is_config if {
	some c in placement.topology_spread with input as executor_input("spot", "us-east-1a")
		with data.sparkplace.config.spotPools.topologyKey as "karpenter.sh/nodepool"
	c.topologyKey == "karpenter.sh/nodepool"
}

test_no_spread_off_spot_or_when_disabled if {
	count(placement.topology_spread) == 0 with input as executor_input("on-demand", "us-east-1a")
	count(placement.topology_spread) == 0 with input as executor_input("fargate", "")
	count(placement.topology_spread) == 0 with input as driver_input("spot")
	count(placement.topology_spread) == 0 with input as executor_input("spot", "us-east-1a")
		with data.sparkplace.config.spotPools.enabled as false
}

autoscaler_annotations := {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false", "karpenter.sh/do-not-disrupt": "true"}

test_drivers_are_not_evicted if {
	d := placement.decision with input as driver_input("on-demand")
	d.annotations == autoscaler_annotations
	"autoscaler.driver-not-evicted" in d.rules
	not placement.decision.annotations with input as driver_input("fargate")
}

test_executors_are_protected_only_when_configured if {
	not placement.decision.annotations with input as executor_input("spot", "us-east-1a")
	d := placement.decision with input as executor_input("spot", "us-east-1a")
		with data.sparkplace.config.autoscaler.protectExecutors as true
	d.annotations == autoscaler_annotations
	"autoscaler.executor-not-evicted" in d.rules
}

test_reinvocation_keeps_the_zone_preference if {
	placed := object.union(steered_input("spot", "us-east-1c", "capacity"), {"pod": {"spec": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [zone_preference("us-east-1c")]}}}}})
	placement.preferred_node_affinity == {zone_preference("us-east-1c")} with input as placed
	"zone.driver-capacity" in placement.rules with input as placed
}
