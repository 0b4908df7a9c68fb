# Capacity type: drivers on on-demand nodes (losing a driver loses the job), executors on spot where the
# profile allows it (losing an executor only loses its tasks).
package sparkplace.placement

# capacity is the label convention in use: the preset named by cfg.preset, with cfg.capacity's fields on top.
capacity := object.union(cfg.presets[cfg.preset], cfg.capacity)

# The rules test input.role, not role (equal for these two values): the rule index then skips the rules of
# the other role without evaluating them (see zone_executor).

# spot_profiles put executors on spot capacity.
spot_profiles := {"spot", "nvme"}

# METADATA
# title: capacity.driver-on-demand
# description: |-
#   A driver always runs on on-demand capacity (except on Fargate, which has no capacity type).
node_selector[capacity.key] := capacity.onDemand if {
	input.role == "driver"
	node_bound
}

rules contains "capacity.driver-on-demand" if {
	input.role == "driver"
	node_bound
}

# METADATA
# title: capacity.executor-on-demand
# description: |-
#   Under the on-demand profile executors run on on-demand capacity too.
node_selector[capacity.key] := capacity.onDemand if {
	input.role == "executor"
	profile == "on-demand"
}

rules contains "capacity.executor-on-demand" if {
	input.role == "executor"
	profile == "on-demand"
}

# METADATA
# title: capacity.executor-spot
# description: |-
#   Under spot profiles executors run on spot capacity and tolerate the spot taint.
node_selector[capacity.key] := capacity.spot if {
	input.role == "executor"
	profile in spot_profiles
}

tolerations contains t if {
	input.role == "executor"
	profile in spot_profiles
	some t in cfg.spot.tolerations
}

rules contains "capacity.executor-spot" if {
	input.role == "executor"
	profile in spot_profiles
}

# A preset name that is not defined is a configuration mistake; refuse instead of placing pods anywhere.
deny contains msg if {
	node_bound
	not cfg.presets[cfg.preset]
	msg := sprintf("sparkplace config: preset %q is not defined; defined presets: %s", [cfg.preset, concat(", ", sort(object.keys(cfg.presets)))])
}
