package sparkplace.placement_test

import data.sparkplace.placement

# nvme_pod_with builds an nvme executor from its volumes and containers.
nvme_pod_with(pod_security, volumes, containers) := object.union(executor_input("nvme", "us-east-1a"), {"pod": {
	"metadata": {"labels": {"spark-role": "executor", "sparkplace.io/profile": "nvme"}},
	"spec": {"securityContext": pod_security, "volumes": volumes, "containers": containers},
}})

spark_volumes := [
	{"name": "spark-local-dir-1", "emptyDir": {}},
	{"name": "spark-local-dir-2", "emptyDir": {}},
	{"name": "spark-conf-volume-exec", "configMap": {"name": "conf"}},
]

spark_executor_container(security) := {
	"name": "spark-kubernetes-executor",
	"securityContext": security,
	"volumeMounts": [
		{"name": "spark-conf-volume-exec", "mountPath": "/opt/spark/conf"},
		{"name": "spark-local-dir-1", "mountPath": "/var/data/spark-a"},
		{"name": "spark-local-dir-2", "mountPath": "/var/data/spark-b"},
	],
}

# nvme_executor is an nvme executor with Spark's two local-dir volumes, mounted as Spark mounts them.
nvme_executor(pod_security, container_security) := nvme_pod_with(pod_security, spark_volumes, [
	spark_executor_container(container_security),
	{"name": "sidecar", "volumeMounts": [{"name": "spark-local-dir-1", "mountPath": "/elsewhere"}]},
])

in_namespace(pod_in, level) := object.union(pod_in, {"namespace": {"name": "team-psa", "podSecurity": level}})

test_nvme_hostpath_local_dirs if {
	placement.local_dirs == {
		"type": "hostPath", "path": "/pv-disks/local",
		"volumes": ["spark-local-dir-1", "spark-local-dir-2"],
	} with input as nvme_executor({}, {})
	placement.node_selector.disk == "nvme" with input as nvme_executor({}, {})
}

test_nvme_path_is_config if {
	placement.local_dirs.path == "/mnt/nvme0" with input as nvme_executor({}, {})
		with data.sparkplace.config.nvme.hostPath as "/mnt/nvme0"
}

