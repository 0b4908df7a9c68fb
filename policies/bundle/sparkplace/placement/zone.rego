# Zone: executors run in their driver's availability zone, so shuffle traffic stays in one zone (no
# cross-zone data transfer charges, lower latency) and a zone outage hits a job once.
package sparkplace.placement

# driver_zone is the zone of the node the driver runs on; undefined while it is unknown.
driver_zone := input.driver.zone if input.driver.zone != ""

# When the driver's zone is known, a required node affinity pins the executor to it.
node_affinity contains requirement if {
	role == "executor"
	node_bound
	requirement := {"key": cfg.zone.topologyKey, "operator": "In", "values": [driver_zone]}
}

rules contains "zone.executor-follows-driver" if {
	role == "executor"
	node_bound
	driver_zone
}

# When it is not (the driver is not scheduled yet, or not found), a required pod affinity to the driver
# lets the scheduler put the executor in whichever zone the driver lands in.
pod_affinity contains term if {
	role == "executor"
	node_bound
	not driver_zone
	input.app.id != ""
	term := {
		"labelSelector": {"matchLabels": {"spark-app-selector": input.app.id, "spark-role": "driver"}},
		"topologyKey": cfg.zone.topologyKey,
	}
}

rules contains "zone.executor-affinity-fallback" if {
	role == "executor"
	node_bound
	not driver_zone
	input.app.id != ""
}
