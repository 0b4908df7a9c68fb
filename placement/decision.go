package placement

import (
	"path"

	corev1 "k8s.io/api/core/v1"
)

// Decision is what the policy bundle decides for one pod. It is data, produced by the Rego entry point
// data.sparkplace.placement.decision and decoded strictly: a field not listed here is a policy error.
type Decision struct {
	// NodeSelector entries are added to the pod's nodeSelector. A key the pod already selects on with another
	// value was set by the user and is respected (reported in Result.Respected).
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// Tolerations are appended unless an equal toleration is already present.
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// NodeAffinity requirements are ANDed into every required node selector term of the pod (a new term when
	// it has none). A requirement on a key the user already constrains is respected instead.
	NodeAffinity []corev1.NodeSelectorRequirement `json:"nodeAffinity,omitempty"`
	// PodAffinity terms are added as required pod affinity, unless an equal term is present or the user set a
	// required term with the same topology key. In PodAffinity, PreferredPodAffinity and
	// TopologySpreadConstraints, matchLabelKeys (and mismatchLabelKeys) select by the pod's own label values
	// as in the Kubernetes API, so a decision can say "this application's pods" without naming the
	// application: Apply resolves them from the pod's labels into the labelSelector (K=value in matchLabels,
	// K notin (value) in matchExpressions). A term with a key the pod does not carry is not added (the API
	// server would ignore the key and widen the term to every value's pods). See labelkeys.go.
	PodAffinity []corev1.PodAffinityTerm `json:"podAffinity,omitempty"`
	// PreferredNodeAffinity terms are added as preferred node affinity, unless an equal term is present. A
	// term on a key the user already constrains (nodeSelector, required or preferred node affinity) is
	// respected instead: the user's choice of, say, a zone wins over sparkplace's preference.
	PreferredNodeAffinity []corev1.PreferredSchedulingTerm `json:"preferredNodeAffinity,omitempty"`
	// PreferredPodAffinity terms are added as preferred pod affinity unless an equal term is present.
	PreferredPodAffinity []corev1.WeightedPodAffinityTerm `json:"preferredPodAffinity,omitempty"`
	// TopologySpreadConstraints are added unless an equal constraint is present or the user set one with the
	// same topology key. Guardrails allow only ScheduleAnyway: a spread never keeps a pod Pending.
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	// Labels and Annotations are set on the pod; existing keys with other values are respected.
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// LocalDirs, when set, changes Spark's spark-local-dir-* volumes, keeping their names and mount paths.
	LocalDirs *LocalDirs `json:"localDirs,omitempty"`
	// InitContainers are added (by name) before the pod's own init containers.
	InitContainers []corev1.Container `json:"initContainers,omitempty"`
	// SchedulerName and PriorityClassName are set when the pod has none.
	SchedulerName     string `json:"schedulerName,omitempty"`
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// Deny, when non-empty, rejects the pod with these reasons; nothing is applied.
	Deny []string `json:"deny,omitempty"`
	// Rules names the rules that fired, in the order the policy lists them.
	Rules []string `json:"rules,omitempty"`
	// Notes explain, for people, why the decision is what it is where the rule names do not say it (a zone
	// pin relaxed, and why); they go into the placement annotation.
	Notes []string `json:"notes,omitempty"`
}

// LocalDirsType is where Spark's local dirs move to.
type LocalDirsType string

const (
	// LocalDirsHostPath gives each local dir its own host directory, Path/<namespace>/<pod>/<volume>.
	LocalDirsHostPath LocalDirsType = "hostPath"
	// LocalDirsEphemeral gives each local dir a generic ephemeral volume of StorageClassName: what Pod Security
	// baseline and restricted allow where they refuse hostPath.
	LocalDirsEphemeral LocalDirsType = "ephemeral"
)

// LocalDirs says where Spark's scratch space (its spark-local-dir-* volumes) lives. Only the listed Volumes
// move, and only while they are the plain emptyDirs Spark creates: a tmpfs or size-limited emptyDir was asked
// for on purpose, and a PVC or hostPath is the user's; Apply leaves those alone and says so.
type LocalDirs struct {
	Type LocalDirsType `json:"type"`
	// Volumes are the names of the spark-local-dir-* volumes to move.
	Volumes []string `json:"volumes,omitempty"`
	// Path is the NVMe root for hostPath; the pod's directories are made under it (see PodDir), never Path
	// itself, so two pods never share one.
	Path string `json:"path,omitempty"`
	// StorageClassName and Size (a quantity, e.g. 100Gi) make each ephemeral volume's claim.
	StorageClassName string `json:"storageClassName,omitempty"`
	Size             string `json:"size,omitempty"`
	// FSGroup, when set, becomes the pod's fsGroup unless it has one: the owner of ephemeral volumes, set by
	// the kubelet instead of a root init container.
	FSGroup *int64 `json:"fsGroup,omitempty"`
}

// LocalDirsVolume is the hostPath volume of the pod's own directory, PodDir: the only volume an init container
// of a decision may mount (it records the pod's UID there and hands the local dirs to Spark's user).
const LocalDirsVolume = "sparkplace-local-dirs"

// PodUIDFile, in the pod's directory, holds the UID of the pod the directory belongs to (written by the init
// container), so the node agent never removes the directory of a live pod that reuses a name.
const PodUIDFile = ".sparkplace-pod-uid"

// StaleLocalDirPrefix starts the name the init container gives, in the pod's directory, to a local dir of an
// earlier pod of the same name that the node agent has not removed yet (<prefix><its UID>-<volume>); the
// agent removes it.
const StaleLocalDirPrefix = ".sparkplace-stale-"

// PodDir is the host directory of one pod's local dirs under the NVMe root: root/namespace/pod. Each local
// dir is PodDir/<volume name>.
func PodDir(root, namespace, pod string) string { return path.Join(root, namespace, pod) }
