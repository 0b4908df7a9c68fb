package policies

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"
)

// A decision-cache miss evaluates the bundle. OPA's evaluator (topdown) pays for every rule it visits (rule
// index lookups, bindings, unification; an executor's decision visits some 80 rule bodies), which made a
// miss cost five times a no-op admission. So the bundle is also compiled the way `opa build -t wasm` does:
// OPA's planner turns the query into its intermediate representation (package ir: functions of plain
// statements over local variables, one function per rule), and planEval runs that plan on Rego values,
// calling topdown's own builtins. Topdown remains the reference: an evaluation the plan cannot finish as
// topdown would (a conflict, a builtin error) is evaluated again by topdown, whose answer is returned, and a
// bundle whose plan needs what planEval does not implement (`with`, dynamic calls, non-deterministic
// builtins) is evaluated by topdown only. TestPlanMatchesTopdown compares the two.

// planTarget is the rego target under which the planner's output reaches planCapture.
const planTarget = "sparkplace-plan"

// planCapture receives the plan of a PrepareForEval under planTarget (rego hands plans to target plugins
// only) and puts it into the planSlot of the preparation's context. Registered once per process.
type planCapture struct{}

type planSlotKey struct{}

// planned is what planCapture returns to rego; planEval, not it, evaluates the plan.
type planned struct{}

func (planned) Eval(context.Context, *rego.EvalContext, ast.Value) (ast.Value, error) {
	return nil, errors.New("sparkplace: a captured plan is evaluated by planEval")
}

func (planCapture) IsTarget(t string) bool { return t == planTarget }

func (planCapture) PrepareForEval(ctx context.Context, p *ir.Policy, _ ...rego.PrepareOption) (rego.TargetPluginEval, error) {
	slot, ok := ctx.Value(planSlotKey{}).(**ir.Policy)
	if !ok {
		return nil, errors.New("sparkplace: plan prepared outside planPolicy")
	}
	*slot = p
	return planned{}, nil
}

var registerPlanTarget = sync.OnceFunc(func() { rego.RegisterPlugin(planTarget, planCapture{}) })

// planQueryVar names the query's value in the plan's result.
const planQueryVar = "x"

// planPolicy plans Query over the compiled bundle.
func planPolicy(ctx context.Context, c *ast.Compiler, store storage.Store) (*ir.Policy, error) {
	registerPlanTarget()
	var p *ir.Policy
	_, err := rego.New(
		rego.Query(planQueryVar+" = "+Query),
		rego.Compiler(c),
		rego.Store(store),
		rego.Target(planTarget),
	).PrepareForEval(context.WithValue(ctx, planSlotKey{}, &p))
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errors.New("sparkplace: no plan")
	}
	return p, nil
}

// newVersionPlan plans the bundle for a Version, over the data in store (read once: a version's data does
// not change). An error wrapping errPlanUnsupported means the bundle is evaluated by topdown only.
func newVersionPlan(ctx context.Context, c *ast.Compiler, store storage.Store, timeout time.Duration) (*planEval, error) {
	p, err := planPolicy(ctx, c, store)
	if err != nil {
		// The planner does not plan every policy topdown evaluates.
		return nil, fmt.Errorf("%w: %w", errPlanUnsupported, err)
	}
	raw, err := storage.ReadOne(ctx, store, storage.RootPath)
	if err != nil {
		return nil, fmt.Errorf("reading the bundle's data: %w", err)
	}
	data, ok := raw.(ast.Value)
	if !ok {
		return nil, fmt.Errorf("reading the bundle's data: got %T, not a Rego value", raw)
	}
	return newPlanEval(ctx, p, data, timeout)
}

// planEval runs a plan, compiled to Go closures (one per statement, operands resolved). It is immutable and
// safe for concurrent use.
type planEval struct {
	plan   []block
	nfuncs int
	// constant holds the values of the rules that do not depend on the input (computed when compiled; nil
	// for the others), known which of them are set: every evaluation starts with them memoised.
	constant []*ast.Term
	known    []bool
	// frame is the number of locals of the plan itself.
	frame int
	data  *ast.Term
	runs  sync.Pool
}

