package policies

import (
	"context"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
)

// inputPaths is a set of input paths as a tree: a node marked whole stands for the entire value there; its
// children (object members by name) for those members only.
type inputPaths struct {
	whole bool
	next  map[string]*inputPaths
}

// add records path (object member names from the input's root); an empty path is the whole value.
func (p *inputPaths) add(path []string) {
	n := p
	for _, name := range path {
		if n.whole {
			return
		}
		if n.next == nil {
			n.next = map[string]*inputPaths{}
		}
		c := n.next[name]
		if c == nil {
			c = &inputPaths{}
			n.next[name] = c
		}
		n = c
	}
	n.whole, n.next = true, nil
}

// knownRole is the one input path the analysis takes as known: the decision is analysed per role.
const knownRole = "role"

// readInputPaths returns, for a pod of the given role, the input paths the decision (Query) can depend on:
// a superset of what any evaluation with input.role == role reads, derived from the compiled policy. A
// cache keyed on those paths alone is sound for any policy a user writes: two inputs that agree on them get
// the same decision, whatever else differs (an application's id or name, a pod's labels the policy never
// reads). It returns nil (depend on the whole input) when the policy reads the input in a way the analysis
// does not follow: the whole input as a value, a member chosen by a variable at its root, or `with`.
//
// The analysis walks the rules reachable from the query. Every reference rooted at input adds its path up to
// its first member that is not a constant (a variable, an expression): from there the whole value counts.
// A member given by a reference to constant data (input.pod.metadata.labels[cfg.profileLabel]) is resolved
// once, here, so only that label counts, not every label. A rule body is cut short at an expression that is
// false for every input of this role (role == "executor" for a driver, or a reference to a rule no body of
// which can succeed): what follows it never runs, and the rules it refers to are not followed. What precedes
// it does run (an error there is an error for the pod), so it counts.
func readInputPaths(ctx context.Context, c *ast.Compiler, store storage.Store, role string) *inputPaths {
	a := &depAnalysis{
		ctx: ctx, c: c, store: store,
		input:    ast.NewObject(ast.Item(ast.StringTerm(knownRole), ast.StringTerm(role))),
		paths:    &inputPaths{},
		visited:  map[*ast.Rule]bool{},
		beyond:   map[*ast.Rule]bool{},
		chainOut: map[*ast.Rule]bool{},
	}
	a.paths.add([]string{knownRole})
	query, err := ast.ParseRef(Query)
	if err != nil {
		return nil
	}
	for _, r := range a.rulesOf(query) {
		a.visit(r)
	}
	if a.paths.whole || a.unfollowed {
		return nil
	}
	return a.paths
}

// depAnalysis is the state of one readInputPaths.
type depAnalysis struct {
	ctx   context.Context
	c     *ast.Compiler
	store storage.Store
	// input is the known part of the input: its role.
	input ast.Value
	paths *inputPaths
	// unfollowed is set when the policy reads the input in a way the analysis does not follow.
	unfollowed bool
	// visited: rules whose reads are in paths. beyond: rules that (with what they refer to) read more than
	// input.role, or are not plain functions of it. chainOut: rules (with their else chain) no body of which
	// can succeed for this role.
	visited, beyond, chainOut map[*ast.Rule]bool
	// bound maps the local variables of the body being read that hold a constant name to it.
	bound map[ast.Var]string
}

// rulesOf are the rules ref can refer to.
func (a *depAnalysis) rulesOf(ref ast.Ref) []*ast.Rule {
	if !ref.HasPrefix(ast.DefaultRootRef) {
		return nil
	}
	return a.c.GetRulesDynamicWithOpts(ref, ast.RulesOptions{IncludeHiddenModules: true})
}

// visit adds the input reads of rule and of the rules its live bodies refer to.
func (a *depAnalysis) visit(rule *ast.Rule) {
	if a.visited[rule] {
		return
	}
	a.visited[rule] = true
	outer := a.bound
	for r := rule; r != nil; r = r.Else {
		a.bound = map[ast.Var]string{}
		if a.readBody(r.Body) {
			a.read(r.Head)
		}
	}
	a.bound = outer
}

// readBody adds the reads of body's expressions up to the first one that cannot succeed for this role, and
// reports whether there is none (the body can succeed).
func (a *depAnalysis) readBody(body ast.Body) bool {
	for _, expr := range body {
		if len(expr.With) > 0 {
			a.unfollowed = true
		}
		a.bind(expr)
		a.read(expr)
		if a.fails(expr) {
			return false
		}
	}
	return true
}

// bind records a local variable that expr sets to a constant name (the compiler writes
// input.pod.metadata.labels[cfg.profileLabel] as __local1__ = cfg.profileLabel; input.pod.metadata.labels[__local1__]).
func (a *depAnalysis) bind(expr *ast.Expr) {
	if !expr.IsEquality() || expr.Negated || len(expr.With) > 0 {
		return
	}
	l, r := expr.Operand(0), expr.Operand(1)
	if _, ok := r.Value.(ast.Var); ok {
		l, r = r, l
	}
	if v, ok := l.Value.(ast.Var); ok {
		if _, ok := r.Value.(ast.Var); ok {
			return
		}
		if name, ok := a.constantName(r); ok {
			a.bound[v] = name
		}
	}
}

// read adds the input paths x reads and visits the rules it refers to.
func (a *depAnalysis) read(x any) {
	ast.WalkRefs(x, func(ref ast.Ref) bool {
		switch {
		case ref.HasPrefix(ast.InputRootRef):
			a.addInputRef(ref)
		case ref.HasPrefix(ast.DefaultRootRef):
			for _, r := range a.rulesOf(ref) {
				a.visit(r)
			}
		}
		return false
	})
}

