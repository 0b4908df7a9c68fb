package sparkplace.placement_test

import data.sparkplace.placement

test_profile_from_pod_label if {
	placement.profile == "on-demand" with input as driver_input("on-demand")
}

test_profile_from_namespace_label_when_pod_has_none if {
	placement.profile == "nvme" with input as unlabelled_driver({"sparkplace.io/profile": "nvme"})
}

test_pod_label_wins_over_namespace_label if {
	pod_in := object.union(driver_input("fargate"), {"namespace": {"name": "team-a", "labels": {"sparkplace.io/profile": "nvme"}}})
	placement.profile == "fargate" with input as pod_in
}

test_default_profile_is_spot if {
	placement.profile == "spot" with input as unlabelled_driver({})
}

test_default_profile_from_config if {
	placement.profile == "on-demand" with input as unlabelled_driver({})
		with data.sparkplace.config.defaultProfile as "on-demand"
}

test_profile_label_key_is_config if {
	pod_in := object.union(unlabelled_driver({}), {"pod": spark_pod("driver", {"example.com/placement": "nvme"})})
	placement.profile == "nvme" with input as pod_in with data.sparkplace.config.profileLabel as "example.com/placement"
}

test_unknown_profile_denied_naming_valid_profiles_and_source if {
	placement.deny == {`unknown sparkplace profile "gpu" (from the pod label sparkplace.io/profile); valid profiles: fargate, nvme, on-demand, spot. Set the label to one of them, e.g. --conf spark.kubernetes.driver.label.sparkplace.io/profile=spot and --conf spark.kubernetes.executor.label.sparkplace.io/profile=spot`} with input as driver_input("gpu")
}

test_unknown_namespace_profile_denied_naming_the_namespace if {
	some msg in placement.deny with input as unlabelled_driver({"sparkplace.io/profile": "spto"})
	contains(msg, `"spto" (from the label sparkplace.io/profile of namespace team-a)`)
}

test_unknown_profile_fires_no_placement_rule if {
	count(placement.rules) == 0 with input as executor_input("gpu", "us-east-1a")
}
