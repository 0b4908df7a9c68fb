package webhook

import (
	"context"
	"errors"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/sparkplace/sparkplace/placement"
	"github.com/sparkplace/sparkplace/policies"
)

// Engine is what the Placer needs from the policy engine (policies.Engine): the version in effect, from
// which one admission takes its decision, bundle hash and guardrails.
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
type Outcome struct {
	Role     string
	Input    *policies.Input
	Decision *placement.Decision
	// Changed lists the pod fields that differ from the admitted pod (including the annotation).
	Changed []placement.Field
	// Respected lists what the pod set explicitly and the decision left alone.
	Respected []string
}

// Denied reports whether the policy rejected the pod; then nothing was applied.
func (o *Outcome) Denied() bool { return o.Decision != nil && len(o.Decision.Deny) > 0 }

// Placer decides and applies placement for Spark pods: the code path the webhook and `policy eval` share.
type Placer struct {
	Engine  Engine
	Cluster ClusterState
	// Metrics, when set, records policy evaluation latency.
	Metrics *Metrics
}

// Place classifies pod, evaluates the policies for it and, unless they deny it, applies the decision and
// annotates the pod. namespace is the admission request's (a pod being created may not carry one yet).
func (p *Placer) Place(ctx context.Context, pod *corev1.Pod, namespace, operation string) (*Outcome, error) {
	role := sparkRole(pod)
	if role == "" {
		return nil, ErrNotSpark
	}
	if pod.Namespace == "" {
		pod.Namespace = namespace
	}
	ns, err := p.Cluster.Namespace(ctx, namespace)
	if err != nil {
		return nil, err
	}
	var driver policies.Driver
	if role == RoleExecutor {
		if driver, err = p.Cluster.Driver(ctx, namespace, pod); err != nil {
			return nil, err
		}
	}
	out := &Outcome{Role: role, Input: buildInput(pod, role, operation, ns, driver)}
	policy := p.Engine.Current()
	start := time.Now()
	d, err := policy.Decide(ctx, out.Input)
	if p.Metrics != nil {
		p.Metrics.PolicyLatency.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		return out, &PolicyError{Err: err}
	}
	out.Decision = d
	if err := policy.Guardrails().Validate(d); err != nil {
		return out, &PolicyError{Guardrail: true, Err: err}
	}
	if out.Denied() {
		return out, nil
	}
	res := placement.Apply(pod, d)
	out.Changed, out.Respected = res.Changed, res.Respected
	if placement.Annotate(pod, placement.Explanation{Rules: d.Rules, Bundle: policy.Hash(), Respected: res.Respected}) && !slices.Contains(out.Changed, placement.FieldAnnotations) {
		out.Changed = append(out.Changed, placement.FieldAnnotations)
	}
	return out, nil
}
