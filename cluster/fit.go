package cluster

import (
	"slices"

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
	var buf [256]byte
	return s.Remember(AppendConstraintsKey(buf[:0], pod), func() bool { return s.scan(pod) })
}

// maxRemembered bounds the answers remembered for one generation of nodes.
const maxRemembered = 16384

// Remember returns what compute returns for key, computing it once per generation of nodes: for answers
// that depend only on key and on the nodes' labels, taints, cordons and readiness.
//
// key is only read (a lookup converts it without a copy): callers build it in a buffer of their own.
func (s *State) Remember(key []byte, compute func() bool) bool {
	s.mu.RLock()
	gen := s.nodeGen
	s.mu.RUnlock()
	s.fitMu.Lock()
	if s.fitGen != gen || len(s.fits) >= maxRemembered {
		s.fitGen, s.fits = gen, map[string]bool{}
	}
	ok, known := s.fits[string(key)]
	s.fitMu.Unlock()
	if known {
		return ok
	}
	ok = compute()
	s.fitMu.Lock()
	if s.fitGen == gen {
		s.fits[string(key)] = ok
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

// AppendConstraintsKey appends to b what Schedulable reads of a pod (its nodeSelector, tolerations, required
// node affinity and the topology keys of its required pod-affinity terms): equal constraints, equal keys.
func AppendConstraintsKey(b []byte, pod *corev1.Pod) []byte {
	var buf [16]string
	keys := buf[:0]
	for k := range pod.Spec.NodeSelector {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = append(b, k...)
		b = append(b, '=')
		b = append(b, pod.Spec.NodeSelector[k]...)
		b = append(b, 0)
	}
	b = append(b, 1)
	for _, t := range pod.Spec.Tolerations {
		b = append(b, t.Key...)
		b = append(b, 0)
		b = append(b, string(t.Operator)...)
		b = append(b, 0)
		b = append(b, t.Value...)
		b = append(b, 0)
		b = append(b, string(t.Effect)...)
		b = append(b, 0)
	}
	b = append(b, 1)
	if a := pod.Spec.Affinity; a != nil {
		if a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
			for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
				b = appendRequirements(b, t.MatchExpressions)
				b = append(b, 2)
				b = appendRequirements(b, t.MatchFields)
				b = append(b, 3)
			}
		}
		b = append(b, 1)
		if a.PodAffinity != nil {
			for _, t := range a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				b = append(b, t.TopologyKey...)
				b = append(b, 0)
			}
		}
	}
	return b
}

func appendRequirements(b []byte, reqs []corev1.NodeSelectorRequirement) []byte {
	for _, r := range reqs {
		b = append(b, r.Key...)
		b = append(b, 0)
		b = append(b, string(r.Operator)...)
		for _, v := range r.Values {
			b = append(b, 0)
			b = append(b, v...)
		}
		b = append(b, 4)
	}
	return b
}
