package sparkplace.placement_test

import data.sparkplace.placement

test_isolation_in_node_bound_profiles if {
	every profile in {"spot", "on-demand", "nvme"} {
		placement.node_selector.noderole == "spark" with input as driver_input(profile)
		{"key": "noderole", "operator": "Equal", "value": "spark", "effect": "NoSchedule"} in placement.tolerations with input as executor_input(profile, "")
	}
}

test_isolation_can_be_turned_off if {
	d := placement.decision with input as executor_input("spot", "") with data.sparkplace.config.isolation.enabled as false
	not d.nodeSelector.noderole
	not "isolation.spark-nodes" in d.rules
	count(d.tolerations) == 1
}
