package cluster

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/sparkplace/sparkplace/zonecapacity"
)

// PodGetter reads one pod the caches do not hold. The only such read is the pod an executor's ownerReference
// names when that pod is not a Spark pod (the notebook or shell pod of a client-mode driver); its node is
// remembered by UID, so an application costs one read per webhook replica, not one per executor.
// GetPod returns nil and no error when the pod does not exist.
type PodGetter interface {
	GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
}

// appKey identifies a Spark application: its namespace and spark-app-selector.
type appKey struct{ namespace, app string }

// relaxation is an application's relaxed zone pin: the reason, and since when the application has had no
// pod in the cache (zero while it has some), after which it is forgotten.
type relaxation struct {
	reason     string
	emptySince time.Time
}

// State is the cluster as placement sees it: the stripped Spark pods, nodes and namespace labels, indexed.
// It is safe for concurrent use. Objects handed in are kept, not copied, and never changed (as informer
// objects must not be): they are the informer's own stripped copies.
type State struct {
	mu         sync.RWMutex
	pods       map[types.NamespacedName]*corev1.Pod
	apps       map[appKey]map[string]*corev1.Pod
	nodes      map[string]*Node
	namespaces map[string]map[string]string
	relaxed    map[appKey]*relaxation
	// nodeGen changes whenever a node changes in a way that matters to scheduling (labels, taints, cordon,
	// readiness); the fit memo is valid for one generation.
	nodeGen uint64

	fitMu  sync.Mutex
	fitGen uint64
	fits   map[string]bool

	// capacity is the free spot capacity per zone, fed by the same events (see Capacity).
	capacity *zonecapacity.Index

	owners     PodGetter
	ownerNodes *lru.Cache[types.UID, Driver]
	now        func() time.Time
}

// NewState returns an empty state. owners reads non-Spark owner pods (nil: they are never found).
func NewState(owners PodGetter) *State {
	memo, _ := lru.New[types.UID, Driver](4096) // size > 0: cannot fail
	return &State{
		pods: map[types.NamespacedName]*corev1.Pod{}, apps: map[appKey]map[string]*corev1.Pod{},
		nodes: map[string]*Node{}, namespaces: map[string]map[string]string{},
		relaxed: map[appKey]*relaxation{}, fits: map[string]bool{},
		owners: owners, ownerNodes: memo, now: time.Now,
		capacity: zonecapacity.New(zonecapacity.Options{}),
	}
}

// SetPod adds or replaces a Spark pod (already stripped). Other pods are ignored.
func (s *State) SetPod(pod *corev1.Pod) {
	if !IsSparkPod(pod) {
		return
	}
	s.capacity.UpsertPod(pod)
	s.mu.Lock()
	defer s.mu.Unlock()
	key := types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
	if old, ok := s.pods[key]; ok {
		s.unindexApp(old)
	}
	s.pods[key] = pod
	ak := appKey{pod.Namespace, pod.Labels[LabelAppID]}
	if s.apps[ak] == nil {
		s.apps[ak] = map[string]*corev1.Pod{}
	}
	s.apps[ak][pod.Name] = pod
	if reason := pod.Labels[LabelZoneRelaxed]; reason != "" {
		s.relaxed[ak] = &relaxation{reason: reason}
	} else if r := s.relaxed[ak]; r != nil {
		r.emptySince = time.Time{}
	}
}

// DeletePod removes a Spark pod.
func (s *State) DeletePod(namespace, name string) {
	s.capacity.DeletePod(namespace, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	key := types.NamespacedName{Namespace: namespace, Name: name}
	if old, ok := s.pods[key]; ok {
		s.unindexApp(old)
		delete(s.pods, key)
	}
}

func (s *State) unindexApp(pod *corev1.Pod) {
	ak := appKey{pod.Namespace, pod.Labels[LabelAppID]}
	delete(s.apps[ak], pod.Name)
	if len(s.apps[ak]) == 0 {
		delete(s.apps, ak)
		if r := s.relaxed[ak]; r != nil {
			r.emptySince = s.now()
		}
	}
}

// SetNode adds or replaces a node.
func (s *State) SetNode(node *corev1.Node) { s.SetStrippedNode(NodeOf(node)) }

// SetStrippedNode adds or replaces a node as the caches keep it.
func (s *State) SetStrippedNode(node *Node) {
	s.capacity.UpsertNodeInfo(zonecapacity.NodeInfo{
		Name: node.Name, Labels: node.Labels, Taints: node.Taints, Schedulable: node.Schedulable(), Allocatable: node.Allocatable,
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.nodes[node.Name]; !ok || schedulingChanged(old, node) {
		s.nodeGen++
	}
	s.nodes[node.Name] = node
}

// DeleteNode removes a node.
func (s *State) DeleteNode(name string) {
	s.capacity.DeleteNode(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.nodes[name]; ok {
		delete(s.nodes, name)
		s.nodeGen++
	}
}

func schedulingChanged(old, cur *Node) bool {
	return !maps.Equal(old.Labels, cur.Labels) || old.Unschedulable != cur.Unschedulable || old.Ready != cur.Ready ||
		!slices.EqualFunc(old.Taints, cur.Taints, func(a, b corev1.Taint) bool {
			return a.Key == b.Key && a.Value == b.Value && a.Effect == b.Effect
		})
}

// SetNamespace records a namespace's labels; DeleteNamespace forgets them.
func (s *State) SetNamespace(name string, labels map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.namespaces[name] = labels
}

func (s *State) DeleteNamespace(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.namespaces, name)
}

// NamespaceLabels returns the labels of a namespace; nil for one the state does not know.
func (s *State) NamespaceLabels(name string) map[string]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.namespaces[name]
}

// Counts reports how many Spark pods and nodes the state holds.
func (s *State) Counts() (pods, nodes int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.pods), len(s.nodes)
}

// PodHandler, NodeHandler and NamespaceHandler keep the state in step with informers whose transforms are
// StripPod, StripNode and StripNamespace.
func (s *State) PodHandler() toolscache.ResourceEventHandler {
	return handler(func(p *corev1.Pod) { s.SetPod(p) }, func(p *corev1.Pod) { s.DeletePod(p.Namespace, p.Name) })
}

func (s *State) NodeHandler() toolscache.ResourceEventHandler {
	return handler(s.SetStrippedNode, func(n *Node) { s.DeleteNode(n.Name) })
}

// NamespaceHandler takes metadata-only namespaces (*metav1.PartialObjectMetadata) or full ones.
func (s *State) NamespaceHandler() toolscache.ResourceEventHandler {
	type named interface {
		GetName() string
		GetLabels() map[string]string
	}
	return handler(func(ns named) { s.SetNamespace(ns.GetName(), ns.GetLabels()) }, func(ns named) { s.DeleteNamespace(ns.GetName()) })
}

func handler[T any](set, del func(T)) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(T); ok {
				set(o)
			}
		},
		UpdateFunc: func(_, obj any) {
			if o, ok := obj.(T); ok {
				set(o)
			}
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if o, ok := obj.(T); ok {
				del(o)
			}
		},
	}
}
