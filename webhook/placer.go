package webhook

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/sparkplace/sparkplace/cluster"
	"github.com/sparkplace/sparkplace/placement"
	"github.com/sparkplace/sparkplace/policies"
)

// Engine is what the Placer needs from the policy engine (policies.Engine): the version in effect, from
// which one admission takes its decision, bundle hash, guardrails and zone configuration.
type Engine interface {
	Current() *policies.Version
}

// ErrNotSpark is returned for a pod whose spark-role label is not driver or executor.
var ErrNotSpark = errors.New("not a Spark pod: the spark-role label is neither driver nor executor")

// PolicyError is a failure of the policy bundle rather than of the pod: an evaluation error, or a decision
// that breaks a guardrail.
type PolicyError struct {
	// Guardrail is true when the decision broke a guardrail.
	Guardrail bool
	Err       error
}

func (e *PolicyError) Error() string {
	if e.Guardrail {
		return "policy decision breaks a guardrail: " + e.Err.Error()
	}
	return "policy error: " + e.Err.Error()
}

func (e *PolicyError) Unwrap() error { return e.Err }

// Outcome is what placing one pod produced. The pod passed to Place is mutated in place.
//
// Decision is the decision cache's own (policies.Version.DecideKeyed), shared with every pod of its key, and
// what Place added to the pod may share memory with it (a toleration's seconds, a term's values, an init
// container's command and resources): change neither, or change a deep copy. Place itself only reads it
// (TestPlacingLeavesCachedDecisionsAlone).
type Outcome struct {
	Role     string
	Input    *policies.Input
	Decision *placement.Decision
	// Changed lists the pod fields that differ from the admitted pod (including the annotation).
	Changed []placement.Field
	// Respected lists what the pod set explicitly and the decision left alone.
	Respected []string
	// Unsatisfiable is true when the pod was admitted with a required zone term that no schedulable node
	// can meet (zone.mode strict, or a policy that ignores input.zone.unschedulable).
	Unsatisfiable bool
	// DecisionID identifies Decision across pods and bundle versions (the bundle's hash and the decision's
	// cache key): pods with equal IDs got equal decisions.
	DecisionID string
}

// Denied reports whether the policy rejected the pod; then nothing was applied.
func (o *Outcome) Denied() bool { return o.Decision != nil && len(o.Decision.Deny) > 0 }

// Placer decides and applies placement for Spark pods: the code path the webhook and `policy eval` share.
type Placer struct {
	Engine  Engine
	Cluster *cluster.State
	// Metrics, when set, records policy evaluation latency, unsatisfiable terms and driver zone choices.
	Metrics *Metrics
	// pools remembers the capacity pool of each profile for driver zone choices.
	pools driverPools
	// explanations holds the annotation of recent decisions, by DecisionID, for the pods that get it as it
	// is (no zone choice, nothing respected): most of them.
	explanations     *lru.Cache[string, string]
	explanationsOnce sync.Once
}

// Place classifies pod, evaluates the policies for it and, unless they deny it, applies the decision and
// annotates the pod. namespace is the admission request's (a pod being created may not carry one yet).
//
// For an executor the decision is checked against the nodes: when its required zone term leaves the pod no
// schedulable node while the pod without that term would have one, the policy is asked again with
// input.zone.unschedulable set, so a term no node can meet is not added (unless the policy insists, as
// zone.mode strict does; then Outcome.Unsatisfiable says so).
func (p *Placer) Place(ctx context.Context, pod *corev1.Pod, namespace, operation string) (*Outcome, error) {
	role := sparkRole(pod)
	if role == "" {
		return nil, ErrNotSpark
	}
	if pod.Namespace == "" {
		pod.Namespace = namespace
	}
	labels := p.Cluster.NamespaceLabels(namespace)
	ns := policies.Namespace{Name: namespace, Labels: labels, PodSecurity: labels[policies.PodSecurityLabel]}
	policy := p.Engine.Current()
	zc := policy.Zone()
	var driver policies.Driver
	var zone policies.Zone
	if role == RoleExecutor {
		var err error
		if driver, zone, err = p.executorFacts(ctx, namespace, pod, zc.TopologyKey); err != nil {
			return nil, err
		}
	}
	out := &Outcome{Role: role, Input: buildInput(pod, role, operation, ns, driver, zone)}
	var steer *zoneSteer
	if role == RoleDriver {
		if steer = p.chooseDriverZone(ctx, policy, pod, ns); steer != nil {
			out.Input.ZoneChoice = &policies.ZoneChoice{Zone: steer.choice.Zone, Reason: steer.choice.Reason}
		}
	}
	d, key, err := p.decide(ctx, policy, out.Input)
	if err == nil && role == RoleExecutor && p.zoneTermUnmeetable(policy, key, pod, d, zc.TopologyKey) {
		out.Input.Zone.Unschedulable = true
		if d, key, err = p.decide(ctx, policy, out.Input); err == nil && p.zoneTermUnmeetable(policy, key, pod, d, zc.TopologyKey) {
			out.Unsatisfiable = true
			if p.Metrics != nil {
				p.Metrics.UnsatisfiableTerms.Inc()
			}
		}
	}
	if err != nil {
		err = &PolicyError{Err: err}
	} else {
		out.Decision, out.DecisionID = d, policy.Hash()+string(key[:])
		// Equal keys, equal decisions (in one bundle): validate a decision once, not for every pod it places.
		var buf [128]byte
		if !p.Cluster.Remember(append(append(append(buf[:0], "guardrails\x00"...), policy.Hash()...), key[:]...), func() bool { return policy.Guardrails().Validate(d) == nil }) {
			err = &PolicyError{Guardrail: true, Err: policy.Guardrails().Validate(d)}
		}
	}
	var notes []string
	if steer != nil {
		applied := d
		if err != nil {
			applied = nil
		}
		notes = p.settle(steer, applied, zc.TopologyKey)
	}
	if err != nil {
		return out, err
	}
	if out.Denied() {
		return out, nil
	}
	res := placement.Apply(pod, d)
	out.Changed, out.Respected = res.Changed, res.Respected
	var explained string
	if steer == nil && len(res.Respected) == 0 {
		explained = p.explanation(out.DecisionID, policy.Hash(), d)
	} else {
		explained = placement.Explanation{Rules: d.Rules, Bundle: policy.Hash(), Respected: res.Respected, Notes: append(notes, d.Notes...)}.JSON()
	}
	if placement.AnnotateJSON(pod, explained) && !slices.Contains(out.Changed, placement.FieldAnnotations) {
		out.Changed = append(out.Changed, placement.FieldAnnotations)
	}
	return out, nil
}

