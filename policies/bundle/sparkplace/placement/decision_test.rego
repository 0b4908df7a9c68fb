# Tests of the assembled decision, and the input builders the other *_test.rego files share.
package sparkplace.placement_test

import data.sparkplace.placement

# spark_pod builds the reduced pod Spark creates: the role label, the app selector, optional extra labels.
spark_pod(role, labels) := {
	"metadata": {"labels": object.union({"spark-role": role, "spark-app-selector": "spark-0123456789abcdef0123456789abcdef"}, labels)},
	"spec": {"containers": [{"name": sprintf("spark-kubernetes-%s", [role])}]},
}

# driver_input is a driver pod under the given profile (set as a pod label).
driver_input(profile) := {
	"operation": "CREATE",
	"role": "driver",
	"app": {"id": "spark-0123456789abcdef0123456789abcdef", "hasID": true},
	"namespace": {"name": "spark-jobs"},
	"driver": {"found": false},
	"pod": spark_pod("driver", {"sparkplace.io/profile": profile}),
}

# executor_input is an executor whose driver runs in zone (empty: not scheduled yet) under the given profile.
executor_input(profile, zone) := {
	"operation": "CREATE",
	"role": "executor",
	"app": {"id": "spark-0123456789abcdef0123456789abcdef", "hasID": true},
	"namespace": {"name": "spark-jobs"},
	"driver": object.union({"found": true, "name": "job-driver", "role": "driver"}, driver_node(zone)),
	"zone": zone_of(zone),
	"pod": spark_pod("executor", {"sparkplace.io/profile": profile}),
}

# unlabelled_driver is a driver without a profile label, in a namespace with the given labels.
unlabelled_driver(namespace_labels) := object.union(
	object.remove(driver_input("spot"), {"pod", "namespace"}),
	{"pod": spark_pod("driver", {}), "namespace": {"name": "team-a", "labels": namespace_labels}},
)

driver_node(zone) := {} if zone == ""

driver_node(zone) := {"zone": zone, "nodeName": "node-a", "scheduled": true} if zone != ""

zone_of(zone) := {} if zone == ""

zone_of(zone) := {"value": zone, "source": "driver"} if zone != ""

test_spot_driver_decision if {
	placement.decision == {
		"nodeSelector": {"eks.amazonaws.com/capacityType": "ON_DEMAND", "noderole": "spark"},
		"tolerations": [{"key": "noderole", "operator": "Equal", "value": "spark", "effect": "NoSchedule"}],
		"annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false", "karpenter.sh/do-not-disrupt": "true"},
		"rules": ["autoscaler.driver-not-evicted", "capacity.driver-on-demand", "isolation.spark-nodes"],
	} with input as driver_input("spot")
}

test_spot_executor_decision if {
	placement.decision == {
		"nodeSelector": {"eks.amazonaws.com/capacityType": "SPOT", "noderole": "spark"},
		"tolerations": [
			{"key": "noderole", "operator": "Equal", "value": "spark", "effect": "NoSchedule"},
			{"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
		],
		"nodeAffinity": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a"]}],
		"labels": {"sparkplace.io/zone-strictness": "bounded-2m"},
		"topologySpreadConstraints": [{
			"maxSkew": 1, "topologyKey": "node.kubernetes.io/instance-type", "whenUnsatisfiable": "ScheduleAnyway",
			"labelSelector": {"matchLabels": {"spark-role": "executor"}},
			"matchLabelKeys": ["spark-app-selector"],
		}],
		"rules": ["capacity.executor-spot", "isolation.spark-nodes", "spot.executors-spread-over-pools", "zone.executor-follows-driver"],
	} with input as executor_input("spot", "us-east-1a")
}

test_non_spark_role_gets_empty_decision if {
	placement.decision == {} with input as object.union(driver_input("spot"), {"role": "shuffle-service"})
}

test_empty_fields_are_left_out if {
	d := placement.decision with input as executor_input("fargate", "us-east-1a")
	not "localDirs" in object.keys(d)
	not "initContainers" in object.keys(d)
	not "nodeAffinity" in object.keys(d)
	not "podAffinity" in object.keys(d)
}

test_deny_carries_only_reasons if {
	d := placement.decision with input as driver_input("gpu")
	object.keys(d) == {"deny"} # no placement rule fired
	count(d.deny) == 1
}
