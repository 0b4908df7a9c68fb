# Fargate: the pod carries the label its Fargate profile selects on, and is steered to (and tolerates) the
# Fargate virtual nodes. No node-bound change applies: no capacity type, no hostPath, no init container,
# no zone pinning, no isolation selector (Fargate runs each pod on its own micro-VM).
package sparkplace.placement

labels[key] := value if {
	profile == "fargate"
	some key, value in cfg.fargate.labels
}

node_selector[key] := value if {
	profile == "fargate"
	some key, value in cfg.fargate.nodeSelector
}

tolerations contains t if {
	profile == "fargate"
	some t in cfg.fargate.tolerations
}

# METADATA
# title: fargate.profile
# description: The pod runs on Fargate, with the profile's selector label and none of the node-bound changes.
rules contains "fargate.profile" if profile == "fargate"
