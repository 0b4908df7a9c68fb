package webhook

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/go-openapi/jsonpointer"
	gojson "github.com/goccy/go-json"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/sparkplace/sparkplace/placement"
)

// patchFor writes the JSON patch that turns the admitted pod (whose lists and maps were as before records)
// into pod, which placement applied d to. Maps placement only adds to (labels, annotations, nodeSelector)
// get one "add" per key of the decision's that the pod now has with the decision's value (an "add" of a
// member that exists replaces it, RFC 6902 §4.1: a key the pod already had with that value is rewritten
// as it was), or one "add" of the whole map when the pod had none; the keys the pod had are not written
// back. Lists of objects that placement only ever extends (tolerations, affinity terms and their
// requirements, init containers, topology spreads) get one "add" per new element, so the objects already
// there are not written back: fields this webhook's k8s.io/api does not know (a newer API server's) survive
// the patch. Volumes, which placement changes in place (Spark's local dirs) or extends, get one "replace"
// per changed volume and one "add" per new one: the others (the service-account token's, config maps) are
// not written back, and the API server does not re-validate a whole list. The patch costs what the changes
// cost, not a diff of the whole pod. initJSON, when set, is the JSON of the pod's init containers, which the
// pod had none of before (see Handler.initContainersJSON).
func patchFor(pod *corev1.Pod, d *placement.Decision, changed []placement.Field, before podShape, initJSON []byte) ([]byte, error) {
	p := patchWriters.Get().(*patchWriter)
	defer patchWriters.Put(p)
	p.b.Reset()
	p.err = nil
	for _, f := range changed {
		switch f {
		case placement.FieldLabels:
			p.mapKeys("/metadata/labels", before.labels, pod.Labels, d.Labels, "")
		case placement.FieldAnnotations:
			// The explanation is an annotation of its own, not the decision's.
			p.mapKeys("/metadata/annotations", before.annotations, pod.Annotations, d.Annotations, placement.AnnotationKey)
		case placement.FieldNodeSelector:
			p.mapKeys("/spec/nodeSelector", before.nodeSelector, pod.Spec.NodeSelector, d.NodeSelector, "")
		case placement.FieldTolerations:
			appendOps(p, "/spec/tolerations", before.tolerations, pod.Spec.Tolerations)
		case placement.FieldAffinity:
			p.affinity(pod.Spec.Affinity, before.affinity)
		case placement.FieldVolumes:
			p.volumes(pod.Spec.Volumes, before.volumes)
		case placement.FieldInitContainers:
			// Placement puts its init containers first, before the pod's own.
			switch {
			case before.initContainers < 0 && initJSON != nil:
				p.raw("add", pathInitContainers, initJSON)
			case before.initContainers < 0:
				p.add(pathInitContainers, pod.Spec.InitContainers)
			default:
				for i := range len(pod.Spec.InitContainers) - before.initContainers {
					p.add(pathInitContainers+"/"+strconv.Itoa(i), &pod.Spec.InitContainers[i])
				}
			}
		case placement.FieldSecurityContext:
			// Only fsGroup changes: the rest of the pod's securityContext is not written back.
			if before.securityContext {
				p.add("/spec/securityContext/fsGroup", pod.Spec.SecurityContext.FSGroup)
			} else {
				p.add("/spec/securityContext", pod.Spec.SecurityContext)
			}
		case placement.FieldSchedulerName:
			p.str("/spec/schedulerName", pod.Spec.SchedulerName)
		case placement.FieldPriorityClassName:
			p.str("/spec/priorityClassName", pod.Spec.PriorityClassName)
		case placement.FieldTopologySpreadConstraints:
			appendOps(p, "/spec/topologySpreadConstraints", before.spreads, pod.Spec.TopologySpreadConstraints)
		}
	}
	return p.bytes()
}

// patchWriters are patchFor's, with their buffers: the patch is copied out at its size.
var patchWriters = sync.Pool{New: func() any {
	p := &patchWriter{}
	p.enc = gojson.NewEncoder(&p.b)
	return p
}}

// pathInitContainers is the patch path of the pod's init containers.
const pathInitContainers = "/spec/initContainers"

// patchWriter writes RFC 6902 operations as a JSON array, each value as goccy/go-json writes it (what
// encoding/json writes, in a third of the time; TestPatchIsIdempotent applies the result as the API server
// does), strings and the values it was given as JSON directly.
type patchWriter struct {
	b   bytes.Buffer
	enc *gojson.Encoder // writes to b
	err error
}

func (p *patchWriter) begin(op, path string) {
	if p.b.Len() == 0 {
		p.b.WriteByte('[')
	} else {
		p.b.WriteByte(',')
	}
	p.b.WriteString(`{"op":"`)
	p.b.WriteString(op)
	p.b.WriteString(`","path":`)
	p.b.Write(appendJSONString(p.b.AvailableBuffer(), path))
	p.b.WriteString(`,"value":`)
}

