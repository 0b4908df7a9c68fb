package webhook

import (
	"slices"
	"strconv"

	gojson "github.com/goccy/go-json"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/sparkplace/sparkplace/placement"
)

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// patchFor writes the JSON patch that turns the admitted pod (whose lists had the lengths in before) into
// pod. Maps and scalars are written whole: an "add" on an existing member replaces it (RFC 6902 §4.1).
// Lists of objects that placement only ever extends (tolerations, affinity terms and their requirements,
// init containers, topology spreads) get one "add" per new element, so the objects already there are not
// written back: fields this webhook's k8s.io/api does not know (a newer API server's) survive the patch.
// Volumes, which placement changes in place (Spark's local dirs) or extends, get one "replace" per changed
// volume and one "add" per new one: the others (the service-account token's, config maps) are not written
// back, and the API server does not re-validate a whole list. The patch costs what the changes cost, not a
// diff of the whole pod.
func patchFor(pod *corev1.Pod, changed []placement.Field, before podShape) []patchOp {
	p := &patcher{ops: make([]patchOp, 0, len(changed)+2)}
	for _, f := range changed {
		switch f {
		case placement.FieldLabels:
			p.add("/metadata/labels", pod.Labels)
		case placement.FieldAnnotations:
			p.add("/metadata/annotations", pod.Annotations)
		case placement.FieldNodeSelector:
			p.add("/spec/nodeSelector", pod.Spec.NodeSelector)
		case placement.FieldTolerations:
			appendOps(p, "/spec/tolerations", before.tolerations, pod.Spec.Tolerations)
		case placement.FieldAffinity:
			p.affinity(pod.Spec.Affinity, before.affinity)
		case placement.FieldVolumes:
			p.volumes(pod.Spec.Volumes, before.volumes)
		case placement.FieldInitContainers:
			// Placement puts its init containers first, before the pod's own.
			if before.initContainers < 0 {
				p.add(pathInitContainers, pod.Spec.InitContainers)
				break
			}
			for i := range len(pod.Spec.InitContainers) - before.initContainers {
				p.add(pathInitContainers+"/"+strconv.Itoa(i), pod.Spec.InitContainers[i])
			}
		case placement.FieldSecurityContext:
			// Only fsGroup changes: the rest of the pod's securityContext is not written back.
			if before.securityContext {
				p.add("/spec/securityContext/fsGroup", pod.Spec.SecurityContext.FSGroup)
			} else {
				p.add("/spec/securityContext", pod.Spec.SecurityContext)
			}
		case placement.FieldSchedulerName:
			p.add("/spec/schedulerName", pod.Spec.SchedulerName)
		case placement.FieldPriorityClassName:
			p.add("/spec/priorityClassName", pod.Spec.PriorityClassName)
		case placement.FieldTopologySpreadConstraints:
			appendOps(p, "/spec/topologySpreadConstraints", before.spreads, pod.Spec.TopologySpreadConstraints)
		}
	}
	return p.ops
}

// pathInitContainers is the patch path of the pod's init containers.
const pathInitContainers = "/spec/initContainers"

type patcher struct{ ops []patchOp }

func (p *patcher) add(path string, value any) {
	p.ops = append(p.ops, patchOp{Op: "add", Path: path, Value: value})
}

// volumes replaces the volumes placement changed and adds those it added (before: the volumes as admitted,
// nil when the pod had none).
func (p *patcher) volumes(after, before []corev1.Volume) {
	if before == nil {
		p.add("/spec/volumes", after)
		return
	}
	for i := range after {
		switch {
		case i >= len(before):
			p.add("/spec/volumes/-", after[i])
		// before is a shallow copy: a volume placement left alone has the very same source pointers, and
		// the comparison of those (a volume source is a struct of pointers) spares the reflective walk of
		// its thirty-odd fields, which cost more than the rest of the patch.
		case after[i] != before[i] && !apiequality.Semantic.DeepEqual(after[i], before[i]):
			p.ops = append(p.ops, patchOp{Op: "replace", Path: "/spec/volumes/" + strconv.Itoa(i), Value: after[i]})
		}
	}
}

// appendOps adds the elements of after past the first before (-1: the list was absent: add it whole).
func appendOps[T any](p *patcher, path string, before int, after []T) {
	if before < 0 {
		if len(after) > 0 {
			p.add(path, after)
		}
		return
	}
	for i := before; i < len(after); i++ {
		p.add(path+"/-", after[i])
	}
}

