package sparkplace.placement_test

import data.sparkplace.placement

etl_driver := object.union(driver_input("spot"), {"namespace": {"name": "etl"}})

test_team_from_the_policy_data if {
	d := placement.decision with input as etl_driver
	d.labels["example.com/team"] == "data-platform"
	"custom.team-label" in d.rules
}

test_no_team_for_a_namespace_not_in_the_table if {
	d := placement.decision with input as driver_input("spot")
	not d.labels["example.com/team"]
}

test_cost_center_from_the_config if {
	placement.labels["example.com/cost-center"] == "cc-42" with input as etl_driver
		with data.sparkplace.config.custom.teams.costCenter as "cc-42"
}
