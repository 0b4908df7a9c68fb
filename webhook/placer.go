package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/sparkplace/sparkplace/placement"
	"github.com/sparkplace/sparkplace/policies"
)

// Engine is what the Placer needs from the policy engine (policies.Engine).
type Engine interface {
	Decide(ctx context.Context, in *policies.Input) (*placement.Decision, error)
	Hash() string
	Config() map[string]any
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
	// guardrails caches the guardrails parsed from the engine's config, per bundle hash.
	guardrails atomic.Pointer[hashedGuardrails]
}

type hashedGuardrails struct {
	hash string
	g    placement.Guardrails
	err  error
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
	hash := p.Engine.Hash()
	start := time.Now()
	d, err := p.Engine.Decide(ctx, out.Input)
	if p.Metrics != nil {
		p.Metrics.PolicyLatency.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		return out, &PolicyError{Err: err}
	}
	out.Decision = d
	g, err := p.guardrailsFor(hash)
	if err != nil {
		return out, &PolicyError{Guardrail: true, Err: err}
	}
	if err := g.Validate(d); err != nil {
		return out, &PolicyError{Guardrail: true, Err: err}
	}
	if out.Denied() {
		return out, nil
	}
	res := placement.Apply(pod, d)
	out.Changed, out.Respected = res.Changed, res.Respected
	if placement.Annotate(pod, placement.Explanation{Rules: d.Rules, Bundle: hash, Respected: res.Respected}) && !slices.Contains(out.Changed, placement.FieldAnnotations) {
		out.Changed = append(out.Changed, placement.FieldAnnotations)
	}
	return out, nil
}

// guardrailsFor parses data.sparkplace.config.guardrails once per bundle version.
func (p *Placer) guardrailsFor(hash string) (placement.Guardrails, error) {
	if cur := p.guardrails.Load(); cur != nil && cur.hash == hash {
		return cur.g, cur.err
	}
	hg := &hashedGuardrails{hash: hash}
	raw, err := json.Marshal(p.Engine.Config()["guardrails"])
	if err == nil {
		err = json.Unmarshal(raw, &hg.g)
	}
	if err != nil {
		hg.err = fmt.Errorf("config guardrails: %w", err)
	}
	p.guardrails.Store(hg)
	return hg.g, hg.err
}
