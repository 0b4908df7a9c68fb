package cluster

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// Spark's pod labels (Spark's Constants.scala) and sparkplace's own.
const (
	LabelRole    = "spark-role"
	LabelAppID   = "spark-app-selector"
	RoleDriver   = "driver"
	RoleExecutor = "executor"

	// LabelZoneRelaxed marks the executors of an application whose zone pin sparkplace relaxed; its value
	// is the reason (ReasonCapacity). The relaxer sets it on a stranded executor before deleting it, the
	// policy on every executor admitted relaxed, so every webhook replica (and a restarted one) learns the
	// application is relaxed from its cache.
	LabelZoneRelaxed = "sparkplace.io/zone-relaxed"
	// LabelZoneStrictness is set by the policy on an executor it pins to a zone: the strictness it was
	// admitted under, "strict" or "bounded-<bound>" (e.g. bounded-2m), which the relaxer holds it to.
	LabelZoneStrictness = "sparkplace.io/zone-strictness"
)

// SparkPodSelector selects the pods the cache holds: spark-role=driver|executor.
func SparkPodSelector() labels.Selector {
	req, err := labels.NewRequirement(LabelRole, selection.In, []string{RoleDriver, RoleExecutor})
	if err != nil { // constant arguments: cannot fail
		panic(err)
	}
	return labels.NewSelector().Add(*req)
}

// IsSparkPod reports whether the cache holds pod (see SparkPodSelector).
func IsSparkPod(pod *corev1.Pod) bool {
	r := pod.Labels[LabelRole]
	return r == RoleDriver || r == RoleExecutor
}

// StripPod is the cache transform for Spark pods. It keeps what placement and capacity read: identity,
// labels, owner, creation and deletion time; node, node selector, affinity, tolerations, container and init
// container requests (names and requests only), overhead; phase and the PodScheduled condition (without its
// message). Environment, arguments, volumes, annotations and managed fields are dropped: a Spark pod shrinks
// from several KiB to a few hundred bytes.
func StripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
			Labels: pod.Labels, OwnerReferences: pod.OwnerReferences,
			CreationTimestamp: pod.CreationTimestamp, DeletionTimestamp: pod.DeletionTimestamp,
		},
		Spec: corev1.PodSpec{
			NodeName: pod.Spec.NodeName, NodeSelector: pod.Spec.NodeSelector, Affinity: pod.Spec.Affinity,
			Tolerations: pod.Spec.Tolerations, Overhead: pod.Spec.Overhead,
			Containers: requestsOnly(pod.Spec.Containers), InitContainers: requestsOnly(pod.Spec.InitContainers),
		},
		Status: corev1.PodStatus{Phase: pod.Status.Phase},
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			out.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status, Reason: c.Reason, LastTransitionTime: c.LastTransitionTime}}
		}
	}
	return out, nil
}

func requestsOnly(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{Name: c.Name, Resources: corev1.ResourceRequirements{Requests: c.Resources.Requests}, RestartPolicy: c.RestartPolicy}
	}
	return out
}

// StripNode is the cache transform for nodes: it returns the *Node the caches keep (NodeOf): labels,
// taints, unschedulable (cordon), readiness (not heartbeat times, so a heartbeat is not a change) and
// allocatable CPU and memory; addresses, images, node info, annotations and managed fields are dropped.
// A *Node is returned as it is.
func StripNode(obj any) (any, error) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return NodeOf(node), nil
}

// StripNamespace keeps a namespace's name and labels (a namespace label may pick the profile).
func StripNamespace(obj any) (any, error) {
	switch ns := obj.(type) {
	case *corev1.Namespace:
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name, UID: ns.UID, ResourceVersion: ns.ResourceVersion, Labels: ns.Labels}}, nil
	case *metav1.PartialObjectMetadata:
		out := &metav1.PartialObjectMetadata{TypeMeta: ns.TypeMeta}
		out.Name, out.UID, out.ResourceVersion, out.Labels = ns.Name, ns.UID, ns.ResourceVersion, ns.Labels
		return out, nil
	}
	return obj, nil
}

// nodeStrings interns the label and taint strings of nodes.
var nodeStrings = newInterner(8192)

// interner hands out one copy of each string it has seen. It holds at most max strings: when full it starts
// over, so the strings unique to one node (its hostname) cannot grow it without bound; the strings nodes
// share are back after a few nodes.
type interner struct {
	mu   sync.Mutex
	max  int
	seen map[string]string
}

func newInterner(maxStrings int) *interner {
	return &interner{max: maxStrings, seen: make(map[string]string, maxStrings)}
}

func (in *interner) intern(s string) string {
	if c, ok := in.seen[s]; ok {
		return c
	}
	if len(in.seen) >= in.max {
		clear(in.seen)
	}
	in.seen[s] = s
	return s
}

// labels returns a copy of m with interned keys and values.
func (in *interner) labels(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	in.mu.Lock()
	defer in.mu.Unlock()
	for k, v := range m {
		out[in.intern(k)] = in.intern(v)
	}
	return out
}

// taints returns a copy of ts with interned keys and values.
func (in *interner) taints(ts []corev1.Taint) []corev1.Taint {
	if len(ts) == 0 {
		return nil
	}
	out := make([]corev1.Taint, len(ts))
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, t := range ts {
		out[i] = corev1.Taint{Key: in.intern(t.Key), Value: in.intern(t.Value), Effect: corev1.TaintEffect(in.intern(string(t.Effect))), TimeAdded: t.TimeAdded}
	}
	return out
}
