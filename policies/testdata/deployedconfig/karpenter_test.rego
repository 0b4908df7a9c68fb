# A platform team's test of its deployed config (karpenter.yaml): drivers on Karpenter's on-demand capacity.
package sparkplace.placement_test

import data.sparkplace.placement

test_driver_on_karpenter_on_demand if {
	placement.decision.nodeSelector["karpenter.sh/capacity-type"] == "on-demand" with input as driver_input("on-demand")
}
