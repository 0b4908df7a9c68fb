package cluster

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	schedcorev1 "k8s.io/component-helpers/scheduling/corev1"
)

// Schedulable reports whether some schedulable node could take the pod as far as its constraints go: the
// node is Ready and not cordoned, the pod tolerates its NoSchedule and NoExecute taints, its nodeSelector
// and required node affinity match (the scheduler's own matching code), and the node has the topology key
// of each required pod-affinity term. Free capacity is not considered: a full pool is a wait, handled by
// bounded strictness, not a term no node can meet.
//
// Answers are remembered per set of constraints until a node changes, so the executors of one application
// cost one scan of the nodes, not one each.
func (s *State) Schedulable(pod *corev1.Pod) bool {
	return s.Remember(ConstraintsKey(pod), func() bool { return s.scan(pod) })
}

// maxRemembered bounds the answers remembered for one generation of nodes.
const maxRemembered = 16384

// Remember returns what compute returns for key, computing it once per generation of nodes: for answers
// that depend only on key and on the nodes' labels, taints, cordons and readiness.
func (s *State) Remember(key string, compute func() bool) bool {
	s.mu.RLock()
	gen := s.nodeGen
	s.mu.RUnlock()
	s.fitMu.Lock()
	if s.fitGen != gen || len(s.fits) >= maxRemembered {
		s.fitGen, s.fits = gen, map[string]bool{}
	}
	ok, known := s.fits[key]
	s.fitMu.Unlock()
	if known {
		return ok
	}
	ok = compute()
	s.fitMu.Lock()
	if s.fitGen == gen {
		s.fits[key] = ok
	}
	s.fitMu.Unlock()
	return ok
}

func (s *State) scan(pod *corev1.Pod) bool {
	required := nodeaffinity.GetRequiredNodeAffinity(pod)
	var topologyKeys []string
	if a := pod.Spec.Affinity; a != nil && a.PodAffinity != nil {
		for _, t := range a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			topologyKeys = append(topologyKeys, t.TopologyKey)
		}
	}
	untolerated := func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var node corev1.Node // what the scheduler's matching reads of a node: its name and labels
	for _, n := range s.nodes {
		if n.Unschedulable || !n.Ready {
			continue
		}
		if _, bad := schedcorev1.FindMatchingUntoleratedTaint(klog.Background(), n.Taints, pod.Spec.Tolerations, untolerated, false); bad {
			continue
		}
		node.Name, node.Labels = n.Name, n.Labels
		if ok, err := required.Match(&node); err != nil || !ok {
			continue
		}
		if slices.ContainsFunc(topologyKeys, func(k string) bool { return n.Labels[k] == "" }) {
			continue
		}
		return true
	}
	return false
}

// ConstraintsKey writes what Schedulable reads of a pod as a string (its nodeSelector, tolerations, required
// node affinity and the topology keys of its required pod-affinity terms): equal constraints, equal keys.
func ConstraintsKey(pod *corev1.Pod) string {
	var b strings.Builder
	keys := make([]string, 0, len(pod.Spec.NodeSelector))
	for k := range pod.Spec.NodeSelector {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(pod.Spec.NodeSelector[k])
		b.WriteByte(0)
	}
	b.WriteByte(1)
	for _, t := range pod.Spec.Tolerations {
		b.WriteString(t.Key)
		b.WriteByte(0)
		b.WriteString(string(t.Operator))
		b.WriteByte(0)
		b.WriteString(t.Value)
		b.WriteByte(0)
		b.WriteString(string(t.Effect))
		b.WriteByte(0)
	}
	b.WriteByte(1)
	if a := pod.Spec.Affinity; a != nil {
		if a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
			for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
				writeRequirements(&b, t.MatchExpressions)
				b.WriteByte(2)
				writeRequirements(&b, t.MatchFields)
				b.WriteByte(3)
			}
		}
		b.WriteByte(1)
		if a.PodAffinity != nil {
			for _, t := range a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				b.WriteString(t.TopologyKey)
				b.WriteByte(0)
			}
		}
	}
	return b.String()
}

func writeRequirements(b *strings.Builder, reqs []corev1.NodeSelectorRequirement) {
	for _, r := range reqs {
		b.WriteString(r.Key)
		b.WriteByte(0)
		b.WriteString(string(r.Operator))
		for _, v := range r.Values {
			b.WriteByte(0)
			b.WriteString(v)
		}
		b.WriteByte(4)
	}
}