// planFunc is one function of the plan (a rule, or a function of the policy).
type planFunc struct {
	index  int
	params []int
	blocks []block
	frame  int
	// memo: a function of input and data only (a rule's value): computed once per evaluation, as topdown
	// caches virtual documents.
	memo bool
}

// A block is a compiled ir.Block; a stmt one statement. A statement returns next, or a break: n >= 0 leaves
// n blocks beyond the one it is in (an undefined statement is break 0: it leaves its block), or codeReturn
// or codeError. A block returns blockDone when it ran to its end, next when a break left it, or the break
// still to take beyond it.
type (
	block []stmt
	stmt  func(r *planRun, fr []*ast.Term) int
)

const (
	blockDone  = -2
	next       = -1
	codeReturn = 1 << 30
	codeError  = codeReturn + 1
)

// errPlanUnsupported: the plan needs what planEval does not implement; topdown evaluates the bundle.
var errPlanUnsupported = errors.New("not supported by the plan evaluator")

// operand is a compiled ir.Operand: a constant, or else a local.
type operand struct {
	constant *ast.Term
	local    int
}

func (o operand) read(fr []*ast.Term) *ast.Term {
	if o.constant != nil {
		return o.constant
	}
	return fr[o.local]
}

// planCompiler compiles one plan.
type planCompiler struct {
	strings  []*ast.Term
	numbers  map[int]*ast.Term
	funcs    map[string]*planFunc
	builtins map[string]bool // declared by the plan
	// frame is the number of locals of the function being compiled.
	frame int
}

// newPlanEval compiles p, failing (errPlanUnsupported) on what planEval does not implement. Folding the
// rules that do not depend on the input takes at most timeout (one evaluation's bound).
func newPlanEval(ctx context.Context, p *ir.Policy, data ast.Value, timeout time.Duration) (*planEval, error) {
	if p.Plans == nil || len(p.Plans.Plans) != 1 || p.Static == nil {
		return nil, fmt.Errorf("%w: want one plan", errPlanUnsupported)
	}
	c := &planCompiler{numbers: map[int]*ast.Term{}, funcs: map[string]*planFunc{}, builtins: map[string]bool{}}
	for _, s := range p.Static.Strings {
		c.strings = append(c.strings, ast.StringTerm(s.Value))
	}
	for _, b := range p.Static.BuiltinFuncs {
		c.builtins[b.Name] = true
	}
	var funcs []*ir.Func
	if p.Funcs != nil {
		funcs = p.Funcs.Funcs
	}
	for i, fn := range funcs {
		f := &planFunc{index: i, memo: len(fn.Params) == 2}
		for _, l := range fn.Params {
			f.params = append(f.params, int(l))
		}
		c.funcs[fn.Name] = f
	}
	for _, fn := range funcs {
		f := c.funcs[fn.Name]
		c.frame = max(int(ir.Data), int(fn.Return)) + 1
		for _, l := range f.params {
			c.local(ir.Local(l))
		}
		var err error
		if f.blocks, err = c.blocks(fn.Blocks); err != nil {
			return nil, fmt.Errorf("%s: %w", fn.Name, err)
		}
		f.frame = c.frame
	}
	c.frame = int(ir.Data) + 1
	plan, err := c.blocks(p.Plans.Plans[0].Blocks)
	if err != nil {
		return nil, err
	}
	e := &planEval{plan: plan, nfuncs: len(funcs), frame: c.frame, data: ast.NewTerm(data), constant: make([]*ast.Term, len(funcs)), known: make([]bool, len(funcs))}
	e.runs.New = func() any { return newPlanRun(e) }
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	e.foldConstants(ctx, funcs, c.funcs)
	return e, nil
}

