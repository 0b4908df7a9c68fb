package sparkplace.placement_test

import data.sparkplace.placement

test_fargate_decision if {
	every pod_in in [driver_input("fargate"), executor_input("fargate", "us-east-1a"), executor_input("fargate", "")] {
		placement.decision == {
			"labels": {"sparkplace.io/compute": "fargate"},
			"nodeSelector": {"eks.amazonaws.com/compute-type": "fargate"},
			"tolerations": [{"key": "eks.amazonaws.com/compute-type", "operator": "Equal", "value": "fargate", "effect": "NoSchedule"}],
			"rules": ["fargate.profile"],
		} with input as pod_in
	}
}

test_fargate_ignores_isolation_and_nvme_config if {
	d := placement.decision with input as executor_input("fargate", "")
		with data.sparkplace.config.isolation.enabled as true
	not d.nodeSelector.noderole
	not d.nodeSelector.disk
}

test_fargate_selector_label_is_config if {
	# (`with` on data merges objects, so the default label is still there; a --config file replaces it)
	placement.labels.team == "spark-fargate" with input as driver_input("fargate")
		with data.sparkplace.config.fargate.labels as {"team": "spark-fargate"}
}