// op writes an operation with value as its JSON (a struct is best given by pointer: not copied into the
// interface).
func (p *patchWriter) op(op, path string, value any) {
	start := p.b.Len()
	p.begin(op, path)
	if err := p.enc.Encode(value); err != nil {
		p.b.Truncate(start)
		p.err = cmp.Or(p.err, fmt.Errorf("%s: %w", path, err))
		return
	}
	p.b.Truncate(p.b.Len() - 1) // the newline Encode ends with
	p.b.WriteByte('}')
}

func (p *patchWriter) add(path string, value any) { p.op("add", path, value) }

// raw writes an operation whose value is the JSON raw.
func (p *patchWriter) raw(op, path string, raw []byte) {
	p.begin(op, path)
	p.b.Write(raw)
	p.b.WriteByte('}')
}

// str writes an "add" of a string.
func (p *patchWriter) str(path, value string) {
	p.begin("add", path)
	p.b.Write(appendJSONString(p.b.AvailableBuffer(), value))
	p.b.WriteByte('}')
}

// mapKeys adds what placement added to a string map: the keys of want (and extra, when set) that m holds
// with their value in want (any value for extra), one by one when the map was there before, else m whole.
func (p *patchWriter) mapKeys(path string, existed bool, m, want map[string]string, extra string) {
	if !existed {
		p.stringMap(path, m)
		return
	}
	var buf [8]string
	keys := buf[:0]
	for k, v := range want {
		if have, ok := m[k]; ok && have == v && k != extra {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if _, ok := m[extra]; ok && extra != "" {
		keys = append(keys, extra)
	}
	for _, k := range keys {
		p.beginMember(path, k)
		p.b.Write(appendJSONString(p.b.AvailableBuffer(), m[k]))
		p.b.WriteByte('}')
	}
}

// stringMap writes an "add" of the string map m, its keys sorted (as encoding/json writes a map; placement
// changed the map, so it is not nil).
func (p *patchWriter) stringMap(path string, m map[string]string) {
	var buf [16]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	p.begin("add", path)
	p.b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			p.b.WriteByte(',')
		}
		p.b.Write(appendJSONString(p.b.AvailableBuffer(), k))
		p.b.WriteByte(':')
		p.b.Write(appendJSONString(p.b.AvailableBuffer(), m[k]))
	}
	p.b.WriteString("}}")
}

// beginMember begins an "add" of the member key of the object at path (a constant, which needs no escaping).
func (p *patchWriter) beginMember(path, key string) {
	if p.b.Len() == 0 {
		p.b.WriteByte('[')
	} else {
		p.b.WriteByte(',')
	}
	p.b.WriteString(`{"op":"add","path":"`)
	p.b.WriteString(path)
	p.b.WriteByte('/')
	key = jsonpointer.Escape(key)
	// Without its quotes: the path's string goes on.
	quoted := appendJSONString(p.b.AvailableBuffer(), key)
	p.b.Write(quoted[1 : len(quoted)-1])
	p.b.WriteString(`","value":`)
}

func (p *patchWriter) bytes() ([]byte, error) {
	if p.err != nil {
		return nil, p.err
	}
	if p.b.Len() == 0 {
		return []byte("[]"), nil
	}
	p.b.WriteByte(']')
	return slices.Clone(p.b.Bytes()), nil
}

// appendJSONString appends s as a JSON string: quotes, backslashes and control characters escaped, bytes
// that are not UTF-8 as U+FFFD (as encoding/json writes them; TestAppendJSONString).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(append(b, s[start:i]...), `\ufffd`...)
			start = i + size
		}
		i += size
	}
	return append(append(b, s[start:]...), '"')
}

// volumes replaces the volumes placement changed and adds those it added (before: the volumes as admitted,
// nil when the pod had none).
func (p *patchWriter) volumes(after, before []corev1.Volume) {
	if before == nil {
		p.add("/spec/volumes", after)
		return
	}
	for i := range after {
		switch {
		case i >= len(before):
			p.add("/spec/volumes/-", &after[i])
		// before is a shallow copy: a volume placement left alone has the very same source pointers, and
		// the comparison of those (a volume source is a struct of pointers) spares the reflective walk of
		// its thirty-odd fields, which cost more than the rest of the patch.
		case after[i] != before[i] && !apiequality.Semantic.DeepEqual(after[i], before[i]):
			p.op("replace", "/spec/volumes/"+strconv.Itoa(i), &after[i])
		}
	}
}

// appendOps adds the elements of after past the first before (-1: the list was absent: add it whole).
func appendOps[T any](p *patchWriter, path string, before int, after []T) {
	if before < 0 {
		if len(after) > 0 {
			p.add(path, after)
		}
		return
	}
	if before < len(after) {
		elemPath := path + "/-"
		for i := before; i < len(after); i++ {
			p.add(elemPath, &after[i])
		}
	}
}

// affinity adds what placement added to the pod's affinity, part by part.
func (p *patchWriter) affinity(a *corev1.Affinity, before *affinityShape) {
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
	// labels, annotations, nodeSelector: the pod had the map (placement only adds keys).
	labels, annotations, nodeSelector    bool
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
		labels:          pod.Labels != nil,
		annotations:     pod.Annotations != nil,
		nodeSelector:    pod.Spec.NodeSelector != nil,
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
