package policies

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/sparkplace/sparkplace/placement"
)

// Query is the Rego entry point every policy bundle must define.
const Query = "data.sparkplace.placement.decision"

// Options configure an Engine. The zero value serves the embedded bundle with its default config.
type Options struct {
	// PolicyDir holds extra or replacement policies and their data: each *.rego file (at any depth) replaces
	// the embedded file of the same name (e.g. zone.rego, and zone_test.rego for its tests) or is added to the
	// bundle; data.json/data.yaml files give data.sparkplace.custom. Empty means the embedded bundle only.
	PolicyDir string
	// ConfigFile is a YAML or JSON object deep-merged over the bundle's defaults (sparkplace/config/data.yaml, data.sparkplace.config).
	// Empty means the defaults.
	ConfigFile string
	// GuardrailsFile is a YAML or JSON object over the default guardrails (policies/guardrails.yaml), kept
	// apart from ConfigFile so that RBAC can give the two to different teams. Empty means the defaults.
	GuardrailsFile string
	// Timeout bounds one policy evaluation. Defaults to 1s.
	Timeout time.Duration
	// CacheSize is the number of decisions kept (least recently used evicted). Defaults to 1024 (about 4 MiB,
	// see TestDecisionCacheIsBounded); negative disables the cache.
	CacheSize int
	// PollInterval is how often Watch looks for changed files. Defaults to 2s.
	PollInterval time.Duration
	// Evaluator picks what evaluates a decision-cache miss: EvaluatorPlan (the default when empty) runs the
	// bundle's plan (plan.go) and falls back to OPA's evaluator for a bundle or an evaluation the plan cannot
	// take; EvaluatorTopdown runs OPA's evaluator only (slower; a way out should a plan ever be suspected).
	Evaluator string
	// OnReload, when set, is called after every reload attempt by Reload or Watch with the hash now in
	// effect and the error that kept a new version out (nil on success). A metrics hook: it must not block.
	OnReload func(hash string, err error)
}

// The evaluators of Options.Evaluator.
const (
	EvaluatorPlan    = "plan"
	EvaluatorTopdown = "topdown"
)

// defaultCacheSize is Options.CacheSize's default.
const defaultCacheSize = 1024

// Engine evaluates the policy bundle. It is safe for concurrent use; Reload swaps the compiled bundle
// atomically, so an evaluation uses one version throughout.
type Engine struct {
	opts Options
	// mu serialises reloads; evaluations only load current.
	mu      sync.Mutex
	current atomic.Pointer[Version]
	// failed identifies the content that last failed to load, so Watch reports a broken file once.
	failed string
	cache  cacheCounters
}

// Version is one compiled bundle with its config (in its store), guardrails and own decision cache (a
// reload starts empty). A caller that needs the decision, the hash and the guardrails of one version takes
// them from one Version (Engine.Current), so a concurrent reload cannot mix two.
type Version struct {
	hash       string
	guardrails placement.Guardrails
	zone       ZoneConfig
	driverZone DriverZone
	query      rego.PreparedEvalQuery
	// plan evaluates the query faster than query does (plan.go); nil when the bundle needs what it does not
	// implement, and then query evaluates every miss.
	plan *planEval
	// noPlan is why plan is nil (Options.Evaluator, or what the bundle needs that the plan lacks); empty
	// when it is not.
	noPlan string
	cache  *decisionCache
	// keys are the input paths the decision can depend on, per role: the cache's key holds only those.
	keys    keyPaths
	timeout time.Duration
	// flights are the evaluations in progress, which concurrent misses of one key wait for.
	flights flights
}