// foldConstants evaluates, once, the rules whose value does not depend on the input (known_profiles, cfg,
// zone_key, a config-derived string...): a function of the plan that reads its input parameter only to pass
// it to such functions. Their values are shared by every evaluation, which, as within one evaluation, only
// reads a rule's value. A rule that fails, or is not done by the end of ctx, is left to every evaluation.
func (e *planEval) foldConstants(ctx context.Context, funcs []*ir.Func, compiled map[string]*planFunc) {
	dependent := inputDependent(funcs)
	r := newPlanRun(e)
	r.ctx = ctx
	r.bctx = topdown.BuiltinContext{Context: r.ctx, Cache: builtins.Cache{}}
	args := []operand{{constant: ast.NewTerm(ast.NewObject())}, {constant: e.data}}
	for _, fn := range funcs {
		f := compiled[fn.Name]
		if !f.memo || dependent[fn.Name] {
			continue
		}
		if v, code := r.call(f, args, nil); code == next {
			e.constant[f.index], e.known[f.index] = v, true
		} else if ctx.Err() != nil {
			return
		}
	}
}

// inputDependent names the functions whose result can depend on their first parameter (the input): those
// that read it, other than by passing it on as the input of functions that do not.
func inputDependent(funcs []*ir.Func) map[string]bool {
	byName := map[string]*ir.Func{}
	for _, fn := range funcs {
		byName[fn.Name] = fn
	}
	dependent := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for _, fn := range funcs {
			if !dependent[fn.Name] && readsInput(fn, byName, dependent) {
				dependent[fn.Name], changed = true, true
			}
		}
	}
	return dependent
}

func readsInput(fn *ir.Func, byName map[string]*ir.Func, dependent map[string]bool) bool {
	if len(fn.Params) == 0 {
		return false
	}
	in := fn.Params[0]
	var reads func(b *ir.Block) bool
	reads = func(b *ir.Block) bool {
		for _, s := range b.Stmts {
			if call, ok := s.(*ir.CallStmt); ok {
				_, planned := byName[call.Func]
				for i, a := range call.Args {
					if l, ok := a.Value.(ir.Local); ok && l == in && (!planned || i != 0 || dependent[call.Func]) {
						return true
					}
				}
				continue
			}
			locals, blocks := stmtParts(s)
			for _, l := range locals {
				if l == in {
					return true
				}
			}
			for _, b := range blocks {
				if reads(b) {
					return true
				}
			}
		}
		return false
	}
	for _, b := range fn.Blocks {
		if reads(b) {
			return true
		}
	}
	return false
}

// stmtParts are the locals a statement names (its operands' too) and its nested blocks.
func stmtParts(s ir.Stmt) (locals []ir.Local, blocks []*ir.Block) {
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i).Interface().(type) {
		case ir.Local:
			locals = append(locals, f)
		case []ir.Local:
			locals = append(locals, f...)
		case ir.Operand:
			if l, ok := f.Value.(ir.Local); ok {
				locals = append(locals, l)
			}
		case []ir.Operand:
			for _, o := range f {
				if l, ok := o.Value.(ir.Local); ok {
					locals = append(locals, l)
				}
			}
		case *ir.Block:
			blocks = append(blocks, f)
		case []*ir.Block:
			blocks = append(blocks, f...)
		}
	}
	return locals, blocks
}

func (c *planCompiler) local(l ir.Local) int {
	c.frame = max(c.frame, int(l)+1)
	return int(l)
}

func (c *planCompiler) operand(o ir.Operand) (operand, error) {
	switch v := o.Value.(type) {
	case ir.Local:
		return operand{local: c.local(v)}, nil
	case ir.StringIndex:
		if int(v) < 0 || int(v) >= len(c.strings) {
			return operand{}, fmt.Errorf("%w: string index %d", errPlanUnsupported, v)
		}
		return operand{constant: c.strings[v]}, nil
	case ir.Bool:
		return operand{constant: ast.InternedTerm(bool(v))}, nil
	}
	return operand{}, fmt.Errorf("%w: operand %T", errPlanUnsupported, o.Value)
}

