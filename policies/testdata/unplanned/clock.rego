package sparkplace.placement

# A user policy the plan evaluator leaves to topdown: it reads the clock (a non-deterministic builtin) and
# evaluates a rule with a replaced input (`with`).
notes contains "admitted before 1970" if time.now_ns() < 0

notes contains "the pod's own label picks its profile" if {
	p := requested_profile with input.pod.metadata.labels as {}
	requested_profile != p
}
