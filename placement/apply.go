package placement

import (
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
)

// LocalDirVolumePrefix names the emptyDir volumes Spark creates for its local dirs (spark-local-dir-1, ...).
const LocalDirVolumePrefix = "spark-local-dir-"

// Field names a part of the pod that Apply may change; a patch needs to carry only the changed ones.
type Field int

const (
	FieldLabels Field = iota
	FieldAnnotations
	FieldNodeSelector
	FieldTolerations
	FieldAffinity
	FieldVolumes
	FieldInitContainers
	FieldSchedulerName
	FieldPriorityClassName
	FieldTopologySpreadConstraints
	FieldSecurityContext
	fieldCount
)

// Result reports what Apply did.
type Result struct {
	// Changed lists the fields Apply changed, in Field order; empty when the pod already had the decision.
	Changed []Field
	// Respected explains each part of the decision that was not applied because the pod already set it
	// differently (the user's explicit choice wins).
	Respected []string
}

// applier accumulates one application's changes.
type applier struct {
	pod       *corev1.Pod
	changed   [fieldCount]bool
	respected []string
}

func (a *applier) respect(format string, args ...any) {
	a.respected = append(a.respected, fmt.Sprintf(format, args...))
}

// Apply merges d into pod. It never removes or overrides what the pod already sets: a conflicting value is
// left alone and reported in Result.Respected. Applying the same decision twice gives the same pod as applying
// it once, so the webhook is safe under reinvocation. The caller validates d first (see Guardrails.Validate).
func Apply(pod *corev1.Pod, d *Decision) Result {
	a := &applier{pod: pod}
	a.labels(d.Labels)
	a.annotations(d.Annotations)
	a.nodeSelector(d.NodeSelector)
	a.tolerations(d.Tolerations)
	a.nodeAffinity(d.NodeAffinity)
	a.podAffinity(d.PodAffinity)
	a.preferredNodeAffinity(d.PreferredNodeAffinity)
	a.preferredPodAffinity(d.PreferredPodAffinity)
	a.topologySpread(d.TopologySpreadConstraints)
	a.localDirs(d.LocalDirs)
	a.initContainers(d.InitContainers)
	if d.SchedulerName != "" {
		switch pod.Spec.SchedulerName {
		case d.SchedulerName:
		case "", corev1.DefaultSchedulerName:
			pod.Spec.SchedulerName = d.SchedulerName
			a.changed[FieldSchedulerName] = true
		default:
			a.respect("schedulerName %q set on the pod (decision: %q)", pod.Spec.SchedulerName, d.SchedulerName)
		}
	}
	if d.PriorityClassName != "" {
		switch pod.Spec.PriorityClassName {
		case d.PriorityClassName:
		case "":
			pod.Spec.PriorityClassName = d.PriorityClassName
			a.changed[FieldPriorityClassName] = true
		default:
			a.respect("priorityClassName %q set on the pod (decision: %q)", pod.Spec.PriorityClassName, d.PriorityClassName)
		}
	}
	var res Result
	for f, c := range a.changed {
		if c {
			if res.Changed == nil {
				// Room for every field: one allocation, and the caller may add one (the annotation).
				res.Changed = make([]Field, 0, fieldCount)
			}
			res.Changed = append(res.Changed, Field(f))
		}
	}
	res.Respected = a.respected
	return res
}

// mergeMap adds want to *have without overriding existing keys; it reports whether *have changed.
func (a *applier) mergeMap(have *map[string]string, want map[string]string, what string) bool {
	changed := false
	var buf [16]string
	for _, k := range appendSortedKeys(buf[:0], want) {
		v := want[k]
		old, ok := (*have)[k]
		switch {
		case !ok:
			if *have == nil {
				*have = make(map[string]string, len(want))
			}
			(*have)[k] = v
			changed = true
		case old != v:
			a.respect("%s %s=%q set on the pod (decision: %q)", what, k, old, v)
		}
	}
	return changed
}

func (a *applier) labels(want map[string]string) {
	if a.mergeMap(&a.pod.Labels, want, "label") {
		a.changed[FieldLabels] = true
	}
}

func (a *applier) annotations(want map[string]string) {
	if a.mergeMap(&a.pod.Annotations, want, "annotation") {
		a.changed[FieldAnnotations] = true
	}
}

