package zonecapacity

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
)

// Pool describes the nodes the executors of one profile may run on: what the policy gives such an executor
// (node selector, required node affinity other than the zone, tolerations), and the label that names a
// node's zone.
type Pool struct {
	// ZoneKey is the node label that names the zone (config zone.topologyKey).
	ZoneKey      string                           `json:"zoneKey"`
	NodeSelector map[string]string                `json:"nodeSelector,omitempty"`
	Requirements []corev1.NodeSelectorRequirement `json:"requirements,omitempty"`
	Tolerations  []corev1.Toleration              `json:"tolerations,omitempty"`
}

// key identifies the pool; encoding/json sorts map keys, so equal pools give equal keys.
func (p Pool) key() string {
	raw, err := json.Marshal(p)
	if err != nil { // only strings and string slices: cannot fail
		return p.ZoneKey
	}
	return string(raw)
}

// admits reports whether an executor of the pool can be scheduled on n as far as labels, taints and the
// node's condition go (resources are counted separately).
func (p Pool) admits(n *node) bool {
	if !n.schedulable || n.labels[p.ZoneKey] == "" {
		return false
	}
	for k, v := range p.NodeSelector {
		if n.labels[k] != v {
			return false
		}
	}
	for _, r := range p.Requirements {
		if !requirementHolds(r, n.labels) {
			return false
		}
	}
	return tolerates(p.Tolerations, n.taints)
}

// tolerates reports whether every NoSchedule and NoExecute taint is tolerated (PreferNoSchedule only scores).
func tolerates(tolerations []corev1.Toleration, taints []corev1.Taint) bool {
	for i := range taints {
		t := &taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		if !slices.ContainsFunc(tolerations, func(tol corev1.Toleration) bool { return tol.ToleratesTaint(logr.Discard(), t, false) }) {
			return false
		}
	}
	return true
}

// requirementHolds evaluates one node selector requirement against node labels, as the scheduler does.
func requirementHolds(r corev1.NodeSelectorRequirement, labels map[string]string) bool {
	v, ok := labels[r.Key]
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return ok && slices.Contains(r.Values, v)
	case corev1.NodeSelectorOpNotIn:
		return !ok || !slices.Contains(r.Values, v)
	case corev1.NodeSelectorOpExists:
		return ok
	case corev1.NodeSelectorOpDoesNotExist:
		return !ok
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !ok || len(r.Values) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(v, 10, 64)
		want, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return have > want
		}
		return have < want
	}
	return false
}

// poolState is the running sum of one pool's free capacity per zone.
type poolState struct {
	pool Pool
	// order lists the zones of zones, sorted, so a choice needs no sort.
	order   []string
	members map[string]bool      // names of the nodes the pool admits
	zones   map[string]*zoneSums // by zone: the members' free capacity
	// anyNodes counts every node per zone, members or not: the zones a scaled-to-zero pool can grow in.
	anyNodes map[string]int
}

type zoneSums struct {
	free  Resources
	nodes int
}

func (ps *poolState) zone(z string) *zoneSums {
	s := ps.zones[z]
	if s == nil {
		s = &zoneSums{}
		ps.zones[z] = s
		ps.order = append(ps.order, z)
		slices.Sort(ps.order)
	}
	return s
}

// remove takes n's contribution out of the sums; add puts it (back) in, with n's current membership.
func (ps *poolState) remove(n *node) {
	if z := n.labels[ps.pool.ZoneKey]; z != "" {
		ps.anyNodes[z]--
		if ps.anyNodes[z] <= 0 {
			delete(ps.anyNodes, z)
		}
	}
	if !ps.members[n.name] {
		return
	}
	delete(ps.members, n.name)
	s := ps.zone(n.labels[ps.pool.ZoneKey])
	s.free = s.free.minus(n.free())
	s.nodes--
}

func (ps *poolState) add(n *node) {
	if z := n.labels[ps.pool.ZoneKey]; z != "" {
		ps.anyNodes[z]++
	}
	if !ps.pool.admits(n) {
		return
	}
	ps.members[n.name] = true
	s := ps.zone(n.labels[ps.pool.ZoneKey])
	s.free = s.free.plus(n.free())
	s.nodes++
}
