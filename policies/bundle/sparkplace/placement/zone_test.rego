package sparkplace.placement_test

import data.sparkplace.placement

test_executor_follows_known_driver_zone if {
	placement.node_affinity == {{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eu-west-1b"]}} with input as executor_input("spot", "eu-west-1b")
	count(placement.pod_affinity) == 0 with input as executor_input("spot", "eu-west-1b")
	"zone.executor-follows-driver" in placement.rules with input as executor_input("spot", "eu-west-1b")
}

test_executor_falls_back_to_pod_affinity if {
	placement.pod_affinity == {{
		"labelSelector": {"matchLabels": {"spark-role": "driver"}},
		"matchLabelKeys": ["spark-app-selector"],
		"topologyKey": "topology.kubernetes.io/zone",
	}} with input as executor_input("nvme", "")
	count(placement.node_affinity) == 0 with input as executor_input("nvme", "")
	"zone.executor-affinity-fallback" in placement.rules with input as executor_input("nvme", "")
}

test_no_zone_rule_for_drivers if {
	count(placement.node_affinity) == 0 with input as driver_input("spot")
	count(placement.pod_affinity) == 0 with input as driver_input("spot")
}

test_no_zone_rule_on_fargate if {
	count(placement.node_affinity) == 0 with input as executor_input("fargate", "us-east-1a")
	count(placement.pod_affinity) == 0 with input as executor_input("fargate", "")
}

test_no_fallback_without_app_id if {
	count(placement.pod_affinity) == 0 with input as object.union(executor_input("spot", ""), {"app": {"id": "", "hasID": false}})
}

test_topology_key_is_config if {
	some r in placement.node_affinity with input as executor_input("spot", "rack-1")
		with data.sparkplace.config.zone.topologyKey as "example.com/rack"
	r.key == "example.com/rack"
}

# client_input is a client-mode executor: no driver pod, and the zone its application's executors run in.
client_input(zone) := object.union(
	object.remove(executor_input("spot", ""), {"driver", "zone"}),
	{"driver": {"found": false}, "zone": zone_of_executors(zone)},
)

zone_of_executors(zone) := {} if zone == ""

zone_of_executors(zone) := {"value": zone, "source": "executors"} if zone != ""

with_zone(base, fields) := object.union(base, {"zone": object.union(base.zone, fields)})

test_client_mode_first_executor_keeps_with_the_others if {
	placement.pod_affinity == {{
		"labelSelector": {"matchLabels": {"spark-role": "executor"}},
		"matchLabelKeys": ["spark-app-selector"],
		"topologyKey": "topology.kubernetes.io/zone",
	}} with input as client_input("")
	"zone.executors-stay-together" in placement.rules with input as client_input("")
}

test_client_mode_later_executors_follow_the_first if {
	placement.node_affinity == {{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1b"]}} with input as client_input("us-east-1b")
	count(placement.pod_affinity) == 0 with input as client_input("us-east-1b")
	"zone.executors-stay-together" in placement.rules with input as client_input("us-east-1b")
}

test_notebook_owner_without_zone_label_pins_nothing if {
	pod_in := object.union(executor_input("spot", ""), {"driver": {"found": true, "name": "jupyter-alice", "nodeName": "bare-metal-7", "scheduled": true}})
	count(placement.node_affinity) == 0 with input as pod_in
	count(placement.pod_affinity) == 0 with input as pod_in
	"zone.driver-zone-unknown" in placement.rules with input as pod_in
	some note in placement.notes with input as pod_in
	contains(note, "node has no label topology.kubernetes.io/zone")
}

test_unschedulable_zone_becomes_a_preference if {
	pod_in := with_zone(executor_input("spot", "us-east-1c"), {"unschedulable": true})
	count(placement.node_affinity) == 0 with input as pod_in
	placement.preferred_node_affinity == {{"weight": 100, "preference": {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1c"]}]}}} with input as pod_in
	"zone.relaxed-no-schedulable-node" in placement.rules with input as pod_in
	some note in placement.notes with input as pod_in
	contains(note, "no schedulable node with topology.kubernetes.io/zone=us-east-1c")
}

test_no_schedulable_labelled_node_drops_the_client_mode_term if {
	pod_in := with_zone(client_input(""), {"unschedulable": true})
	count(placement.pod_affinity) == 0 with input as pod_in
	count(placement.preferred_pod_affinity) == 1 with input as pod_in
}

test_relaxed_after_bound_prefers_and_labels if {
	pod_in := with_zone(executor_input("spot", "us-east-1c"), {"relaxed": "capacity"})
	count(placement.node_affinity) == 0 with input as pod_in
	count(placement.preferred_node_affinity) == 1 with input as pod_in
	placement.labels["sparkplace.io/zone-relaxed"] == "capacity" with input as pod_in
	"zone.relaxed-after-bound" in placement.rules with input as pod_in
	some note in placement.notes with input as pod_in
	contains(note, "waited longer than 2m")
}

test_strict_keeps_the_pin if {
	pod_in := with_zone(executor_input("spot", "us-east-1c"), {"unschedulable": true, "relaxed": "capacity"})
	placement.node_affinity == {{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1c"]}} with input as pod_in
		with data.sparkplace.config.zone.mode as "strict"
	not placement.labels["sparkplace.io/zone-relaxed"] with input as pod_in with data.sparkplace.config.zone.mode as "strict"
	some note in placement.notes with input as pod_in with data.sparkplace.config.zone.mode as "strict"
	contains(note, "zone.mode strict keeps the zone required")
}

test_preferred_mode_never_requires if {
	count(placement.node_affinity) == 0 with input as executor_input("spot", "us-east-1a")
		with data.sparkplace.config.zone.mode as "preferred"
	count(placement.preferred_node_affinity) == 1 with input as executor_input("spot", "us-east-1a")
		with data.sparkplace.config.zone.mode as "preferred"
	"zone.preferred" in placement.rules with input as executor_input("spot", "us-east-1a")
		with data.sparkplace.config.zone.mode as "preferred"
}

# another_app is the input of an executor of another application whose driver runs on another node of the same
# zone (empty: not scheduled).
another_app(base) := object.union(base, {
	"app": {"id": "spark-fedcba9876543210fedcba9876543210", "name": "etl"},
	"driver": object.union_n([base.driver, {"name": "etl-driver"}, driver_elsewhere(base.driver)]),
	"pod": {"metadata": {"labels": {"spark-app-selector": "spark-fedcba9876543210fedcba9876543210", "spark-app-name": "etl"}}},
})

driver_elsewhere(driver) := {"nodeName": "node-b"} if driver.scheduled

driver_elsewhere(driver) := {} if not driver.scheduled

# The decision names no application (matchLabelKeys does), so the executors of every application in one zone
# share it: cluster mode with the driver's zone known or the driver not yet scheduled, client mode before and
# after the first executor is bound.
test_executors_of_two_applications_get_one_decision if {
	every base in [executor_input("spot", "us-east-1a"), executor_input("nvme", ""), client_input(""), client_input("us-east-1b")] {
		d := placement.decision with input as base
		d == placement.decision with input as another_app(base)
		count(d.rules) > 0
	}
}
