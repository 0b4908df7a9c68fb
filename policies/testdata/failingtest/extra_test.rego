package sparkplace.placement_test

import data.sparkplace.placement

test_drivers_on_spot_is_wrong if {
	placement.node_selector["eks.amazonaws.com/capacityType"] == "SPOT" with input as driver_input("spot")
}
