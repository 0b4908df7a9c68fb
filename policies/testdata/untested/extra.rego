# A rule no test covers: coverage drops.
package sparkplace.placement

labels[key] := value if {
	role == "driver"
	input.namespace.name == "team-a"
	key := "team"
	value := "a"
}

labels["cost-center"] := center if {
	role == "executor"
	input.namespace.name == "team-b"
	center := concat("-", ["cc", input.namespace.name])
}

rules contains "custom.cost-center" if {
	role == "executor"
	input.namespace.name == "team-b"
}

rules contains "custom.team" if {
	role == "driver"
	input.namespace.name == "team-a"
}
