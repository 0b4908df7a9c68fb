# NVMe: Spark's scratch space (shuffle, spill) on the node's NVMe instance store instead of the root volume.
# Spark's spark-local-dir-* volumes become hostPath volumes under cfg.nvme.hostPath, keeping their names and
# mount paths so SPARK_LOCAL_DIRS stays valid; Spark's own blockmgr-<uuid> sub-directories keep executors
# that share a node apart.
package sparkplace.placement

# nvme_pod: the nvme profile, on a node-bound pod.
nvme_pod if profile == "nvme"

# NVMe pods go to nodes that have the NVMe mount, whether or not Spark created local dirs yet.
node_selector[key] := value if {
	nvme_pod
	some key, value in cfg.nvme.nodeSelector
}

rules contains "nvme.nodes" if nvme_pod

# local_dir_volumes are the names of Spark's local-dir volumes in the pod.
local_dir_volumes contains volume.name if {
	some volume in input.pod.spec.volumes
	startswith(volume.name, "spark-local-dir-")
}

# spark_container is Spark's container: the first one (a pod template may add sidecars after it).
spark_container := input.pod.spec.containers[0]

# local_dir_mounts are the Spark container's mounts of those volumes, in the container's order.
local_dir_mounts := [{"name": mount.name, "mountPath": mount.mountPath} |
	some mount in spark_container.volumeMounts
	mount.name in local_dir_volumes
]

# has_local_dirs: only pods with local-dir volumes get hostPath and the chown init container.
has_local_dirs if {
	nvme_pod
	count(local_dir_mounts) > 0
}

local_dirs := {"type": "hostPath", "path": cfg.nvme.hostPath} if has_local_dirs

rules contains "nvme.hostpath-local-dirs" if has_local_dirs

# run_as_uid: who Spark runs as, which must own the local dirs: the Spark container's runAsUser, else the
# pod's, else the configured default.
run_as_uid := uid if {
	uid := spark_container.securityContext.runAsUser
} else := uid if {
	uid := input.pod.spec.securityContext.runAsUser
} else := cfg.nvme.defaultUID

# run_as_gid: the Spark container's runAsGroup, else the pod's runAsGroup, else its fsGroup, else the default.
run_as_gid := gid if {
	gid := spark_container.securityContext.runAsGroup
} else := gid if {
	gid := input.pod.spec.securityContext.runAsGroup
} else := gid if {
	gid := input.pod.spec.securityContext.fsGroup
} else := cfg.nvme.defaultGID

# A hostPath directory is created by the kubelet as root; the init container hands each mount root to the
# Spark user. The chown is deliberately NOT recursive: the directory is shared with other pods' blockmgr-*
# data, which must not change hands. It runs as root with only CAP_CHOWN and a read-only root filesystem.
init_containers := [{
	"name": "sparkplace-chown-local-dirs",
	"image": cfg.nvme.initImage,
	"imagePullPolicy": "IfNotPresent",
	"command": array.concat(
		["chown", sprintf("%s:%s", [format_int(run_as_uid, 10), format_int(run_as_gid, 10)])],
		[mount.mountPath | some mount in local_dir_mounts],
	),
	"volumeMounts": local_dir_mounts,
	"resources": cfg.nvme.initResources,
	"securityContext": {
		"runAsUser": 0,
		"runAsNonRoot": false,
		"allowPrivilegeEscalation": false,
		"readOnlyRootFilesystem": true,
		"capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
	},
}] if has_local_dirs

rules contains "nvme.chown-init" if has_local_dirs