// New loads, compiles and prepares the bundle. A policy that does not compile returns a *CompileError whose
// entries name file and line; a bad config file returns an error naming the file and the position.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = defaultCacheSize
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 2 * time.Second
	}
	switch opts.Evaluator {
	case "":
		opts.Evaluator = EvaluatorPlan
	case EvaluatorPlan, EvaluatorTopdown:
	default:
		return nil, fmt.Errorf("policy evaluator %q: want %s or %s", opts.Evaluator, EvaluatorPlan, EvaluatorTopdown)
	}
	e := &Engine{opts: opts}
	src, err := loadSources(opts.PolicyDir, opts.ConfigFile)
	if err != nil {
		return nil, err
	}
	g, err := loadGuardrails(opts.GuardrailsFile)
	if err != nil {
		return nil, err
	}
	v, err := e.prepare(ctx, src, g)
	if err != nil {
		return nil, err
	}
	e.current.Store(v)
	return e, nil
}

// versionHash identifies the bundle, its config and the guardrails.
func versionHash(src *sources, g guardrailsSource) string {
	h := sha256.New()
	h.Write([]byte(src.hash))
	h.Write(g.canonical)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func (e *Engine) prepare(ctx context.Context, src *sources, g guardrailsSource) (*Version, error) {
	modules, err := src.parse(false)
	if err != nil {
		return nil, err
	}
	compiler, err := compile(modules)
	if err != nil {
		return nil, err
	}
	// The store keeps the config as Rego values: read as Go values, every evaluation would convert again
	// what it reads (data.sparkplace.config, whole, for cfg).
	store := inmem.NewFromObjectWithOpts(src.data(), inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	query, err := rego.New(
		rego.Query(Query),
		rego.Compiler(compiler),
		rego.Store(store),
		// A builtin given bad arguments (e.g. format_int on a string uid) is an error, not a silently
		// undefined rule that drops part of the decision.
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("preparing %s: %w", Query, err)
	}
	var plan *planEval
	var noPlan string
	if e.opts.Evaluator == EvaluatorTopdown {
		noPlan = "the policy evaluator is " + EvaluatorTopdown
	} else if plan, err = newVersionPlan(ctx, compiler, store, e.opts.Timeout); errors.Is(err, errPlanUnsupported) {
		noPlan = err.Error()
	} else if err != nil {
		return nil, err
	}
	zone, err := parseZoneConfig(src.config)
	if err != nil {
		return nil, err
	}
	driverZone, err := parseDriverZone(src.config)
	if err != nil {
		return nil, err
	}
	return &Version{hash: versionHash(src, g), guardrails: g.guardrails, zone: zone, driverZone: driverZone, query: query, plan: plan, noPlan: noPlan, cache: newDecisionCache(e.opts.CacheSize, &e.cache), keys: newKeyPaths(ctx, compiler, store), timeout: e.opts.Timeout}, nil
}

// Current returns the version in effect.
func (e *Engine) Current() *Version { return e.current.Load() }

// CacheStats reports the decision cache's lookups since the engine started and what it holds now.
func (e *Engine) CacheStats() CacheStats {
	capacity := max(e.opts.CacheSize, 0)
	return CacheStats{Hits: e.cache.hits.Load(), Misses: e.cache.misses.Load(), Entries: e.current.Load().cache.len(), Capacity: capacity}
}

// Hash identifies the bundle and config in effect ("sha256:<hex>"), for the pod annotation.
func (e *Engine) Hash() string { return e.current.Load().hash }

// Hash identifies this version's bundle and config ("sha256:<hex>").
func (v *Version) Hash() string { return v.hash }

// Evaluator names what evaluates this version's decision-cache misses, EvaluatorPlan or EvaluatorTopdown,
// and for topdown why (a bundle the plan cannot run is evaluated by OPA's evaluator, several times slower).
func (v *Version) Evaluator() (name, why string) {
	if v.plan != nil {
		return EvaluatorPlan, ""
	}
	return EvaluatorTopdown, v.noPlan
}

// Guardrails are this version's guardrails (Options.GuardrailsFile), which every decision must keep.
func (v *Version) Guardrails() placement.Guardrails { return v.guardrails }

// Decide evaluates the bundle for one pod. Equal inputs (executors of one application) are answered from a
// cache that the next reload empties. The returned Decision is the caller's own copy: mutating it does not
// affect other callers.
//
// Errors: a runtime policy error (e.g. eval_conflict_error), an evaluation past Options.Timeout (wrapping
// context.DeadlineExceeded), no decision, or a decision with a key placement.Decision does not have.
func (e *Engine) Decide(ctx context.Context, in *Input) (*placement.Decision, error) {
	return e.current.Load().Decide(ctx, in)
}

// Decide evaluates this version for one pod; see Engine.Decide.
func (v *Version) Decide(ctx context.Context, in *Input) (*placement.Decision, error) {
	d, _, err := v.DecideKeyed(ctx, in)
	if err != nil {
		return nil, err
	}
	return copyDecision(d), nil
}

// InputKey identifies a decision of one version: inputs with equal keys get equal decisions (they agree on
// every input path the policy can read for their role). With the version's hash it identifies a decision
// across versions, so a caller can remember what it derived from one (see webhook.Placer). It does not
// identify the input: two inputs that differ in what the policy does not read share a key.
type InputKey = decisionKey

// DecideKeyed is Decide, also returning the input's key, without the copy: the Decision is the one the
// cache holds, shared with every caller whose input has the same key, so the caller must change neither it
// nor anything it refers to (placement.Apply does not; see webhook.Placer). Deep-copying a decision (its
// init containers above all) was a tenth of a cache hit's cost.
func (v *Version) DecideKeyed(ctx context.Context, in *Input) (*placement.Decision, InputKey, error) {
	key, err := v.keys.keyOf(in)
	if err != nil {
		return nil, InputKey{}, fmt.Errorf("encoding policy input: %w", err)
	}
	if d, ok := v.cache.get(key); ok {
		return d, key, nil
	}
	d, err := v.evalOnce(ctx, key, in)
	if err != nil {
		return nil, key, err
	}
	return d, key, nil
}

// eval evaluates the bundle for in, which the policy sees reduced to what its decision can depend on
// (keyPaths.inputValue).
func (v *Version) eval(ctx context.Context, in *Input, timeout time.Duration) (*placement.Decision, error) {
	input, err := v.keys.inputValue(in)
	if err != nil { // a value inputValue leaves to JSON
		raw, err := encodeInput(in)
		if err != nil {
			return nil, fmt.Errorf("encoding policy input: %w", err)
		}
		if input, err = parseValue(raw); err != nil {
			return nil, fmt.Errorf("encoding policy input: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if v.plan != nil {
		value, err := v.plan.eval(ctx, input)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("evaluating %s: stopped after %s: %w", Query, timeout, ctxErr)
		}
		if err == nil && value != nil {
			return decodeDecision(value)
		}
		// Undefined, a conflict or a builtin error: topdown, the reference, says what the pod gets and how
		// the error reads.
	}
	return v.evalTopdown(ctx, input, timeout)
}

// evalTopdown evaluates the query with OPA's evaluator; ctx carries the deadline of timeout.
func (v *Version) evalTopdown(ctx context.Context, input ast.Value, timeout time.Duration) (*placement.Decision, error) {
	// Stop the evaluation when ctx ends, without the goroutine per evaluation that OPA starts otherwise.
	stop := topdown.NewCancel()
	defer context.AfterFunc(ctx, stop.Cancel)()
	// OPA's own metrics (timers read the clock several times per evaluation) are not reported anywhere.
	rs, err := v.query.Eval(ctx, rego.EvalParsedInput(input), rego.EvalExternalCancel(stop), rego.EvalGenerateJSON(keepValue), rego.EvalMetrics(metrics.NoOp()))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("evaluating %s: stopped after %s: %w", Query, timeout, ctxErr)
		}
		return nil, fmt.Errorf("evaluating %s: %w", Query, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, fmt.Errorf("evaluating %s: undefined (the policy bundle defines no decision for this pod)", Query)
	}
	value, ok := rs[0].Expressions[0].Value.(ast.Value)
	if !ok {
		return nil, fmt.Errorf("evaluating %s: unexpected result %T", Query, rs[0].Expressions[0].Value)
	}
	return decodeDecision(value)
}

// keepValue leaves the result as Rego's value (rego.EvalGenerateJSON): decodeDecision reads it directly.
func keepValue(t *ast.Term, _ *rego.EvalContext) (any, error) { return t.Value, nil }

// decodeDecision turns the policy's value into a Decision, strictly: a key the Decision does not have (at any
// depth, e.g. hostNetwork, or a typo in a toleration) is an error rather than silently dropped.
func decodeDecision(value ast.Value) (*placement.Decision, error) {
	if _, ok := value.(ast.Object); !ok {
		return nil, fmt.Errorf("decoding %s: want an object, got %s", Query, valueKind(value))
	}
	var d placement.Decision
	if setValue(value, reflect.ValueOf(&d).Elem()) {
		return &d, nil
	}
	return decodeDecisionJSON(value)
}

// decodeDecisionJSON is decodeDecision through the value's JSON: it names what is wrong with a value
// setValue does not take.
func decodeDecisionJSON(value ast.Value) (*placement.Decision, error) {
	raw, err := appendJSON(nil, value)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", Query, err)
	}
	dec := gojson.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var d placement.Decision
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", Query, err)
	}
	return &d, nil
}

