package zonecapacity

import (
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Spark's pod labels the index reads.
const (
	labelRole  = "spark-role"
	labelAppID = "spark-app-selector"
)

// Options configure an Index.
type Options struct {
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Index is the incremental estimate of free capacity per zone. Node, pod and DaemonSet events update running
// sums (O(pools) per event); Choose reads them (O(zones)). It is safe for concurrent use.
type Index struct {
	now func() time.Time

	mu         sync.Mutex
	nodes      map[string]*node
	pods       map[podKey]*pod
	daemonSets map[podKey]*daemonSet
	pools      []*poolState // by PoolID
	poolIDs    map[string]PoolID
	// pending sums the requests of unbound executors pinned to a zone, by zone key then zone.
	pending map[string]map[string]Resources
	// reservations hold the size hints of recently admitted drivers, by application; expiry lists them in
	// the order they expire (one TTL per choice, so a queue suffices).
	reservations map[string]*reservation
	reserved     map[string]map[string]reservedSum // by zone key, then zone
	expiry       []expiring
	// turn rotates ties, so a burst of equal choices spreads over the zones.
	turn int
}

type podKey struct{ namespace, name string }

// node is what the index keeps of a Node.
type node struct {
	name        string
	labels      map[string]string
	taints      []corev1.Taint
	schedulable bool
	// placeholder marks a node not (or no longer) known that pods are bound to; it holds only their sum.
	placeholder bool
	allocatable Resources
	// pods sums the requests of the counted pods bound here; daemons those of the DaemonSets that run here.
	pods, daemons Resources
}

func (n *node) free() Resources { return n.allocatable.minus(n.pods).minus(n.daemons).atLeastZero() }

// pod is what the index keeps of a Spark pod.
type pod struct {
	app      string // namespace/spark-app-selector, "" without the label
	role     string
	nodeName string
	requests Resources
	// pins are the (zone key, zone) pairs an unbound executor is pinned to; empty once bound.
	pins map[string]string
}

type daemonSet struct {
	nodeSelector map[string]string
	tolerations  []corev1.Toleration
	requests     Resources
}

// New returns an empty index.
func New(o Options) *Index {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Index{
		now:          o.Now,
		nodes:        map[string]*node{},
		pods:         map[podKey]*pod{},
		daemonSets:   map[podKey]*daemonSet{},
		poolIDs:      map[string]PoolID{},
		pending:      map[string]map[string]Resources{},
		reservations: map[string]*reservation{},
		reserved:     map[string]map[string]reservedSum{},
	}
}

// UpsertNode records a node added or changed.
func (x *Index) UpsertNode(n *corev1.Node) {
	x.UpsertNodeInfo(NodeInfo{
		Name: n.Name, Labels: n.Labels, Taints: n.Spec.Taints,
		Schedulable: !n.Spec.Unschedulable && nodeReady(n) && n.DeletionTimestamp == nil,
		Allocatable: ResourcesOf(n.Status.Allocatable),
	})
}

// NodeInfo is what the index reads of a node. Labels and Taints are kept, not copied.
type NodeInfo struct {
	Name   string
	Labels map[string]string
	Taints []corev1.Taint
	// Schedulable: Ready, not cordoned, not being deleted.
	Schedulable bool
	Allocatable Resources
}

// UpsertNodeInfo is UpsertNode for a node already reduced to what the index reads.
func (x *Index) UpsertNodeInfo(n NodeInfo) {
	x.mu.Lock()
	defer x.mu.Unlock()
	nn := &node{name: n.Name, labels: n.Labels, taints: n.Taints, schedulable: n.Schedulable, allocatable: n.Allocatable}
	if old := x.nodes[n.Name]; old != nil {
		nn.pods = old.pods
		x.removeNode(old)
	}
	for _, ds := range x.daemonSets {
		if ds.runsOn(nn) {
			nn.daemons = nn.daemons.plus(ds.requests)
		}
	}
	x.nodes[n.Name] = nn
	for _, ps := range x.pools {
		ps.add(nn)
	}
}

// DeleteNode records a node gone. The pods bound to it stay counted until their own deletion, as they do
// in the API server.
func (x *Index) DeleteNode(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	old := x.nodes[name]
	if old == nil {
		return
	}
	x.removeNode(old)
	delete(x.nodes, name)
	if old.pods != (Resources{}) {
		// Its pods are still counted until they are deleted: keep their sum on a placeholder.
		x.nodes[name] = &node{name: name, placeholder: true, pods: old.pods}
	}
}

func (x *Index) removeNode(n *node) {
	for _, ps := range x.pools {
		ps.remove(n)
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// UpsertPod records a pod added or changed. Only pods with a spark-role label are counted (the index is fed
// the webhook's Spark pod cache); finished pods free their requests.
func (x *Index) UpsertPod(p *corev1.Pod) {
	x.mu.Lock()
	defer x.mu.Unlock()
	key := podKey{p.Namespace, p.Name}
	old := x.pods[key]
	if old != nil {
		x.uncount(old)
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.Labels[labelRole] == "" {
		delete(x.pods, key)
		return
	}
	np := &pod{role: p.Labels[labelRole], nodeName: p.Spec.NodeName, requests: PodRequests(&p.Spec)}
	if app := p.Labels[labelAppID]; app != "" {
		np.app = p.Namespace + "/" + app
	}
	if np.nodeName == "" && np.role == "executor" {
		np.pins = pins(&p.Spec)
	}
	x.pods[key] = np
	x.count(np)
	if old == nil && np.role == "executor" {
		// An executor of a recently admitted driver now counts by itself: it takes over from the hint.
		if r := x.reservations[np.app]; r != nil {
			x.consume(r, np.requests)
		}
	}
}

// DeletePod records a pod gone. A driver gone ends its application's reservation.
func (x *Index) DeletePod(namespace, name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	key := podKey{namespace, name}
	old := x.pods[key]
	if old == nil {
		return
	}
	x.uncount(old)
	delete(x.pods, key)
	if old.role == "driver" {
		if r := x.reservations[old.app]; r != nil && old.app != "" {
			x.drop(old.app, r)
		}
	}
}

func (x *Index) count(p *pod)   { x.account(p, 1) }
func (x *Index) uncount(p *pod) { x.account(p, -1) }

// account adds (sign 1) or removes (-1) a pod's requests where they count: on its node, or as pending demand
// in the zones it is pinned to.
func (x *Index) account(p *pod, sign int) {
	req := p.requests.times(sign)
	if p.nodeName != "" {
		switch n := x.nodes[p.nodeName]; {
		case n != nil && n.placeholder:
			if n.pods = n.pods.plus(req); n.pods == (Resources{}) {
				delete(x.nodes, p.nodeName) // a placeholder with nothing left to hold
			}
		case n != nil:
			x.changeNode(n, func() { n.pods = n.pods.plus(req) })
		default:
			// Bound to a node not (yet) seen: keep the sum on a placeholder so that it is right when it comes.
			x.nodes[p.nodeName] = &node{name: p.nodeName, placeholder: true, pods: req}
		}
		return
	}
	for key, zone := range p.pins {
		byZone := x.pending[key]
		if byZone == nil {
			byZone = map[string]Resources{}
			x.pending[key] = byZone
		}
		byZone[zone] = byZone[zone].plus(req)
	}
}

// changeNode applies change to n while keeping the pools' sums right.
func (x *Index) changeNode(n *node, change func()) {
	x.removeNode(n)
	change()
	for _, ps := range x.pools {
		ps.add(n)
	}
}

// pins returns the label values a pod is pinned to: nodeSelector entries, and In requirements with one
// value that every required node selector term carries.
func pins(spec *corev1.PodSpec) map[string]string {
	out := map[string]string{}
	for k, v := range spec.NodeSelector {
		out[k] = v
	}
	aff := spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return out
	}
	terms := aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) != 1 {
		return out // ORed terms pin nothing for sure
	}
	for _, r := range terms[0].MatchExpressions {
		if r.Operator == corev1.NodeSelectorOpIn && len(r.Values) == 1 {
			out[r.Key] = r.Values[0]
		}
	}
	return out
}

// UpsertDaemonSet records a DaemonSet added or changed: its pod template's requests count on every node its
// node selector and tolerations admit (its node affinity is not read).
func (x *Index) UpsertDaemonSet(ds *appsv1.DaemonSet) {
	x.mu.Lock()
	defer x.mu.Unlock()
	key := podKey{ds.Namespace, ds.Name}
	x.setDaemonSet(key, &daemonSet{
		nodeSelector: ds.Spec.Template.Spec.NodeSelector,
		tolerations:  ds.Spec.Template.Spec.Tolerations,
		requests:     PodRequests(&ds.Spec.Template.Spec),
	})
}

// DeleteDaemonSet records a DaemonSet gone.
func (x *Index) DeleteDaemonSet(namespace, name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.setDaemonSet(podKey{namespace, name}, nil)
}

// setDaemonSet replaces a DaemonSet (nil removes it). DaemonSets change rarely, so this walks the nodes.
func (x *Index) setDaemonSet(key podKey, ds *daemonSet) {
	old := x.daemonSets[key]
	if ds == nil {
		delete(x.daemonSets, key)
	} else {
		x.daemonSets[key] = ds
	}
	for _, n := range x.nodes {
		var delta Resources
		if old != nil && old.runsOn(n) {
			delta = delta.minus(old.requests)
		}
		if ds != nil && ds.runsOn(n) {
			delta = delta.plus(ds.requests)
		}
		if delta != (Resources{}) {
			x.changeNode(n, func() { n.daemons = n.daemons.plus(delta) })
		}
	}
}

func (ds *daemonSet) runsOn(n *node) bool {
	if n.placeholder {
		return false
	}
	for k, v := range ds.nodeSelector {
		if n.labels[k] != v {
			return false
		}
	}
	return tolerates(ds.tolerations, n.taints)
}

// PoolID names a pool registered with Pool.
type PoolID int

// Pool registers p (once: the same pool gets the same ID) and returns its ID for Requests. The first
// registration of a pool walks the nodes once to start its sums; there are a handful of pools (profiles).
func (x *Index) Pool(p Pool) PoolID {
	x.mu.Lock()
	defer x.mu.Unlock()
	key := p.key()
	if id, ok := x.poolIDs[key]; ok {
		return id
	}
	ps := &poolState{pool: p, members: map[string]bool{}, zones: map[string]*zoneSums{}, anyNodes: map[string]int{}}
	for _, n := range x.nodes {
		if !n.placeholder {
			ps.add(n)
		}
	}
	id := PoolID(len(x.pools))
	x.pools = append(x.pools, ps)
	x.poolIDs[key] = id
	return id
}

// Stats are the index's sizes, for tests and benchmarks.
type Stats struct {
	Nodes, Pods, DaemonSets, Pools, Reservations int
}

// Stats returns the index's sizes.
func (x *Index) Stats() Stats {
	x.mu.Lock()
	defer x.mu.Unlock()
	return Stats{Nodes: len(x.nodes), Pods: len(x.pods), DaemonSets: len(x.daemonSets), Pools: len(x.pools), Reservations: len(x.reservations)}
}

// sortedZones returns the keys of m in order.
func sortedZones[V any](m map[string]V) []string {
	zones := make([]string, 0, len(m))
	for z := range m {
		zones = append(zones, z)
	}
	slices.Sort(zones)
	return zones
}