func (a *applier) nodeSelector(want map[string]string) {
	// A key the user constrains through required node affinity is theirs too.
	userAffinityKeys := requiredNodeAffinityKeys(a.pod)
	filtered := make(map[string]string, len(want))
	for k, v := range want {
		if _, ok := userAffinityKeys[k]; ok && a.pod.Spec.NodeSelector[k] != v {
			a.respect("node affinity on %s set on the pod (decision: nodeSelector %s=%q)", k, k, v)
			continue
		}
		filtered[k] = v
	}
	if a.mergeMap(&a.pod.Spec.NodeSelector, filtered, "nodeSelector") {
		a.changed[FieldNodeSelector] = true
	}
}

func (a *applier) tolerations(want []corev1.Toleration) {
	for _, t := range want {
		if slices.ContainsFunc(a.pod.Spec.Tolerations, func(have corev1.Toleration) bool { return sameToleration(have, t) }) {
			continue
		}
		a.pod.Spec.Tolerations = append(a.pod.Spec.Tolerations, t)
		a.changed[FieldTolerations] = true
	}
}

func (a *applier) nodeAffinity(want []corev1.NodeSelectorRequirement) {
	if len(want) == 0 {
		return
	}
	spec := &a.pod.Spec
	var terms []corev1.NodeSelectorTerm
	if spec.Affinity != nil && spec.Affinity.NodeAffinity != nil && spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		terms = spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	}
	var add []corev1.NodeSelectorRequirement
	for _, req := range want {
		if _, ok := spec.NodeSelector[req.Key]; ok {
			a.respect("nodeSelector %s=%q set on the pod (decision: node affinity %s %s %v)", req.Key, spec.NodeSelector[req.Key], req.Key, req.Operator, req.Values)
			continue
		}
		present, conflicting := requirementState(terms, req)
		switch {
		case conflicting:
			a.respect("node affinity on %s set on the pod (decision: %s %v)", req.Key, req.Operator, req.Values)
		case !present:
			add = append(add, req)
		}
	}
	if len(add) == 0 {
		return
	}
	if len(terms) == 0 {
		terms = []corev1.NodeSelectorTerm{{}}
	}
	for i := range terms {
		terms[i].MatchExpressions = append(terms[i].MatchExpressions, add...)
	}
	aff := ensureAffinity(spec)
	if aff.NodeAffinity == nil {
		aff.NodeAffinity = &corev1.NodeAffinity{}
	}
	aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: terms}
	a.changed[FieldAffinity] = true
}

// requirementState tells whether every term already holds req (present) or some term constrains req's key
// differently (conflicting: the user's choice).
func requirementState(terms []corev1.NodeSelectorTerm, req corev1.NodeSelectorRequirement) (present, conflicting bool) {
	if len(terms) == 0 {
		return false, false
	}
	present = true
	for _, term := range terms {
		found := false
		for _, have := range term.MatchExpressions {
			if have.Key != req.Key {
				continue
			}
			if equality.Semantic.DeepEqual(have, req) {
				found = true
			} else {
				conflicting = true
			}
		}
		present = present && found
	}
	return present, conflicting
}

func (a *applier) podAffinity(want []corev1.PodAffinityTerm) {
	for _, term := range want {
		term, problem := resolveAffinityTerm(a.pod.Labels, term)
		if problem != "" {
			a.respect("pod affinity with topologyKey %s not added: %s", term.TopologyKey, problem)
			continue
		}
		spec := &a.pod.Spec
		var have []corev1.PodAffinityTerm
		if spec.Affinity != nil && spec.Affinity.PodAffinity != nil {
			have = spec.Affinity.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution
		}
		if slices.ContainsFunc(have, func(h corev1.PodAffinityTerm) bool { return equality.Semantic.DeepEqual(h, term) }) {
			continue
		}
		if slices.ContainsFunc(have, func(h corev1.PodAffinityTerm) bool { return h.TopologyKey == term.TopologyKey }) {
			a.respect("pod affinity with topologyKey %s set on the pod (decision: affinity to %s)", term.TopologyKey, selectorString(term))
			continue
		}
		aff := ensureAffinity(spec)
		if aff.PodAffinity == nil {
			aff.PodAffinity = &corev1.PodAffinity{}
		}
		aff.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution = append(aff.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, term)
		a.changed[FieldAffinity] = true
	}
}