func (c *planCompiler) operands(os ...ir.Operand) ([]operand, error) {
	out := make([]operand, len(os))
	for i, o := range os {
		var err error
		if out[i], err = c.operand(o); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *planCompiler) blocks(bs []*ir.Block) ([]block, error) {
	out := make([]block, len(bs))
	for i, b := range bs {
		var err error
		if out[i], err = c.block(b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *planCompiler) block(b *ir.Block) (block, error) {
	out := make(block, 0, len(b.Stmts))
	for _, s := range b.Stmts {
		st, err := c.stmt(s)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// stmt compiles one statement. The semantics are those of OPA's Wasm compiler (internal/compiler/wasm).
func (c *planCompiler) stmt(s ir.Stmt) (stmt, error) {
	switch s := s.(type) {
	case *ir.DotStmt:
		ops, err := c.operands(s.Source, s.Key)
		if err != nil {
			return nil, err
		}
		src, key, target := ops[0], ops[1], c.local(s.Target)
		return func(_ *planRun, fr []*ast.Term) int {
			v := dot(src.read(fr), key.read(fr))
			if v == nil {
				return 0
			}
			fr[target] = v
			return next
		}, nil
	case *ir.CallStmt:
		args, err := c.operands(s.Args...)
		if err != nil {
			return nil, err
		}
		result := c.local(s.Result)
		if fn, ok := c.funcs[s.Func]; ok {
			if len(args) != len(fn.params) {
				return nil, fmt.Errorf("%w: call of %s with %d arguments", errPlanUnsupported, s.Func, len(args))
			}
			return func(r *planRun, fr []*ast.Term) int {
				v, code := r.call(fn, args, fr)
				if code != next {
					return code
				}
				if v == nil {
					return 0
				}
				fr[result] = v
				return next
			}, nil
		}
		decl, ok := ast.BuiltinMap[s.Func]
		impl := topdown.GetBuiltin(s.Func)
		if !ok || impl == nil || decl.Nondeterministic || decl.Decl == nil || decl.Decl.Result() == nil || !c.builtins[s.Func] || len(args) > maxBuiltinArgs {
			return nil, fmt.Errorf("%w: builtin %s", errPlanUnsupported, s.Func)
		}
		return func(r *planRun, fr []*ast.Term) int {
			in := r.args[:len(args)]
			for i, a := range args {
				if in[i] = a.read(fr); in[i] == nil {
					return 0
				}
			}
			r.out = nil
			if err := impl(r.bctx, in, r.iter); err != nil {
				return r.fail(err.Error())
			}
			if r.out == nil {
				return 0
			}
			fr[result] = r.out
			return next
		}, nil
	case *ir.AssignVarStmt:
		src, err := c.operand(s.Source)
		if err != nil {
			return nil, err
		}
		target := c.local(s.Target)
		return func(_ *planRun, fr []*ast.Term) int { fr[target] = src.read(fr); return next }, nil
	case *ir.AssignVarOnceStmt:
		src, err := c.operand(s.Source)
		if err != nil {
			return nil, err
		}
		target := c.local(s.Target)
		return func(r *planRun, fr []*ast.Term) int {
			v := src.read(fr)
			if cur := fr[target]; cur != nil {
				if v == nil || ast.Compare(cur.Value, v.Value) != 0 {
					return r.fail("conflicting values")
				}
				return next
			}
			fr[target] = v
			return next
		}, nil
	case *ir.EqualStmt, *ir.NotEqualStmt:
		var a, b ir.Operand
		equal := false
		switch s := s.(type) {
		case *ir.EqualStmt:
			a, b, equal = s.A, s.B, true
		case *ir.NotEqualStmt:
			a, b = s.A, s.B
		}
		ops, err := c.operands(a, b)
		if err != nil {
			return nil, err
		}
		x, y := ops[0], ops[1]
		return func(_ *planRun, fr []*ast.Term) int {
			a, b := x.read(fr), y.read(fr)
			if a == nil || b == nil || (ast.Compare(a.Value, b.Value) == 0) != equal {
				return 0
			}
			return next
		}, nil
	case *ir.ResetLocalStmt:
		target := c.local(s.Target)
		return func(_ *planRun, fr []*ast.Term) int { fr[target] = nil; return next }, nil
	case *ir.IsDefinedStmt:
		src := c.local(s.Source)
		return func(_ *planRun, fr []*ast.Term) int {
			if fr[src] == nil {
				return 0
			}
			return next
		}, nil
	case *ir.IsUndefinedStmt:
		src := c.local(s.Source)
		return func(_ *planRun, fr []*ast.Term) int {
			if fr[src] != nil {
				return 0
			}
			return next
		}, nil
	case *ir.ReturnLocalStmt:
		src := c.local(s.Source)
		return func(r *planRun, fr []*ast.Term) int { r.ret = fr[src]; return codeReturn }, nil
	case *ir.BlockStmt:
		blocks, err := c.blocks(s.Blocks)
		if err != nil {
			return nil, err
		}
		return func(r *planRun, fr []*ast.Term) int {
			for _, b := range blocks {
				if code := r.block(fr, b); code >= 0 {
					return code
				}
			}
			return next
		}, nil
	case *ir.BreakStmt:
		index := int(s.Index)
		return func(*planRun, []*ast.Term) int { return index }, nil
	case *ir.ScanStmt:
		body, err := c.block(s.Block)
		if err != nil {
			return nil, err
		}
		src, key, value := c.local(s.Source), c.local(s.Key), c.local(s.Value)
		return func(r *planRun, fr []*ast.Term) int { return r.scan(fr, src, key, value, body) }, nil
	case *ir.NotStmt:
		body, err := c.block(s.Block)
		if err != nil {
			return nil, err
		}
		return func(r *planRun, fr []*ast.Term) int {
			switch code := r.block(fr, body); {
			case code == blockDone:
				return 0
			case code >= 0:
				return code
			}
			return next
		}, nil
	case *ir.ObjectInsertStmt, *ir.ObjectInsertOnceStmt:
		var k, v ir.Operand
		var obj ir.Local
		once := false
		switch s := s.(type) {
		case *ir.ObjectInsertStmt:
			k, v, obj = s.Key, s.Value, s.Object
		case *ir.ObjectInsertOnceStmt:
			k, v, obj, once = s.Key, s.Value, s.Object, true
		}
		ops, err := c.operands(k, v)
		if err != nil {
			return nil, err
		}
		key, val, target := ops[0], ops[1], c.local(obj)
		return func(r *planRun, fr []*ast.Term) int {
			o, ok := value(fr[target]).(ast.Object)
			k, v := key.read(fr), val.read(fr)
			if !ok || k == nil || v == nil {
				return r.fail("bad object insert")
			}
			if once {
				if cur := o.Get(k); cur != nil {
					if ast.Compare(cur.Value, v.Value) != 0 {
						return r.fail("conflicting object keys")
					}
					return next
				}
			}
			o.Insert(k, v)
			return next
		}, nil
	case *ir.SetAddStmt:
		val, err := c.operand(s.Value)
		if err != nil {
			return nil, err
		}
		target := c.local(s.Set)
		return func(r *planRun, fr []*ast.Term) int {
			set, ok := value(fr[target]).(ast.Set)
			v := val.read(fr)
			if !ok || v == nil {
				return r.fail("bad set add")
			}
			set.Add(v)
			return next
		}, nil
	case *ir.ArrayAppendStmt:
		val, err := c.operand(s.Value)
		if err != nil {
			return nil, err
		}
		target := c.local(s.Array)
		return func(r *planRun, fr []*ast.Term) int {
			arr, ok := value(fr[target]).(*ast.Array)
			v := val.read(fr)
			if !ok || v == nil {
				return r.fail("bad array append")
			}
			// In place, as the plan expects: every local holding the array sees the element.
			*arr = *arr.Append(v)
			return next
		}, nil
	case *ir.MakeObjectStmt:
		target := c.local(s.Target)
		return func(_ *planRun, fr []*ast.Term) int { fr[target] = ast.NewTerm(ast.NewObject()); return next }, nil
	case *ir.MakeArrayStmt:
		target, capacity := c.local(s.Target), int(s.Capacity)
		return func(_ *planRun, fr []*ast.Term) int {
			fr[target] = ast.NewTerm(ast.NewArrayWithCapacity(capacity))
			return next
		}, nil
	case *ir.MakeSetStmt:
		target := c.local(s.Target)
		return func(_ *planRun, fr []*ast.Term) int { fr[target] = ast.NewTerm(ast.NewSet()); return next }, nil
	case *ir.MakeNullStmt:
		return constStmt(c.local(s.Target), ast.InternedNullTerm), nil
	case *ir.MakeNumberIntStmt:
		return constStmt(c.local(s.Target), ast.IntNumberTerm(int(s.Value))), nil
	case *ir.AssignIntStmt:
		return constStmt(c.local(s.Target), ast.IntNumberTerm(int(s.Value))), nil
	case *ir.MakeNumberRefStmt:
		if s.Index < 0 || s.Index >= len(c.strings) {
			return nil, fmt.Errorf("%w: number index %d", errPlanUnsupported, s.Index)
		}
		n := json.Number(c.strings[s.Index].Value.(ast.String))
		if _, err := n.Float64(); err != nil {
			return nil, fmt.Errorf("%w: number %q", errPlanUnsupported, n)
		}
		return constStmt(c.local(s.Target), ast.NumberTerm(n)), nil
	case *ir.LenStmt:
		src, err := c.operand(s.Source)
		if err != nil {
			return nil, err
		}
		target := c.local(s.Target)
		return func(_ *planRun, fr []*ast.Term) int {
			var n int
			switch x := value(src.read(fr)).(type) {
			case *ast.Array:
				n = x.Len()
			case ast.Object:
				n = x.Len()
			case ast.Set:
				n = x.Len()
			case ast.String:
				n = len([]rune(string(x)))
			default:
				return 0
			}
			fr[target] = ast.IntNumberTerm(n)
			return next
		}, nil
	case *ir.IsArrayStmt:
		return c.typeCheck(s.Source, func(v ast.Value) bool { _, ok := v.(*ast.Array); return ok })
	case *ir.IsObjectStmt:
		return c.typeCheck(s.Source, func(v ast.Value) bool { _, ok := v.(ast.Object); return ok })
	case *ir.IsSetStmt:
		return c.typeCheck(s.Source, func(v ast.Value) bool { _, ok := v.(ast.Set); return ok })
	case *ir.ObjectMergeStmt:
		a, b, target := c.local(s.A), c.local(s.B), c.local(s.Target)
		return func(r *planRun, fr []*ast.Term) int {
			x, xok := value(fr[a]).(ast.Object)
			y, yok := value(fr[b]).(ast.Object)
			if !xok || !yok {
				return r.fail("merge of non-objects")
			}
			m, ok := x.Merge(y)
			if !ok {
				return r.fail("conflicting merge")
			}
			fr[target] = ast.NewTerm(m)
			return next
		}, nil
	case *ir.ResultSetAddStmt:
		src := c.local(s.Value)
		return func(r *planRun, fr []*ast.Term) int {
			if r.result != nil {
				return r.fail("more than one result")
			}
			r.result = fr[src]
			return next
		}, nil
	case *ir.NopStmt:
		return func(*planRun, []*ast.Term) int { return next }, nil
	}
	// WithStmt, CallDynamicStmt and what later versions add.
	return nil, fmt.Errorf("%w: %T", errPlanUnsupported, s)
}

func constStmt(target int, t *ast.Term) stmt {
	return func(_ *planRun, fr []*ast.Term) int { fr[target] = t; return next }
}

func (c *planCompiler) typeCheck(o ir.Operand, is func(ast.Value) bool) (stmt, error) {
	src, err := c.operand(o)
	if err != nil {
		return nil, err
	}
	return func(_ *planRun, fr []*ast.Term) int {
		if v := src.read(fr); v == nil || !is(v.Value) {
			return 0
		}
		return next
	}, nil
}

// dot is src[key] (a DotStmt); nil when undefined.
func dot(src, key *ast.Term) *ast.Term {
	if src == nil || key == nil {
		return nil
	}
	switch x := src.Value.(type) {
	case ast.Object:
		return x.Get(key)
	case *ast.Array:
		if n, ok := key.Value.(ast.Number); ok {
			if i, ok := n.Int(); ok && i >= 0 && i < x.Len() {
				return x.Elem(i)
			}
		}
	case ast.Set:
		if x.Contains(key) {
			return key
		}
	}
	return nil
}

// value is t's value; nil for an undefined local.
func value(t *ast.Term) ast.Value {
	if t == nil {
		return nil
	}
	return t.Value
}

// maxBuiltinArgs bounds a builtin call's arguments (OPA's have at most four).
const maxBuiltinArgs = 8

// planRun is the state of one evaluation, reused (planEval.runs) by the next.
type planRun struct {
	e      *planEval
	ctx    context.Context
	bctx   topdown.BuiltinContext
	memo   []*ast.Term
	memoed []bool
	// stack holds the frames (locals) of the functions being called; high is its largest length.
	stack  []*ast.Term
	high   int
	args   [maxBuiltinArgs]*ast.Term
	ret    *ast.Term
	result *ast.Term
	err    error
	steps  int
	out    *ast.Term // a builtin's result
	iter   func(*ast.Term) error
}

func newPlanRun(e *planEval) *planRun {
	r := &planRun{e: e, memo: make([]*ast.Term, e.nfuncs), memoed: make([]bool, e.nfuncs), stack: make([]*ast.Term, 0, 1024)}
	r.iter = func(t *ast.Term) error { r.out = t; return nil }
	copy(r.memo, e.constant)
	copy(r.memoed, e.known)
	return r
}

// release clears what the run refers to and returns it to the pool.
func (r *planRun) release() {
	copy(r.memo, r.e.constant)
	copy(r.memoed, r.e.known)
	clear(r.stack[:r.high])
	r.stack, r.high = r.stack[:0], 0
	r.args = [maxBuiltinArgs]*ast.Term{}
	r.ctx, r.bctx, r.ret, r.result, r.err, r.out, r.steps = nil, topdown.BuiltinContext{}, nil, nil, nil, nil, 0
	r.e.runs.Put(r)
}

// errPlanFallback: the plan stopped where topdown may answer differently (a conflict, a builtin error):
// the caller evaluates with topdown, the reference.
type errPlanFallback struct{ reason string }

func (e *errPlanFallback) Error() string { return "plan evaluation stopped: " + e.reason }

// eval evaluates the plan for input and returns the query's value; nil when it is undefined. An
// *errPlanFallback error means topdown must answer; another error is the context's.
func (e *planEval) eval(ctx context.Context, input ast.Value) (_ ast.Value, err error) {
	r := e.runs.Get().(*planRun)
	defer func() {
		// A value of a shape the plan did not expect must not take the webhook down: topdown answers.
		if p := recover(); p != nil {
			err = &errPlanFallback{reason: fmt.Sprint("panic: ", p)}
			return // the run may be inconsistent: not reused
		}
		r.release()
	}()
	r.ctx = ctx
	r.bctx = topdown.BuiltinContext{Context: ctx, Time: ast.UIntNumberTerm(uint64(time.Now().UnixNano())), Cache: builtins.Cache{}}
	fr := r.push(e.frame)
	fr[ir.Input], fr[ir.Data] = ast.NewTerm(input), e.data
	for _, b := range e.plan {
		if r.block(fr, b) == codeError {
			return nil, r.err
		}
	}
	if r.result == nil {
		return nil, nil
	}
	obj, ok := r.result.Value.(ast.Object)
	if !ok {
		return nil, &errPlanFallback{reason: "result is not an object"}
	}
	v := obj.Get(planQueryTerm)
	if v == nil {
		return nil, &errPlanFallback{reason: "result without the query's value"}
	}
	return v.Value, nil
}

var planQueryTerm = ast.StringTerm(planQueryVar)

// push returns a frame of n undefined locals on the stack. A frame stays valid when a deeper push grows the
// stack (it keeps the old array).
func (r *planRun) push(n int) []*ast.Term {
	base := len(r.stack)
	if base+n > cap(r.stack) {
		r.stack = append(r.stack, make([]*ast.Term, n)...)
	} else {
		r.stack = r.stack[:base+n]
	}
	r.high = max(r.high, base+n)
	fr := r.stack[base : base+n : base+n]
	clear(fr)
	return fr
}

func (r *planRun) pop(n int) { r.stack = r.stack[:len(r.stack)-n] }

func (r *planRun) block(fr []*ast.Term, b block) int {
	for _, s := range b {
		switch code := s(r, fr); {
		case code == next:
		case code >= codeReturn:
			return code
		case code == 0:
			return next
		default:
			return code - 1
		}
	}
	return blockDone
}

// tick counts work and reports whether the evaluation was stopped (Options.Timeout).
func (r *planRun) tick() bool {
	r.steps++
	if r.steps&255 == 0 {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			return true
		}
	}
	return false
}

func (r *planRun) fail(reason string) int {
	r.err = &errPlanFallback{reason: reason}
	return codeError
}

// call calls fn with args read from the caller's frame; a nil result is undefined.
func (r *planRun) call(fn *planFunc, args []operand, caller []*ast.Term) (*ast.Term, int) {
	if fn.memo && r.memoed[fn.index] {
		return r.memo[fn.index], next
	}
	if r.tick() {
		return nil, codeError
	}
	fr := r.push(fn.frame)
	for i, p := range fn.params {
		if fr[p] = args[i].read(caller); fr[p] == nil {
			r.pop(fn.frame)
			return nil, 0
		}
	}
	var out *ast.Term
	for _, b := range fn.blocks {
		code := r.block(fr, b)
		if code == codeError {
			r.pop(fn.frame)
			return nil, code
		}
		if code == codeReturn {
			out = r.ret
			break
		}
	}
	r.pop(fn.frame)
	if fn.memo {
		r.memo[fn.index], r.memoed[fn.index] = out, true
	}
	return out, next
}

// scanDone: a scan's body left the loop (break 1 from its block); the scan is over, its statement defined.
const scanDone = -3

func (r *planRun) scan(fr []*ast.Term, src, key, val int, body block) int {
	code := next
	switch x := value(fr[src]).(type) {
	case *ast.Array:
		for i := 0; i < x.Len() && code == next; i++ {
			code = r.scanOne(fr, key, val, body, ast.IntNumberTerm(i), x.Elem(i))
		}
	case ast.Object:
		x.Until(func(k, v *ast.Term) bool {
			code = r.scanOne(fr, key, val, body, k, v)
			return code != next
		})
	case ast.Set:
		for _, t := range x.Slice() {
			if code = r.scanOne(fr, key, val, body, t, t); code != next {
				break
			}
		}
	}
	if code == scanDone {
		return next
	}
	return code
}

// scanOne runs a scan's block for one element: next to go on, scanDone to stop the scan, or a code.
func (r *planRun) scanOne(fr []*ast.Term, key, val int, body block, k, v *ast.Term) int {
	if r.tick() {
		return codeError
	}
	fr[key], fr[val] = k, v
	switch code := r.block(fr, body); {
	case code == blockDone, code == next:
		return next
	case code == 0:
		return scanDone
	case code >= codeReturn:
		return code
	default:
		return code - 1
	}
}
