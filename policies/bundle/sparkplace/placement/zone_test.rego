package sparkplace.placement_test

import data.sparkplace.placement

test_executor_follows_known_driver_zone if {
	placement.node_affinity == {{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eu-west-1b"]}} with input as executor_input("spot", "eu-west-1b")
	count(placement.pod_affinity) == 0 with input as executor_input("spot", "eu-west-1b")
	"zone.executor-follows-driver" in placement.rules with input as executor_input("spot", "eu-west-1b")
}

test_executor_falls_back_to_pod_affinity if {
	placement.pod_affinity == {{
		"labelSelector": {"matchLabels": {"spark-app-selector": "spark-0123456789abcdef0123456789abcdef", "spark-role": "driver"}},
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
	count(placement.pod_affinity) == 0 with input as object.union(executor_input("spot", ""), {"app": {"id": ""}})
}

test_topology_key_is_config if {
	some r in placement.node_affinity with input as executor_input("spot", "rack-1")
		with data.sparkplace.config.zone.topologyKey as "example.com/rack"
	r.key == "example.com/rack"
}