func (a *applier) preferredNodeAffinity(want []corev1.PreferredSchedulingTerm) {
	spec := &a.pod.Spec
	userKeys := requiredNodeAffinityKeys(a.pod)
	for k := range spec.NodeSelector {
		userKeys[k] = struct{}{}
	}
	var have []corev1.PreferredSchedulingTerm
	if spec.Affinity != nil && spec.Affinity.NodeAffinity != nil {
		have = spec.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution
	}
	for _, t := range have {
		for _, req := range t.Preference.MatchExpressions {
			userKeys[req.Key] = struct{}{}
		}
	}
	for _, term := range want {
		if slices.ContainsFunc(have, func(h corev1.PreferredSchedulingTerm) bool { return equality.Semantic.DeepEqual(h, term) }) {
			continue
		}
		if key, ok := firstKeyIn(term.Preference.MatchExpressions, userKeys); ok {
			a.respect("node selection on %s set on the pod (decision: preferred node affinity %s)", key, preferenceString(term))
			continue
		}
		aff := ensureAffinity(spec)
		if aff.NodeAffinity == nil {
			aff.NodeAffinity = &corev1.NodeAffinity{}
		}
		aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution, term)
		have = aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution
		a.changed[FieldAffinity] = true
	}
}

func (a *applier) preferredPodAffinity(want []corev1.WeightedPodAffinityTerm) {
	spec := &a.pod.Spec
	for _, term := range want {
		var problem string
		if term.PodAffinityTerm, problem = resolveAffinityTerm(a.pod.Labels, term.PodAffinityTerm); problem != "" {
			a.respect("preferred pod affinity with topologyKey %s not added: %s", term.PodAffinityTerm.TopologyKey, problem)
			continue
		}
		var have []corev1.WeightedPodAffinityTerm
		if spec.Affinity != nil && spec.Affinity.PodAffinity != nil {
			have = spec.Affinity.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution
		}
		if slices.ContainsFunc(have, func(h corev1.WeightedPodAffinityTerm) bool { return equality.Semantic.DeepEqual(h, term) }) {
			continue
		}
		aff := ensureAffinity(spec)
		if aff.PodAffinity == nil {
			aff.PodAffinity = &corev1.PodAffinity{}
		}
		aff.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(aff.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution, term)
		a.changed[FieldAffinity] = true
	}
}

func firstKeyIn(reqs []corev1.NodeSelectorRequirement, keys map[string]struct{}) (string, bool) {
	for _, r := range reqs {
		if _, ok := keys[r.Key]; ok {
			return r.Key, true
		}
	}
	return "", false
}

func preferenceString(t corev1.PreferredSchedulingTerm) string {
	parts := make([]string, 0, len(t.Preference.MatchExpressions))
	for _, r := range t.Preference.MatchExpressions {
		parts = append(parts, fmt.Sprintf("%s %s %v", r.Key, r.Operator, r.Values))
	}
	return fmt.Sprintf("%s, weight %d", strings.Join(parts, ", "), t.Weight)
}

func (a *applier) topologySpread(want []corev1.TopologySpreadConstraint) {
	spec := &a.pod.Spec
	for _, c := range want {
		c, problem := resolveSpread(a.pod.Labels, c)
		if problem != "" {
			a.respect("topology spread constraint on %s not added: %s", c.TopologyKey, problem)
			continue
		}
		if slices.ContainsFunc(spec.TopologySpreadConstraints, func(h corev1.TopologySpreadConstraint) bool { return equality.Semantic.DeepEqual(h, c) }) {
			continue
		}
		if slices.ContainsFunc(spec.TopologySpreadConstraints, func(h corev1.TopologySpreadConstraint) bool { return h.TopologyKey == c.TopologyKey }) {
			a.respect("topology spread constraint on %s set on the pod (decision: maxSkew %d, %s)", c.TopologyKey, c.MaxSkew, c.WhenUnsatisfiable)
			continue
		}
		spec.TopologySpreadConstraints = append(spec.TopologySpreadConstraints, c)
		a.changed[FieldTopologySpreadConstraints] = true
	}
}

