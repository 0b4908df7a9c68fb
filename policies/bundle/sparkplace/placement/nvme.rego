# NVMe: Spark's scratch space (shuffle, spill) on the node's NVMe instance store instead of the root volume.
#
# Only the plain emptyDirs Spark creates for its local dirs move; tmpfs (medium: Memory) and size-limited
# emptyDirs were asked for on purpose and PVCs or hostPaths are the user's: those stay as they are (the
# annotation says so), and a pod with nothing to move gets neither the NVMe selector nor an init container.
#
# Where they move depends on the namespace's Pod Security level (nvme_mode):
#   hostPath   each local dir gets its own host directory, <nvme.hostPath>/<namespace>/<pod>/<volume>, which
#              an init container records the pod's UID beside and hands to Spark's user, mode 0700;
#   ephemeral  a generic ephemeral volume of nvme.ephemeral.storageClassName (a local-NVMe StorageClass),
#              owned through the pod's fsGroup: what baseline and restricted allow.
package sparkplace.placement

# nvme_pod: the nvme profile, on a node-bound pod.
nvme_pod if profile == "nvme"

# spark_containers are the containers named as Spark names its own.
spark_containers := [c |
	some c in input.pod.spec.containers
	c.name in {"spark-kubernetes-driver", "spark-kubernetes-executor"}
]

# spark_container is the container Spark runs in: the one named as Spark names it, else the last one (Spark
# appends its container after the other containers of a pod template, which come first).
spark_container := spark_containers[0] if {
	count(spark_containers) > 0
} else := input.pod.spec.containers[count(input.pod.spec.containers) - 1]

# local_dir_mounts are the Spark container's mounts of spark-local-dir-* volumes, in the container's order.
local_dir_mounts := [mount |
	some mount in spark_container.volumeMounts
	startswith(mount.name, "spark-local-dir-")
]

# movable: the disk-backed emptyDir without a size limit that Spark creates for a local dir, or one this
# profile already moved (a second admission, after another webhook, must decide the same).
movable(name) if {
	some volume in input.pod.spec.volumes
	volume.name == name
	object.get(volume.emptyDir, "medium", "") == ""
	object.get(volume.emptyDir, "sizeLimit", null) == null
}

movable(name) if {
	some volume in input.pod.spec.volumes
	volume.name == name
	startswith(volume.hostPath.path, sprintf("%s/%s/", [cfg.nvme.hostPath, input.namespace.name]))
	endswith(volume.hostPath.path, sprintf("/%s", [name]))
}

movable(name) if {
	some volume in input.pod.spec.volumes
	volume.name == name
	volume.ephemeral.volumeClaimTemplate.spec.storageClassName == cfg.nvme.ephemeral.storageClassName
}

# nvme_volumes are the local dirs that move to NVMe, in the Spark container's order.
nvme_volumes := [mount.name | some mount in local_dir_mounts; movable(mount.name)]

# moves_local_dirs: the nvme profile has local dirs of Spark's own to move.
moves_local_dirs if {
	nvme_pod
	count(nvme_volumes) > 0
}

# METADATA
# title: nvme.nodes
# description: |-
#   Pods whose local dirs go to NVMe go to nodes that have it.
node_selector[key] := value if {
	moves_local_dirs
	some key, value in cfg.nvme.nodeSelector
}

rules contains "nvme.nodes" if moves_local_dirs

# pod_security_level is the level the API server enforces on the namespace's pods: its label, the cluster's
# default when unlabelled, restricted for a value Pod Security does not know (as Pod Security itself does).
pod_security_level := level if {
	level := input.namespace.podSecurity
	level in {"privileged", "baseline", "restricted"}
} else := "restricted" if {
	input.namespace.podSecurity != ""
} else := cfg.podSecurity.defaultEnforce

# ephemeral_requested: config puts this namespace (or every namespace) on ephemeral volumes.
ephemeral_requested if cfg.nvme.mode == "ephemeral"

ephemeral_requested if input.namespace.name in cfg.nvme.ephemeral.namespaces

# has_pod_name: the pod is named at admission (Spark names its pods); a generateName pod cannot get a host
# directory of its own.
has_pod_name if not input.pod.metadata.generateName

# nvme_mode is where the local dirs go; undefined when nowhere (see the deny rules).
nvme_mode := "ephemeral" if {
	ephemeral_requested
	cfg.nvme.ephemeral.storageClassName != ""
} else := "hostPath" if {
	not ephemeral_requested
	pod_security_level == "privileged"
	has_pod_name
} else := "ephemeral" if {
	not ephemeral_requested
	cfg.nvme.ephemeral.storageClassName != ""
}

# local_dirs_type: hostPath also when nothing moves (or the pod is denied), where it only names the root.
local_dirs_type := "ephemeral" if nvme_mode == "ephemeral"

else := "hostPath"

# METADATA
# title: nvme.hostpath-local-dirs
# description: |-
#   local_dirs lists what moves (possibly nothing, so that Apply still reports the local dirs it leaves alone).
local_dirs := {"type": "hostPath", "path": cfg.nvme.hostPath, "volumes": nvme_volumes} if {
	nvme_pod
	count(local_dir_mounts) > 0
	local_dirs_type == "hostPath"
}

local_dirs := {
	"type": "ephemeral",
	"volumes": nvme_volumes,
	"storageClassName": cfg.nvme.ephemeral.storageClassName,
	"size": cfg.nvme.ephemeral.size,
	"fsGroup": fs_group,
} if {
	nvme_pod
	count(local_dir_mounts) > 0
	local_dirs_type == "ephemeral"
}

