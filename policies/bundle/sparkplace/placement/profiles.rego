# Which profile a pod runs under, and the few facts every concern needs.
package sparkplace.placement

# METADATA
# title: Configuration
# description: |-
#   data.sparkplace.config: the bundle's sparkplace/config/data.yaml with the --config file merged over it
#   (schema: policies/schemas/config.json). Read parameters through cfg.
cfg := data.sparkplace.config

# known_profiles are the profiles this bundle implements.
known_profiles := {"spot", "on-demand", "nvme", "fargate"}

# METADATA
# title: Spark role
# description: The pod's Spark role (driver or executor); undefined for anything else, which disables every rule.
role := input.role if input.role in {"driver", "executor"}

# requested_profile: the pod's own label wins, then its namespace's label, then the configured default.
requested_profile := p if {
	p := input.pod.metadata.labels[cfg.profileLabel]
} else := p if {
	p := input.namespace.labels[cfg.profileLabel]
} else := cfg.defaultProfile

# profile_source says where requested_profile came from, for deny messages a user can act on.
profile_source := sprintf("pod label %s", [cfg.profileLabel]) if {
	input.pod.metadata.labels[cfg.profileLabel]
} else := sprintf("label %s of namespace %s", [cfg.profileLabel, input.namespace.name]) if {
	input.namespace.labels[cfg.profileLabel]
} else := "config defaultProfile"

# METADATA
# title: Profile
# description: |-
#   The profile a Spark pod runs under (spot, on-demand, nvme, fargate), from the pod's label, else its
#   namespace's, else config defaultProfile; undefined when the bundle does not know it (the pod is denied).
profile := requested_profile if {
	role
	requested_profile in known_profiles
}

# node_bound profiles run on cluster nodes: everything but Fargate gets zone, isolation and capacity rules.
node_bound if {
	profile
	profile != "fargate"
}

# METADATA
# title: Unknown profile
# description: An unknown profile is refused rather than guessed, so a typo cannot put a job on the wrong capacity.
deny contains msg if {
	role
	not requested_profile in known_profiles
	msg := sprintf(
		"unknown sparkplace profile %q (from the %s); valid profiles: %s. Set the label to one of them, e.g. --conf spark.kubernetes.driver.label.%s=spot and --conf spark.kubernetes.executor.label.%s=spot",
		[requested_profile, profile_source, concat(", ", sort(known_profiles)), cfg.profileLabel, cfg.profileLabel],
	)
}