// localDirs moves the decision's local-dir volumes while they are still Spark's plain emptyDirs (a volume
// already moved is left as it is, so a second application changes nothing) and reports every other local dir
// as left alone. The hostPath of each is the pod's own directory (PodDir) plus the volume's name.
func (a *applier) localDirs(want *LocalDirs) {
	if want == nil {
		return
	}
	pod := a.pod
	if want.Type == LocalDirsHostPath && pod.Name == "" {
		a.respect("the pod has no name at admission (generateName), so it cannot get a host directory of its own: local dirs left alone")
		return
	}
	moved := false
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if !strings.HasPrefix(v.Name, LocalDirVolumePrefix) {
			continue
		}
		if !slices.Contains(want.Volumes, v.Name) {
			a.respect("volume %s %s: left alone", v.Name, localDirKind(v))
			continue
		}
		switch {
		case isMoved(v, want, pod):
			moved = true
		case isSparkEmptyDir(v):
			src, err := movedSource(want, pod, v.Name)
			if err != nil {
				a.respect("volume %s: %v: left alone", v.Name, err)
				continue
			}
			v.VolumeSource = src
			a.changed[FieldVolumes] = true
			moved = true
		default:
			a.respect("volume %s %s (decision: %s): left alone", v.Name, localDirKind(v), want.Type)
		}
	}
	if !moved {
		return
	}
	if want.Type == LocalDirsHostPath && !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == LocalDirsVolume }) {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: LocalDirsVolume, VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: PodDir(want.Path, pod.Namespace, pod.Name), Type: ptr(corev1.HostPathDirectoryOrCreate)},
		}})
		a.changed[FieldVolumes] = true
	}
	if want.FSGroup != nil {
		a.fsGroup(*want.FSGroup)
	}
}

// isSparkEmptyDir: the disk-backed emptyDir without a size limit that Spark creates for a local dir.
func isSparkEmptyDir(v *corev1.Volume) bool {
	return v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumDefault && v.EmptyDir.SizeLimit == nil
}

// isMoved tells whether v already is where want puts it (compared on what the API server does not default).
func isMoved(v *corev1.Volume, want *LocalDirs, pod *corev1.Pod) bool {
	switch want.Type {
	case LocalDirsHostPath:
		return v.HostPath != nil && v.HostPath.Path == path.Join(PodDir(want.Path, pod.Namespace, pod.Name), v.Name)
	case LocalDirsEphemeral:
		t := v.Ephemeral
		return t != nil && t.VolumeClaimTemplate != nil && t.VolumeClaimTemplate.Spec.StorageClassName != nil &&
			*t.VolumeClaimTemplate.Spec.StorageClassName == want.StorageClassName
	}
	return false
}

func movedSource(want *LocalDirs, pod *corev1.Pod, volume string) (corev1.VolumeSource, error) {
	switch want.Type {
	case LocalDirsHostPath:
		return corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
			Path: path.Join(PodDir(want.Path, pod.Namespace, pod.Name), volume),
			Type: ptr(corev1.HostPathDirectoryOrCreate),
		}}, nil
	case LocalDirsEphemeral:
		size, err := resource.ParseQuantity(want.Size)
		if err != nil {
			return corev1.VolumeSource{}, fmt.Errorf("size %q: %w", want.Size, err)
		}
		return corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName: ptr(want.StorageClassName),
				VolumeMode:       ptr(corev1.PersistentVolumeFilesystem),
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			},
		}}}, nil
	}
	return corev1.VolumeSource{}, fmt.Errorf("unknown local dirs type %q", want.Type)
}

// localDirKind says what a local dir that is not moved is, for the annotation.
func localDirKind(v *corev1.Volume) string {
	switch {
	case v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory:
		return "is tmpfs (emptyDir medium Memory), asked for on purpose"
	case v.EmptyDir != nil && v.EmptyDir.SizeLimit != nil:
		return fmt.Sprintf("is an emptyDir with sizeLimit %s, asked for on purpose", v.EmptyDir.SizeLimit)
	case v.EmptyDir != nil:
		return "is an emptyDir outside the decision"
	case v.PersistentVolumeClaim != nil:
		return fmt.Sprintf("is the user's PersistentVolumeClaim %s", v.PersistentVolumeClaim.ClaimName)
	case v.HostPath != nil:
		return fmt.Sprintf("is the user's hostPath %s", v.HostPath.Path)
	case v.Ephemeral != nil:
		return "is the user's ephemeral volume"
	default:
		return "is the user's volume"
	}
}