rules contains "nvme.hostpath-local-dirs" if {
	moves_local_dirs
	nvme_mode == "hostPath"
}

rules contains "nvme.ephemeral-local-dirs" if {
	moves_local_dirs
	nvme_mode == "ephemeral"
}

# fs_group owns ephemeral local dirs: the pod's fsGroup when it has one, else Spark's group.
fs_group := group if {
	group := input.pod.spec.securityContext.fsGroup
} else := run_as_gid

pod_security_fix := sprintf(
	"set nvme.ephemeral.storageClassName in sparkplace's config to a local-NVMe StorageClass (Spark's local dirs then become generic ephemeral volumes, which every Pod Security level allows), or label the namespace %s=privileged, or pick another profile with the label %s",
	["pod-security.kubernetes.io/enforce", cfg.profileLabel],
)

deny contains msg if {
	moves_local_dirs
	not nvme_mode
	not ephemeral_requested
	has_pod_name
	msg := sprintf(
		"sparkplace nvme profile: namespace %s enforces Pod Security %q, which refuses the hostPath volumes the nvme profile puts Spark's local dirs on, and no alternative is configured: %s",
		[input.namespace.name, pod_security_level, pod_security_fix],
	)
}

deny contains msg if {
	moves_local_dirs
	not nvme_mode
	not ephemeral_requested
	not has_pod_name
	msg := sprintf(
		"sparkplace nvme profile: the pod has no name at admission (generateName %q), so it cannot get a host directory of its own, and no alternative is configured: %s",
		[input.pod.metadata.generateName, pod_security_fix],
	)
}

deny contains msg if {
	moves_local_dirs
	not nvme_mode
	ephemeral_requested
	msg := sprintf(
		"sparkplace nvme profile: config puts namespace %s on generic ephemeral volumes (nvme.mode or nvme.ephemeral.namespaces), but nvme.ephemeral.storageClassName is empty: set it to a local-NVMe StorageClass",
		[input.namespace.name],
	)
}

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

# local_dirs_script runs in the init container: $1 is the pod's own directory (<nvme root>/<namespace>/<pod>),
# $2 the owner (uid:gid), the rest the local dirs' volume names; the kubelet made each <pod dir>/<volume> (a
# hostPath DirectoryOrCreate, root-owned) before any container starts. It records the pod's UID for the node
# agent, closes the pod's directory, and hands each local dir - only the directory itself, never what is in
# it - to Spark's user with mode 0700, so no other pod on the node can enter it. chown to root first makes the
# chmod work (only CAP_CHOWN is held) even on the directory of an earlier pod of the same name. That pod's
# local dirs, when the node agent has not removed them yet (the record holds another UID), are renamed aside
# (.sparkplace-stale-<its UID>-<volume>, in place: a rename within the directory needs no rights on what it
# renames) and replaced by empty ones, which the kubelet then mounts: the new pod never sees the old one's
# files, and the agent removes them. A restarted init container finds its own UID and renames nothing.
local_dirs_script := `set -eu
cd "$1"
owner=$2
shift 2
umask 077
chmod 0700 .
previous=$(cat .sparkplace-pod-uid 2>/dev/null || true)
if [ -n "$previous" ] && [ "$previous" != "$POD_UID" ]; then
  for d in "$@"; do
    stale=".sparkplace-stale-$previous-$d"
    if [ ! -e "$stale" ] && [ -d "$d" ] && [ ! -L "$d" ]; then
      mv "$d" "$stale"
    fi
    [ -e "$d" ] || mkdir "$d"
  done
fi
printf '%s\n' "$POD_UID" > .sparkplace-pod-uid
for d in "$@"; do
  if [ -L "$d" ] || [ ! -d "$d" ]; then
    echo "sparkplace: $PWD/$d is not a directory" >&2
    exit 1
  fi
  chown 0:0 "$d"
  chmod 0700 "$d"
  chown "$owner" "$d"
done`

# local_dirs_mount is where the init container sees the pod's directory.
local_dirs_mount := "/sparkplace/local-dirs"

# METADATA
# title: nvme.chown-init
# description: |-
#   The init container has what the script needs and nothing more: root with CAP_CHOWN only, no privilege
#   escalation, the runtime's seccomp profile, a read-only root filesystem, and only the pod's own directory.
init_containers := [{
	"name": "sparkplace-chown-local-dirs",
	"image": cfg.nvme.initImage,
	"imagePullPolicy": "IfNotPresent",
	"command": array.concat(
		[
			"sh", "-c", local_dirs_script, "sparkplace-local-dirs", local_dirs_mount,
			sprintf("%s:%s", [format_int(run_as_uid, 10), format_int(run_as_gid, 10)]),
		],
		nvme_volumes,
	),
	"env": [{"name": "POD_UID", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.uid"}}}],
	"volumeMounts": [{"name": "sparkplace-local-dirs", "mountPath": local_dirs_mount}],
	"resources": cfg.nvme.initResources,
	"securityContext": {
		"runAsUser": 0,
		"runAsNonRoot": false,
		"allowPrivilegeEscalation": false,
		"readOnlyRootFilesystem": true,
		"capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
		"seccompProfile": {"type": "RuntimeDefault"},
	},
}] if {
	moves_local_dirs
	nvme_mode == "hostPath"
}

rules contains "nvme.chown-init" if {
	moves_local_dirs
	nvme_mode == "hostPath"
}

deny contains msg if {
	moves_local_dirs
	not cfg.nvme.mode in {"auto", "ephemeral"}
	msg := sprintf("sparkplace nvme profile: config nvme.mode is %q; want auto or ephemeral", [cfg.nvme.mode])
}