// valueKind names a Rego value's kind as kindOf names the Go value it stands for.
func valueKind(v ast.Value) string {
	switch v.(type) {
	case *ast.Array, ast.Set:
		return "a list"
	case ast.String:
		return "a string"
	case ast.Number:
		return "a number"
	case ast.Boolean:
		return "a boolean"
	case ast.Null:
		return "null"
	default:
		return ast.TypeName(v)
	}
}

// Reload reads PolicyDir, ConfigFile and GuardrailsFile again and, when their content changed, compiles and swaps in the new
// version (with an empty decision cache). When that fails the engine keeps serving the last good version and
// Reload returns the error. OnReload is called after every attempt that found a change.
func (e *Engine) Reload(ctx context.Context) error {
	return e.reload(ctx, false)
}

// reload implements Reload; quiet skips (and does not report again) content that already failed, so Watch
// reports a broken file once rather than every poll.
func (e *Engine) reload(ctx context.Context, quiet bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	src, err := loadSources(e.opts.PolicyDir, e.opts.ConfigFile)
	var g guardrailsSource
	if err == nil {
		g, err = loadGuardrails(e.opts.GuardrailsFile)
	}
	attempt := "unreadable: " + fmt.Sprint(err)
	if err == nil {
		attempt = versionHash(src, g)
	}
	if attempt == e.current.Load().hash || (quiet && attempt == e.failed) {
		return nil
	}
	var v *Version
	if err == nil {
		v, err = e.prepare(ctx, src, g)
	}
	if err != nil {
		e.failed = attempt
		err = fmt.Errorf("reloading policies, still serving %s: %w", e.Hash(), err)
	} else {
		e.current.Store(v)
		e.failed = ""
	}
	if e.opts.OnReload != nil {
		e.opts.OnReload(e.Hash(), err)
	}
	return err
}

// Watch polls PolicyDir, ConfigFile and GuardrailsFile every PollInterval until ctx is done and reloads when their content
// changes (content, not mtime: a ConfigMap volume swaps a symlink). Failures go to OnReload, once per
// distinct broken content, and do not stop the watch. Watch blocks until ctx is done (it returns at once
// when there is no file to watch); run it in its own goroutine.
func (e *Engine) Watch(ctx context.Context) {
	if e.opts.PolicyDir == "" && e.opts.ConfigFile == "" && e.opts.GuardrailsFile == "" {
		return // the embedded bundle never changes
	}
	t := time.NewTicker(e.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = e.reload(ctx, true) // reported through OnReload
		}
	}
}
