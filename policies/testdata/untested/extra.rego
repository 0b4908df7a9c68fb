# Rules no test covers (a team's labels, annotations and a denial): coverage drops well below 95%.
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

# A team's priority classes and scheduler, by namespace label: untested too.
priority_classes := {"gold": "spark-high", "silver": "spark-medium", "bronze": "spark-low"}

tier := input.namespace.labels["example.com/tier"]

annotations["example.com/priority-class"] := priority_classes[tier] if {
	role
	tier in object.keys(priority_classes)
}

annotations["example.com/tier"] := tier if {
	role
	tier
}

rules contains "custom.tier" if {
	role
	tier in object.keys(priority_classes)
}

deny contains msg if {
	role
	tier
	not tier in object.keys(priority_classes)
	msg := sprintf("unknown tier %q in label example.com/tier of namespace %s; known: %s", [
		tier,
		input.namespace.name,
		concat(", ", sort(object.keys(priority_classes))),
	])
}

labels["example.com/owner"] := owner if {
	role == "driver"
	owner := input.pod.metadata.annotations["example.com/owner"]
	owner != ""
}

rules contains "custom.owner" if {
	role == "driver"
	input.pod.metadata.annotations["example.com/owner"] != ""
}