func (a *applier) fsGroup(gid int64) {
	sc := a.pod.Spec.SecurityContext
	switch {
	case sc != nil && sc.FSGroup != nil && *sc.FSGroup == gid:
	case sc != nil && sc.FSGroup != nil:
		a.respect("fsGroup %d set on the pod (decision: %d)", *sc.FSGroup, gid)
	default:
		if sc == nil {
			a.pod.Spec.SecurityContext = &corev1.PodSecurityContext{}
		}
		a.pod.Spec.SecurityContext.FSGroup = ptr(gid)
		a.changed[FieldSecurityContext] = true
	}
}

func (a *applier) initContainers(want []corev1.Container) {
	var add []corev1.Container
	for _, c := range want {
		i := slices.IndexFunc(a.pod.Spec.InitContainers, func(h corev1.Container) bool { return h.Name == c.Name })
		missing := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
			return !slices.ContainsFunc(a.pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		})
		switch {
		case i < 0 && missing >= 0:
			// The volume was not made (e.g. the local dirs it prepares were left alone): the pod would be invalid.
			a.respect("init container %s not added: the pod has no volume %s", c.Name, c.VolumeMounts[missing].Name)
		case i < 0:
			add = append(add, c)
		case !sameContainer(a.pod.Spec.InitContainers[i], c):
			a.respect("init container %s set on the pod", c.Name)
		}
	}
	if len(add) > 0 {
		a.pod.Spec.InitContainers = append(add, a.pod.Spec.InitContainers...)
		a.changed[FieldInitContainers] = true
	}
}

func requiredNodeAffinityKeys(pod *corev1.Pod) map[string]struct{} {
	keys := map[string]struct{}{}
	aff := pod.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return keys
	}
	for _, term := range aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, req := range term.MatchExpressions {
			keys[req.Key] = struct{}{}
		}
	}
	return keys
}

func ensureAffinity(spec *corev1.PodSpec) *corev1.Affinity {
	if spec.Affinity == nil {
		spec.Affinity = &corev1.Affinity{}
	}
	return spec.Affinity
}

func selectorString(term corev1.PodAffinityTerm) string {
	if term.LabelSelector == nil {
		return "<all pods>"
	}
	parts := make([]string, 0, len(term.LabelSelector.MatchLabels))
	for _, k := range sortedKeys(term.LabelSelector.MatchLabels) {
		parts = append(parts, k+"="+term.LabelSelector.MatchLabels[k])
	}
	return strings.Join(parts, ",")
}

func sortedKeys(m map[string]string) []string {
	return appendSortedKeys(make([]string, 0, len(m)), m)
}

// appendSortedKeys appends m's keys to keys, sorted (keys may be a caller's buffer).
func appendSortedKeys(keys []string, m map[string]string) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func ptr[T any](v T) *T { return &v }

// sameToleration compares every field; it runs for each toleration of every admitted pod, where reflection
// would cost more than the rest of Apply.
func sameToleration(a, b corev1.Toleration) bool {
	if a.Key != b.Key || a.Operator != b.Operator || a.Value != b.Value || a.Effect != b.Effect {
		return false
	}
	if a.TolerationSeconds == nil || b.TolerationSeconds == nil {
		return a.TolerationSeconds == b.TolerationSeconds
	}
	return *a.TolerationSeconds == *b.TolerationSeconds
}

// sameContainer reports whether have is want as the API server stores it: the fields it defaults
// (terminationMessagePath and -Policy, imagePullPolicy) where want leaves them empty, and volume mounts it or
// another webhook added (the service-account token), do not make them differ; so a reinvoked admission
// recognises its own init container.
func sameContainer(have, want corev1.Container) bool {
	h := have.DeepCopy()
	if want.TerminationMessagePath == "" {
		h.TerminationMessagePath = ""
	}
	if want.TerminationMessagePolicy == "" {
		h.TerminationMessagePolicy = ""
	}
	if want.ImagePullPolicy == "" {
		h.ImagePullPolicy = ""
	}
	h.VolumeMounts = slices.DeleteFunc(h.VolumeMounts, func(m corev1.VolumeMount) bool {
		return !slices.ContainsFunc(want.VolumeMounts, func(w corev1.VolumeMount) bool { return w.Name == m.Name })
	})
	return equality.Semantic.DeepEqual(*h, want)
}