// addInputRef adds the path of ref (rooted at input) up to its first member that is not a constant.
func (a *depAnalysis) addInputRef(ref ast.Ref) {
	var path []string
	for _, t := range ref[1:] {
		name, ok := a.constantName(t)
		if !ok {
			break
		}
		path = append(path, name)
	}
	if len(path) == 0 && len(ref) > 1 {
		// input[x]: any member may be read.
		a.unfollowed = true
	}
	a.paths.add(path)
}

// constantName is t as a member name when it is one for every input of this role: a string, or a
// reference to a string the input does not change (config data, a rule of it).
func (a *depAnalysis) constantName(t *ast.Term) (string, bool) {
	switch v := t.Value.(type) {
	case ast.String:
		return string(v), true
	case ast.Var:
		name, ok := a.bound[v]
		return name, ok
	case ast.Ref:
		if !v.HasPrefix(ast.DefaultRootRef) || !v.IsGround() || a.readsBeyondRole(t) {
			return "", false
		}
		rs, err := a.eval(ast.NewBody(ast.Equality.Expr(ast.VarTerm("x"), t.Copy())))
		if err != nil || len(rs) != 1 {
			return "", false
		}
		s, ok := rs[0].Bindings["x"].(string)
		return s, ok
	}
	return "", false
}

// fails reports whether expr cannot succeed for any input of this role.
func (a *depAnalysis) fails(expr *ast.Expr) bool {
	if len(expr.With) > 0 {
		return false
	}
	if !expr.Negated && !expr.IsEvery() {
		// A reference to a rule that is undefined for this role makes the expression undefined.
		terms := []*ast.Term{}
		switch ts := expr.Terms.(type) {
		case *ast.Term:
			terms = append(terms, ts)
		case []*ast.Term:
			if expr.IsCall() {
				terms = append(terms, ts[1:]...)
			}
		}
		for _, t := range terms {
			if ref, ok := t.Value.(ast.Ref); ok && a.undefinedRule(ref) {
				return true
			}
		}
	}
	// A closed expression that depends on input.role alone: evaluate it.
	if len(expr.Vars(ast.VarVisitorParams{SkipRefHead: true, SkipRefCallHead: true})) > 0 || a.readsBeyondRole(expr) {
		return false
	}
	rs, err := a.eval(ast.NewBody(expr.Copy()))
	return err == nil && len(rs) == 0
}

// undefinedRule reports whether ref names (a member of) the value of complete rules none of which can
// succeed for this role, with no default.
func (a *depAnalysis) undefinedRule(ref ast.Ref) bool {
	rules := a.rulesOf(ref)
	if len(rules) == 0 {
		return false
	}
	for _, r := range rules {
		path := r.Ref()
		if !path.IsGround() || !ref.HasPrefix(path) || r.Default || len(r.Head.Args) > 0 ||
			r.Head.RuleKind() != ast.SingleValue || !a.chainFails(r) {
			return false
		}
	}
	return true
}

// chainFails reports whether no body of rule and its else chain can succeed for this role.
func (a *depAnalysis) chainFails(rule *ast.Rule) bool {
	if out, ok := a.chainOut[rule]; ok {
		return out
	}
	a.chainOut[rule] = false // Rego has no recursion; a cycle here would only be conservative
	out := true
	for r := rule; r != nil && out; r = r.Else {
		dead := false
		for _, expr := range r.Body {
			if a.fails(expr) {
				dead = true
				break
			}
		}
		out = dead
	}
	a.chainOut[rule] = out
	return out
}

// readsBeyondRole reports whether x (with the rules it refers to) may depend on more than input.role: it
// reads other input, uses `with`, or calls a nondeterministic builtin.
func (a *depAnalysis) readsBeyondRole(x any) bool {
	beyond := false
	ast.WalkExprs(x, func(e *ast.Expr) bool {
		if len(e.With) > 0 {
			beyond = true
		}
		if e.IsCall() {
			if b, ok := ast.BuiltinMap[e.Operator().String()]; ok && b.IsNondeterministic() {
				beyond = true
			}
		}
		return beyond
	})
	ast.WalkRefs(x, func(ref ast.Ref) bool {
		switch {
		case beyond:
		case ref.HasPrefix(ast.InputRootRef):
			if len(ref) < 2 || !ref[1].Equal(ast.StringTerm(knownRole)) {
				beyond = true
			}
		case ref.HasPrefix(ast.DefaultRootRef):
			for _, r := range a.rulesOf(ref) {
				if a.ruleBeyondRole(r) {
					beyond = true
					break
				}
			}
		}
		return beyond
	})
	return beyond
}

func (a *depAnalysis) ruleBeyondRole(rule *ast.Rule) bool {
	if b, ok := a.beyond[rule]; ok {
		return b
	}
	a.beyond[rule] = true // conservative on a cycle
	b := a.readsBeyondRole(rule)
	a.beyond[rule] = b
	return b
}

// eval evaluates a closed query with the known input.
func (a *depAnalysis) eval(body ast.Body) (rego.ResultSet, error) {
	return rego.New(
		rego.ParsedQuery(body),
		rego.Compiler(a.c),
		rego.Store(a.store),
		rego.ParsedInput(a.input),
		rego.StrictBuiltinErrors(true),
	).Eval(a.ctx)
}