// explanation is the annotation of a pod that decision d (id: with its bundle's hash) placed as it is.
func (p *Placer) explanation(id, bundle string, d *placement.Decision) string {
	p.explanationsOnce.Do(func() { p.explanations, _ = lru.New[string, string](256) })
	if e, ok := p.explanations.Get(id); ok {
		return e
	}
	e := placement.Explanation{Rules: d.Rules, Bundle: bundle, Notes: d.Notes}.JSON()
	p.explanations.Add(id, e)
	return e
}

func (p *Placer) decide(ctx context.Context, policy *policies.Version, in *policies.Input) (*placement.Decision, policies.InputKey, error) {
	start := time.Now()
	d, key, err := policy.DecideKeyed(ctx, in)
	if p.Metrics != nil {
		p.Metrics.PolicyLatency.Observe(time.Since(start).Seconds())
	}
	return d, key, err
}

// executorFacts finds the executor's driver and the zone it should follow: the topology label of the
// driver's node, or with no driver pod (client mode) the zone its application's executors run in.
func (p *Placer) executorFacts(ctx context.Context, namespace string, pod *corev1.Pod, key string) (policies.Driver, policies.Zone, error) {
	d, err := p.Cluster.Driver(ctx, namespace, pod)
	if err != nil {
		return policies.Driver{}, policies.Zone{}, err
	}
	app := pod.Labels[LabelAppID]
	driver := policies.Driver{Found: d.Found(), Name: d.Name, Role: d.Role, NodeName: d.NodeName, Scheduled: d.NodeName != ""}
	zone := policies.Zone{Relaxed: p.Cluster.Relaxed(namespace, app)}
	switch {
	case d.NodeName != "":
		if z, ok := p.Cluster.NodeLabel(d.NodeName, key); ok {
			driver.Zone, zone.Value, zone.Source = z, z, "driver"
		}
	case !d.Found():
		if z := p.Cluster.ExecutorsZone(namespace, app, key); z != "" {
			zone.Value, zone.Source = z, "executors"
		}
	}
	return driver, zone, nil
}

// zoneTermUnmeetable reports whether d gives the pod a required zone term (node affinity on key, or pod
// affinity with key as topology key) that leaves it no schedulable node, when without it the pod has one.
// The answer is a function of the decision (its key and the bundle) and of the pod's own scheduling
// constraints, which the decision's key need not hold (the policy may not read them), so it is remembered
// per both until a node changes: the executors of an application cost one check.
func (p *Placer) zoneTermUnmeetable(policy *policies.Version, decision policies.InputKey, pod *corev1.Pod, d *placement.Decision, key string) bool {
	var buf [512]byte
	k := append(append(buf[:0], policy.Hash()...), decision[:]...)
	return p.Cluster.Remember(cluster.AppendConstraintsKey(k, pod), func() bool { return p.unmeetable(pod, d, key) })
}

func (p *Placer) unmeetable(pod *corev1.Pod, d *placement.Decision, key string) bool {
	isZoneReq := func(r corev1.NodeSelectorRequirement) bool { return r.Key == key }
	isZoneTerm := func(t corev1.PodAffinityTerm) bool { return t.TopologyKey == key }
	if !slices.ContainsFunc(d.NodeAffinity, isZoneReq) && !slices.ContainsFunc(d.PodAffinity, isZoneTerm) {
		return false
	}
	with := &placement.Decision{NodeSelector: d.NodeSelector, Tolerations: d.Tolerations, NodeAffinity: d.NodeAffinity, PodAffinity: d.PodAffinity}
	if p.Cluster.Schedulable(schedulingView(pod, with)) {
		return false
	}
	without := &placement.Decision{
		NodeSelector: d.NodeSelector, Tolerations: d.Tolerations,
		NodeAffinity: slices.DeleteFunc(slices.Clone(d.NodeAffinity), isZoneReq),
		PodAffinity:  slices.DeleteFunc(slices.Clone(d.PodAffinity), isZoneTerm),
	}
	return p.Cluster.Schedulable(schedulingView(pod, without))
}

// schedulingView is the pod's scheduling constraints with d applied, on a copy. It has the pod's labels: a
// pod affinity term of d that selects by matchLabelKeys is added only when the pod has the label.
func schedulingView(pod *corev1.Pod, d *placement.Decision) *corev1.Pod {
	v := &corev1.Pod{}
	v.Labels = maps.Clone(pod.Labels)
	v.Spec.NodeSelector = maps.Clone(pod.Spec.NodeSelector)
	v.Spec.Tolerations = slices.Clone(pod.Spec.Tolerations)
	if pod.Spec.Affinity != nil {
		v.Spec.Affinity = pod.Spec.Affinity.DeepCopy()
	}
	placement.Apply(v, d)
	return v
}
