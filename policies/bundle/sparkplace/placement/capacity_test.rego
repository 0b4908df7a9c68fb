package sparkplace.placement_test

import data.sparkplace.placement

test_driver_on_demand_in_every_node_bound_profile if {
	every profile in {"spot", "on-demand", "nvme"} {
		placement.node_selector["eks.amazonaws.com/capacityType"] == "ON_DEMAND" with input as driver_input(profile)
		"capacity.driver-on-demand" in placement.rules with input as driver_input(profile)
	}
}

test_executor_spot_with_toleration if {
	every profile in {"spot", "nvme"} {
		placement.node_selector["eks.amazonaws.com/capacityType"] == "SPOT" with input as executor_input(profile, "")
		{"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in placement.tolerations with input as executor_input(profile, "")
	}
}

test_on_demand_executor if {
	placement.node_selector["eks.amazonaws.com/capacityType"] == "ON_DEMAND" with input as executor_input("on-demand", "")
	"capacity.executor-on-demand" in placement.rules with input as executor_input("on-demand", "")
	not "capacity.executor-spot" in placement.rules with input as executor_input("on-demand", "")
	count(placement.tolerations) == 1 with input as executor_input("on-demand", "") # isolation's only
}

test_karpenter_preset if {
	placement.node_selector["karpenter.sh/capacity-type"] == "spot" with input as executor_input("spot", "")
		with data.sparkplace.config.preset as "karpenter"
	placement.node_selector["karpenter.sh/capacity-type"] == "on-demand" with input as driver_input("spot")
		with data.sparkplace.config.preset as "karpenter"
}

test_capacity_fields_override_preset if {
	ns := placement.node_selector with input as executor_input("spot", "")
		with data.sparkplace.config.capacity as {"key": "node.kubernetes.io/lifecycle", "spot": "spot"}
	ns["node.kubernetes.io/lifecycle"] == "spot"
	not ns["eks.amazonaws.com/capacityType"]
}

test_undefined_preset_denied if {
	some msg in placement.deny with input as driver_input("spot") with data.sparkplace.config.preset as "gke"
	contains(msg, `preset "gke" is not defined; defined presets: eks, karpenter`)
}