// affinity adds what placement added to the pod's affinity, part by part.
func (p *patcher) affinity(a *corev1.Affinity, before *affinityShape) {
	const base = "/spec/affinity"
	switch {
	case a == nil:
		return
	case before == nil:
		p.add(base, a)
		return
	}
	if na := a.NodeAffinity; na != nil {
		const path = base + "/nodeAffinity"
		if !before.nodeAffinity {
			p.add(path, na)
		} else {
			if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
				const reqPath = path + "/requiredDuringSchedulingIgnoredDuringExecution"
				if before.nodeTerms == nil {
					p.add(reqPath, req)
				} else {
					for i, term := range req.NodeSelectorTerms {
						termPath := reqPath + "/nodeSelectorTerms/" + strconv.Itoa(i)
						if i >= len(before.nodeTerms) {
							p.add(reqPath+"/nodeSelectorTerms/-", term)
							continue
						}
						appendOps(p, termPath+"/matchExpressions", before.nodeTerms[i], term.MatchExpressions)
					}
				}
			}
			appendOps(p, path+"/preferredDuringSchedulingIgnoredDuringExecution", before.nodePreferred, na.PreferredDuringSchedulingIgnoredDuringExecution)
		}
	}
	if pa := a.PodAffinity; pa != nil {
		const path = base + "/podAffinity"
		if !before.podAffinity {
			p.add(path, pa)
		} else {
			appendOps(p, path+"/requiredDuringSchedulingIgnoredDuringExecution", before.podRequired, pa.RequiredDuringSchedulingIgnoredDuringExecution)
			appendOps(p, path+"/preferredDuringSchedulingIgnoredDuringExecution", before.podPreferred, pa.PreferredDuringSchedulingIgnoredDuringExecution)
		}
	}
}

// podShape records, before placement, the lengths of the pod's lists that placement only extends (-1 for
// an absent list), so that patchFor adds to them instead of writing them whole.
type podShape struct {
	tolerations, initContainers, spreads int
	// volumes is a copy of the pod's volume list (placement replaces a volume's source, never changes it
	// inside), nil when it had none.
	volumes []corev1.Volume
	// securityContext: the pod had one (placement only ever sets its fsGroup).
	securityContext bool
	affinity        *affinityShape // nil: no affinity
}

type affinityShape struct {
	nodeAffinity, podAffinity bool
	// nodeTerms holds, per required node selector term, the length of its matchExpressions (-1 absent);
	// nil when there is no required node affinity.
	nodeTerms                                []int
	nodePreferred, podRequired, podPreferred int
}

func shapeOf(pod *corev1.Pod) podShape {
	s := podShape{
		tolerations:     listLen(pod.Spec.Tolerations),
		initContainers:  listLen(pod.Spec.InitContainers),
		spreads:         listLen(pod.Spec.TopologySpreadConstraints),
		securityContext: pod.Spec.SecurityContext != nil,
		volumes:         slices.Clone(pod.Spec.Volumes),
	}
	a := pod.Spec.Affinity
	if a == nil {
		return s
	}
	s.affinity = &affinityShape{nodePreferred: -1, podRequired: -1, podPreferred: -1}
	if na := a.NodeAffinity; na != nil {
		s.affinity.nodeAffinity = true
		if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
			s.affinity.nodeTerms = make([]int, len(req.NodeSelectorTerms))
			for i, t := range req.NodeSelectorTerms {
				s.affinity.nodeTerms[i] = listLen(t.MatchExpressions)
			}
		}
		s.affinity.nodePreferred = listLen(na.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	if pa := a.PodAffinity; pa != nil {
		s.affinity.podAffinity = true
		s.affinity.podRequired = listLen(pa.RequiredDuringSchedulingIgnoredDuringExecution)
		s.affinity.podPreferred = listLen(pa.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	return s
}

func listLen[T any](l []T) int {
	if l == nil {
		return -1
	}
	return len(l)
}

// marshalPatch encodes the operations with goccy/go-json, which writes what encoding/json writes in a third
// of the time; TestPatchIsIdempotent applies the result as the API server does.
func marshalPatch(ops []patchOp) ([]byte, error) { return gojson.Marshal(ops) }
