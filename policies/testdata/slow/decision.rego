package sparkplace.placement

# Replaces the embedded decision.rego with one that takes far longer than any deadline.
decision := {"rules": [sprintf("%d", [n])]} if {
	n := count([1 | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000); i != j])
}
