package sparkplace.placement_test

import data.sparkplace.placement

# nvme_executor is an nvme executor with Spark's two local-dir volumes, mounted as Spark mounts them.
nvme_executor(pod_security, container_security) := object.union(executor_input("nvme", "us-east-1a"), {"pod": {
	"metadata": {"labels": {"spark-role": "executor", "sparkplace.io/profile": "nvme"}},
	"spec": {
		"securityContext": pod_security,
		"volumes": [
			{"name": "spark-local-dir-1", "emptyDir": {}},
			{"name": "spark-local-dir-2", "emptyDir": {}},
			{"name": "spark-conf-volume-exec", "configMap": {"name": "conf"}},
		],
		"containers": [
			{
				"name": "spark-kubernetes-executor",
				"securityContext": container_security,
				"volumeMounts": [
					{"name": "spark-conf-volume-exec", "mountPath": "/opt/spark/conf"},
					{"name": "spark-local-dir-1", "mountPath": "/var/data/spark-a"},
					{"name": "spark-local-dir-2", "mountPath": "/var/data/spark-b"},
				],
			},
			{"name": "sidecar", "volumeMounts": [{"name": "spark-local-dir-1", "mountPath": "/elsewhere"}]},
		],
	},
}})

test_nvme_hostpath_local_dirs if {
	placement.local_dirs == {"type": "hostPath", "path": "/pv-disks/local"} with input as nvme_executor({}, {})
	placement.node_selector.disk == "nvme" with input as nvme_executor({}, {})
}

test_nvme_path_is_config if {
	placement.local_dirs.path == "/mnt/nvme0" with input as nvme_executor({}, {})
		with data.sparkplace.config.nvme.hostPath as "/mnt/nvme0"
}

test_chown_init_container_non_recursive_at_spark_mount_paths if {
	[c] := placement.init_containers with input as nvme_executor({}, {})
	c.name == "sparkplace-chown-local-dirs"
	c.command == ["chown", "185:185", "/var/data/spark-a", "/var/data/spark-b"]
	c.volumeMounts == [
		{"name": "spark-local-dir-1", "mountPath": "/var/data/spark-a"},
		{"name": "spark-local-dir-2", "mountPath": "/var/data/spark-b"},
	]
	c.securityContext == {
		"runAsUser": 0, "runAsNonRoot": false, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
		"capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
	}
	c.resources.limits.memory == "32Mi"
}

test_chown_uses_pod_security_context if {
	# EMR's images: uid 999, fsGroup 65534 and no runAsGroup.
	[c] := placement.init_containers with input as nvme_executor({"runAsUser": 999, "fsGroup": 65534}, {})
	c.command[1] == "999:65534"
}

test_chown_container_security_context_wins if {
	[c] := placement.init_containers with input as nvme_executor({"runAsUser": 999, "runAsGroup": 1000}, {"runAsUser": 1001, "runAsGroup": 1002})
	c.command[1] == "1001:1002"
}

test_chown_defaults_are_config if {
	[c] := placement.init_containers with input as nvme_executor({}, {})
		with data.sparkplace.config.nvme.defaultUID as 999
		with data.sparkplace.config.nvme.defaultGID as 1000
	c.command[1] == "999:1000"
}

test_nvme_without_local_dirs_only_selects_nodes if {
	pod_in := executor_input("nvme", "us-east-1a")
	placement.local_dirs == null with input as pod_in
	placement.init_containers == [] with input as pod_in
	placement.node_selector.disk == "nvme" with input as pod_in
	not "nvme.chown-init" in placement.rules with input as pod_in
}

test_spot_profile_leaves_local_dirs_alone if {
	pod_in := object.union(nvme_executor({}, {}), {"pod": {"metadata": {"labels": {"sparkplace.io/profile": "spot"}}}})
	placement.local_dirs == null with input as pod_in
	placement.init_containers == [] with input as pod_in
}

test_nvme_rules if {
	placement.rules == {
		"capacity.executor-spot", "isolation.spark-nodes", "nvme.chown-init", "nvme.hostpath-local-dirs",
		"nvme.nodes", "spot.executors-spread-over-pools", "zone.executor-follows-driver",
	} with input as nvme_executor({}, {})
}
