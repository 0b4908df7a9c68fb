package sparkplace.placement_test

import data.sparkplace.placement

test_batch_nodes if {
	placement.node_selector.workload == "batch" with input as driver_input("spot")
}
