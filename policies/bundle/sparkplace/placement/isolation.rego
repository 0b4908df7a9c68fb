# Isolation: Spark pods run on nodes dedicated to Spark (selected by label, kept free of other workloads by a
# taint), so a noisy shuffle does not starve other services and Spark nodes can scale on their own.
# Turned off with isolation.enabled: false in the config.
package sparkplace.placement

# METADATA
# title: isolation.spark-nodes
# description: Node-bound Spark pods go to the dedicated Spark nodes (cfg.isolation), unless turned off.
isolated if {
	node_bound
	cfg.isolation.enabled
}

node_selector[key] := value if {
	isolated
	some key, value in cfg.isolation.nodeSelector
}

tolerations contains t if {
	isolated
	some t in cfg.isolation.tolerations
}

rules contains "isolation.spark-nodes" if isolated
