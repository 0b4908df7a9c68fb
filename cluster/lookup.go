package cluster

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Driver is the pod an executor's driver runs in, as Spark links them.
type Driver struct {
	// Name of the pod; empty when none was found.
	Name string
	// Role is "driver" for a Spark driver pod, "" for another pod (a notebook pod in client mode).
	Role string
	// NodeName is the node the pod is bound to; empty while it is unscheduled.
	NodeName string
}

// Found reports whether a driver pod was found.
func (d Driver) Found() bool { return d.Name != "" }

// Driver finds an executor's driver as Spark links them: the pod its controller ownerReference names (a
// Spark driver, or any other pod, such as the notebook pod a client-mode driver runs in when
// spark.kubernetes.driver.pod.name names it), else the driver pod with the executor's spark-app-selector.
// No driver (client mode without an owner) is not an error. An error means the owner pod could not be read.
func (s *State) Driver(ctx context.Context, namespace string, executor *corev1.Pod) (Driver, error) {
	if owner := metav1.GetControllerOfNoCopy(executor); owner != nil && owner.Kind == "Pod" && owner.APIVersion == "v1" {
		s.mu.RLock()
		pod, ok := s.pods[types.NamespacedName{Namespace: namespace, Name: owner.Name}]
		s.mu.RUnlock()
		if ok && (owner.UID == "" || pod.UID == owner.UID) {
			return Driver{Name: pod.Name, Role: pod.Labels[LabelRole], NodeName: pod.Spec.NodeName}, nil
		}
		if !ok {
			d, err := s.ownerPod(ctx, namespace, owner)
			if err != nil || d.Found() {
				return d, err
			}
		}
	}
	app := executor.Labels[LabelAppID]
	if app == "" {
		return Driver{}, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var found *corev1.Pod
	for _, p := range s.apps[appKey{namespace, app}] {
		// Several drivers of one application id (a resubmission) are possible: take a bound one, then by name.
		if p.Labels[LabelRole] == RoleDriver && p.DeletionTimestamp == nil && (found == nil || betterDriver(p, found)) {
			found = p
		}
	}
	if found == nil {
		return Driver{}, nil
	}
	return Driver{Name: found.Name, Role: RoleDriver, NodeName: found.Spec.NodeName}, nil
}

func betterDriver(p, than *corev1.Pod) bool {
	if (p.Spec.NodeName != "") != (than.Spec.NodeName != "") {
		return p.Spec.NodeName != ""
	}
	return p.Name < than.Name
}

// ownerPod reads an owner pod the cache does not hold. What it finds is remembered by UID once the pod is
// bound (a pod's node never changes), and so is its absence (a UID never comes back).
func (s *State) ownerPod(ctx context.Context, namespace string, owner *metav1.OwnerReference) (Driver, error) {
	if d, ok := s.ownerNodes.Get(owner.UID); ok && owner.UID != "" {
		return d, nil
	}
	if s.owners == nil {
		return Driver{}, nil
	}
	pod, err := s.owners.GetPod(ctx, namespace, owner.Name)
	if err != nil {
		return Driver{}, fmt.Errorf("reading pod %s/%s, the owner of the executor: %w", namespace, owner.Name, err)
	}
	var d Driver
	if pod != nil && (owner.UID == "" || pod.UID == owner.UID) {
		d = Driver{Name: pod.Name, Role: pod.Labels[LabelRole], NodeName: pod.Spec.NodeName}
	}
	if owner.UID != "" && (!d.Found() || d.NodeName != "") {
		// A copy: the executor's strings may refer to the bytes of its admission request (the webhook decodes
		// without copying them), which the memo must not keep alive.
		s.ownerNodes.Add(types.UID(strings.Clone(string(owner.UID))), d)
	}
	return d, nil
}

// NodeLabel returns the value of a node's label; ok is false when the node is unknown or lacks the label.
func (s *State) NodeLabel(node, key string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, ok := s.nodes[node]
	if !ok {
		return "", false
	}
	v, ok := n.Labels[key]
	return v, ok && v != ""
}

// ExecutorsZone is the zone (value of key) where most bound executors of the application run, ties broken
// by name; "" when none is bound to a node that has the label. Client-mode executors follow it.
func (s *State) ExecutorsZone(namespace, app, key string) string {
	if app == "" {
		return ""
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	counts := map[string]int{}
	for _, p := range s.apps[appKey{namespace, app}] {
		if p.Labels[LabelRole] != RoleExecutor || p.Spec.NodeName == "" || p.DeletionTimestamp != nil {
			continue
		}
		if n, ok := s.nodes[p.Spec.NodeName]; ok && n.Labels[key] != "" {
			counts[n.Labels[key]]++
		}
	}
	best := ""
	for z, c := range counts {
		if best == "" || c > counts[best] || c == counts[best] && z < best {
			best = z
		}
	}
	return best
}

// Relaxed returns why the application's zone pin is relaxed; "" when it is not.
func (s *State) Relaxed(namespace, app string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r := s.relaxed[appKey{namespace, app}]; r != nil {
		return r.reason
	}
	return ""
}

// Relax records that the application's zone pin is relaxed for reason (before its stranded executors are
// deleted, so their replacements are admitted relaxed even before the label reaches the cache).
func (s *State) Relax(namespace, app, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ak := appKey{namespace, app}
	if s.relaxed[ak] == nil {
		r := &relaxation{reason: reason}
		if len(s.apps[ak]) == 0 {
			r.emptySince = s.now()
		}
		s.relaxed[ak] = r
	}
}

// ForgetRelaxed drops the relaxations of applications that have had no pod for longer than after.
func (s *State) ForgetRelaxed(after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ak, r := range s.relaxed {
		if !r.emptySince.IsZero() && s.now().Sub(r.emptySince) > after {
			delete(s.relaxed, ak)
		}
	}
}

// PendingExecutor is an executor the scheduler could not place.
type PendingExecutor struct {
	Namespace, Name, App string
	UID                  types.UID
	// Created is when the pod was created: it has waited since then.
	Created time.Time
	// Pinned is true when the pod carries a required zone term (node affinity on the topology key, or pod
	// affinity with it as topology key).
	Pinned bool
	// Strictness is the pod's LabelZoneStrictness; empty when it has none.
	Strictness string
}

// PendingExecutors lists the executors the scheduler marked unschedulable (PodScheduled False, reason
// Unschedulable) and that are not being deleted, sorted by namespace and name. key is the zone topology key.
func (s *State) PendingExecutors(key string) []PendingExecutor {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []PendingExecutor
	for _, p := range s.pods {
		if p.Labels[LabelRole] != RoleExecutor || p.Spec.NodeName != "" || p.DeletionTimestamp != nil || !unschedulable(p) {
			continue
		}
		out = append(out, PendingExecutor{
			Namespace: p.Namespace, Name: p.Name, App: p.Labels[LabelAppID], UID: p.UID,
			Created: p.CreationTimestamp.Time, Pinned: RequiresZone(p, key), Strictness: p.Labels[LabelZoneStrictness],
		})
	}
	slices.SortFunc(out, func(a, b PendingExecutor) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	return out
}

func unschedulable(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable
		}
	}
	return false
}

// RequiresZone reports whether the pod has a required zone term: a required node-affinity requirement on
// key, or a required pod-affinity term with key as its topology key.
func RequiresZone(p *corev1.Pod, key string) bool {
	a := p.Spec.Affinity
	if a == nil {
		return false
	}
	if a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			if slices.ContainsFunc(t.MatchExpressions, func(r corev1.NodeSelectorRequirement) bool { return r.Key == key }) {
				return true
			}
		}
	}
	if a.PodAffinity != nil {
		return slices.ContainsFunc(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, func(t corev1.PodAffinityTerm) bool { return t.TopologyKey == key })
	}
	return false
}