test_init_container_prepares_only_the_pods_own_directory if {
	[c] := placement.init_containers with input as nvme_executor({}, {})
	c.name == "sparkplace-chown-local-dirs"
	array.slice(c.command, 0, 2) == ["sh", "-c"]
	array.slice(c.command, 3, 10) == [
		"sparkplace-local-dirs", "/sparkplace/local-dirs", "185:185",
		"spark-local-dir-1", "spark-local-dir-2",
	]
	c.volumeMounts == [{"name": "sparkplace-local-dirs", "mountPath": "/sparkplace/local-dirs"}]
	c.env == [{"name": "POD_UID", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.uid"}}}]
	c.securityContext == {
		"runAsUser": 0, "runAsNonRoot": false, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
		"capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}, "seccompProfile": {"type": "RuntimeDefault"},
	}
	c.resources.limits.memory == "32Mi"
}

test_chown_uses_pod_security_context if {
	# EMR's images: uid 999, fsGroup 65534 and no runAsGroup.
	[c] := placement.init_containers with input as nvme_executor({"runAsUser": 999, "fsGroup": 65534}, {})
	c.command[5] == "999:65534"
}

test_chown_container_security_context_wins if {
	[c] := placement.init_containers with input as nvme_executor({"runAsUser": 999, "runAsGroup": 1000}, {"runAsUser": 1001, "runAsGroup": 1002})
	c.command[5] == "1001:1002"
}

test_chown_defaults_are_config if {
	[c] := placement.init_containers with input as nvme_executor({}, {})
		with data.sparkplace.config.nvme.defaultUID as 999
		with data.sparkplace.config.nvme.defaultGID as 1000
	c.command[5] == "999:1000"
}

# A pod template with a sidecar: Spark appends its own container last; the sidecar's uid is not Spark's.
test_spark_container_is_last_after_template_sidecars if {
	sidecar := {"name": "log-shipper", "securityContext": {"runAsUser": 1337}, "volumeMounts": [{"name": "spark-local-dir-1", "mountPath": "/logs"}]}
	spark := object.union(spark_executor_container({"runAsUser": 185}), {"name": "main"})
	pod_in := nvme_pod_with({}, spark_volumes, [sidecar, spark])
	[c] := placement.init_containers with input as pod_in
	c.command[5] == "185:185"
	placement.local_dirs.volumes == ["spark-local-dir-1", "spark-local-dir-2"] with input as pod_in
}

test_spark_container_found_by_name if {
	pod_in := nvme_pod_with({}, spark_volumes, [spark_executor_container({"runAsUser": 999}), {"name": "sidecar", "securityContext": {"runAsUser": 1}}])
	[c] := placement.init_containers with input as pod_in
	c.command[5] == "999:185"
}

test_tmpfs_and_size_limited_local_dirs_stay if {
	volumes := [
		{"name": "spark-local-dir-1", "emptyDir": {"medium": "Memory"}},
		{"name": "spark-local-dir-2", "emptyDir": {"sizeLimit": "10Gi"}},
	]
	pod_in := nvme_pod_with({}, volumes, [spark_executor_container({})])
	placement.local_dirs.volumes == [] with input as pod_in
	placement.init_containers == [] with input as pod_in
	not placement.node_selector.disk with input as pod_in
}

test_user_volumes_get_no_selector_and_no_chown if {
	volumes := [
		{"name": "spark-local-dir-1", "persistentVolumeClaim": {"claimName": "scratch"}},
		{"name": "spark-local-dir-2", "hostPath": {"path": "/pv-disks/local/blockmgr-victim"}},
	]
	pod_in := nvme_pod_with({}, volumes, [spark_executor_container({})])
	placement.local_dirs.volumes == [] with input as pod_in
	placement.init_containers == [] with input as pod_in
	not placement.node_selector.disk with input as pod_in
	not "nvme.nodes" in placement.rules with input as pod_in
}

test_only_sparks_own_dirs_move_beside_a_user_volume if {
	volumes := [
		{"name": "spark-local-dir-1", "emptyDir": {}},
		{"name": "spark-local-dir-2", "persistentVolumeClaim": {"claimName": "scratch"}},
	]
	pod_in := nvme_pod_with({}, volumes, [spark_executor_container({})])
	placement.local_dirs.volumes == ["spark-local-dir-1"] with input as pod_in
	[c] := placement.init_containers with input as pod_in
	array.slice(c.command, 6, 10) == ["spark-local-dir-1"]
}

test_nvme_without_local_dirs_gets_nothing if {
	pod_in := executor_input("nvme", "us-east-1a")
	placement.local_dirs == null with input as pod_in
	placement.init_containers == [] with input as pod_in
	not placement.node_selector.disk with input as pod_in
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

test_hostpath_in_privileged_and_unlabelled_namespaces if {
	every level in {"privileged", ""} {
		placement.local_dirs.type == "hostPath" with input as in_namespace(nvme_executor({}, {}), level)
	}
}

test_baseline_and_restricted_denied_without_alternative if {
	every level in {"baseline", "restricted"} {
		d := placement.decision with input as in_namespace(nvme_executor({}, {}), level)
		[msg] := d.deny
		contains(msg, sprintf("namespace team-psa enforces Pod Security %q", [level]))
		contains(msg, "nvme.ephemeral.storageClassName")
		not d.initContainers
	}
}

test_unknown_level_counts_as_restricted if {
	d := placement.decision with input as in_namespace(nvme_executor({}, {}), "strict")
	contains(d.deny[0], `Pod Security "restricted"`)
}

test_cluster_default_level_is_config if {
	d := placement.decision with input as nvme_executor({}, {})
		with data.sparkplace.config.podSecurity.defaultEnforce as "baseline"
	contains(d.deny[0], `Pod Security "baseline"`)
}

test_restricted_uses_ephemeral_volumes_with_fs_group if {
	pod_in := in_namespace(nvme_executor({"runAsUser": 999, "fsGroup": 65534}, {}), "restricted")
	d := placement.decision with input as pod_in
		with data.sparkplace.config.nvme.ephemeral.storageClassName as "local-nvme"
	d.localDirs == {
		"type": "ephemeral", "storageClassName": "local-nvme", "size": "100Gi", "fsGroup": 65534,
		"volumes": ["spark-local-dir-1", "spark-local-dir-2"],
	}
	not d.initContainers
	not d.deny
	d.nodeSelector.disk == "nvme"
	"nvme.ephemeral-local-dirs" in d.rules
	not "nvme.chown-init" in d.rules
}

test_ephemeral_fs_group_defaults_to_sparks_group if {
	d := placement.decision with input as in_namespace(nvme_executor({}, {}), "baseline")
		with data.sparkplace.config.nvme.ephemeral.storageClassName as "local-nvme"
	d.localDirs.fsGroup == 185
}

test_ephemeral_mode_for_any_namespace_by_config if {
	d := placement.decision with input as nvme_executor({}, {})
		with data.sparkplace.config.nvme.ephemeral.storageClassName as "local-nvme"
		with data.sparkplace.config.nvme.ephemeral.namespaces as ["spark-jobs"]
	d.localDirs.type == "ephemeral"
	e := placement.decision with input as nvme_executor({}, {})
		with data.sparkplace.config.nvme.ephemeral.storageClassName as "local-nvme"
		with data.sparkplace.config.nvme.mode as "ephemeral"
	e.localDirs.type == "ephemeral"
}

test_ephemeral_mode_without_storage_class_is_denied if {
	d := placement.decision with input as nvme_executor({}, {})
		with data.sparkplace.config.nvme.mode as "ephemeral"
	contains(d.deny[0], "nvme.ephemeral.storageClassName is empty")
}

test_generate_name_pod_cannot_get_its_own_host_directory if {
	pod_in := object.union(nvme_executor({}, {}), {"pod": {"metadata": {"generateName": "job-"}}})
	d := placement.decision with input as pod_in
	contains(d.deny[0], `generateName "job-"`)
	e := placement.decision with input as pod_in
		with data.sparkplace.config.nvme.ephemeral.storageClassName as "local-nvme"
	e.localDirs.type == "ephemeral"
}

# A second admission (reinvocation) sees the local dirs this profile already moved: it decides the same.
test_reinvocation_keeps_moved_local_dirs if {
	volumes := [
		{"name": "spark-local-dir-1", "hostPath": {"path": "/pv-disks/local/spark-jobs/pi-exec-1/spark-local-dir-1", "type": "DirectoryOrCreate"}},
		{"name": "spark-local-dir-2", "hostPath": {"path": "/pv-disks/local/other-team/pi-exec-1/spark-local-dir-2"}},
	]
	pod_in := nvme_pod_with({}, volumes, [spark_executor_container({})])
	placement.local_dirs.volumes == ["spark-local-dir-1"] with input as pod_in
	ephemeral := nvme_pod_with({}, [{"name": "spark-local-dir-1", "ephemeral": {"volumeClaimTemplate": {"spec": {"storageClassName": "local-nvme"}}}}], [spark_executor_container({})])
	placement.local_dirs.volumes == ["spark-local-dir-1"] with input as in_namespace(ephemeral, "restricted")
		with data.sparkplace.config.nvme.ephemeral.storageClassName as "local-nvme"
}

test_chown_group_from_pod_run_as_group if {
	[c] := placement.init_containers with input as nvme_executor({"runAsUser": 999, "runAsGroup": 1000, "fsGroup": 65534}, {})
	c.command[5] == "999:1000"
}

test_unknown_mode_is_denied if {
	d := placement.decision with input as nvme_executor({}, {})
		with data.sparkplace.config.nvme.mode as "hostpath"
	contains(d.deny[0], `config nvme.mode is "hostpath"`)
}
