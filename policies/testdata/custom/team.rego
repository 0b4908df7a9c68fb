# A platform team's own policy with parameters: the team label of a namespace comes from the policy's data
# (sparkplace/custom/data.yaml, data.sparkplace.custom), the cost center from the deployment's config
# (custom.teams.costCenter in --config, cfg.custom).
package sparkplace.placement

# METADATA
# title: custom.team-label
# description: Spark pods carry their namespace's team, from the team table the policy ships.
labels["example.com/team"] := team if {
	role
	team := data.sparkplace.custom.teams.byNamespace[input.namespace.name]
}

labels["example.com/cost-center"] := center if {
	role
	center := cfg.custom.teams.costCenter
}

rules contains "custom.team-label" if {
	role
	data.sparkplace.custom.teams.byNamespace[input.namespace.name]
}
