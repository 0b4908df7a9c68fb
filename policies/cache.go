package policies

import (
	"context"
	"crypto/sha256"
	"maps"
	"reflect"
	"slices"
	"sync/atomic"

	gojson "github.com/goccy/go-json"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/sparkplace/sparkplace/placement"
)

// decisionKey is the SHA-256 of the values of the input the decision can depend on (see keyPaths.keyOf).
type decisionKey [sha256.Size]byte

// encodeInput is in as JSON, Rego's input on a cache miss. goccy/go-json writes what encoding/json writes
// (TestInputJSONMatchesEncodingJSON) in about a third of the time.
func encodeInput(in *Input) ([]byte, error) { return gojson.Marshal(in) }

// keyRoles are the roles whose decisions are keyed on the input paths the policy reads for them
// (readInputPaths); any other role is keyed on the whole input.
var keyRoles = []string{"driver", "executor"}

// keyPaths are, per role, the input paths a version's decision can depend on (a role missing is keyed on
// the whole input), with the plans that write the input's values at those paths.
type keyPaths struct {
	paths map[string]*inputPaths
	plans map[string]*keyPlan
	// whole writes every value of the input: the plan of the roles not in plans.
	whole *keyPlan
}

var inputType = reflect.TypeFor[Input]()

func newKeyPaths(ctx context.Context, c *ast.Compiler, store storage.Store) keyPaths {
	kp := keyPaths{paths: map[string]*inputPaths{}, plans: map[string]*keyPlan{}, whole: compileKeyPlan(inputType, &inputPaths{whole: true})}
	for _, role := range keyRoles {
		if p := readInputPaths(ctx, c, store, role); p != nil {
			kp.paths[role], kp.plans[role] = p, compileKeyPlan(inputType, p)
		}
	}
	return kp
}

// keyOf is the decision cache's key for in: the SHA-256 of its values at the paths the decision can depend
// on for its role, written from the Go structs (keyPlan), not from the input's JSON, which a cache hit does
// not need. The executors of one application, whose inputs differ in nothing the policy reads, share a key;
// so do the drivers of applications of one shape, when the policy reads nothing that tells their
// applications apart (the default bundle does not, for drivers).
func (kp keyPaths) keyOf(in *Input) (decisionKey, error) {
	plan := kp.plans[in.Role]
	if plan == nil {
		plan = kp.whole
	}
	return plan.sum(reflect.ValueOf(in).Elem())
}

// decisionCache memoises decisions: a decision is a pure function of the input and the bundle version, and
// the executors of one application share one input. Decide hands out copies of its entries, DecideKeyed the
// entries themselves (read-only).
type decisionCache struct {
	lru      *lru.Cache[decisionKey, *placement.Decision] // nil when disabled
	counters *cacheCounters
}

// cacheCounters count the lookups of every version's cache of one engine (a reload starts a new cache, the
// counts go on).
type cacheCounters struct{ hits, misses atomic.Uint64 }

// CacheStats describe an engine's decision cache.
type CacheStats struct {
	// Hits and Misses count the lookups since the engine started (with the cache disabled, all miss).
	Hits, Misses uint64
	// Entries are the decisions held now, at most Capacity (Options.CacheSize).
	Entries, Capacity int
}

func newDecisionCache(size int, counters *cacheCounters) *decisionCache {
	if size < 0 {
		return &decisionCache{counters: counters}
	}
	c, err := lru.New[decisionKey, *placement.Decision](size)
	if err != nil { // only for size <= 0, which New rules out
		return &decisionCache{counters: counters}
	}
	return &decisionCache{lru: c, counters: counters}
}

func (c *decisionCache) get(k decisionKey) (*placement.Decision, bool) {
	if c.lru == nil {
		c.counters.misses.Add(1)
		return nil, false
	}
	d, ok := c.lru.Get(k)
	if ok {
		c.counters.hits.Add(1)
	} else {
		c.counters.misses.Add(1)
	}
	return d, ok
}

func (c *decisionCache) len() int {
	if c.lru == nil {
		return 0
	}
	return c.lru.Len()
}

func (c *decisionCache) add(k decisionKey, d *placement.Decision) {
	if c.lru != nil {
		c.lru.Add(k, d)
	}
}

// copyDecision deep-copies d, so a caller of Decide cannot change a cached decision.
func copyDecision(d *placement.Decision) *placement.Decision {
	out := &placement.Decision{
		NodeSelector:      maps.Clone(d.NodeSelector),
		Labels:            maps.Clone(d.Labels),
		Annotations:       maps.Clone(d.Annotations),
		SchedulerName:     d.SchedulerName,
		PriorityClassName: d.PriorityClassName,
		Deny:              slices.Clone(d.Deny),
		Rules:             slices.Clone(d.Rules),
		Notes:             slices.Clone(d.Notes),
	}
	if d.LocalDirs != nil {
		ld := *d.LocalDirs
		ld.Volumes = slices.Clone(ld.Volumes)
		if ld.FSGroup != nil {
			ld.FSGroup = ptr(*ld.FSGroup)
		}
		out.LocalDirs = &ld
	}
	out.Tolerations = deepCopyAll(d.Tolerations)
	out.NodeAffinity = deepCopyAll(d.NodeAffinity)
	out.PodAffinity = deepCopyAll(d.PodAffinity)
	out.PreferredNodeAffinity = deepCopyAll(d.PreferredNodeAffinity)
	out.TopologySpreadConstraints = deepCopyAll(d.TopologySpreadConstraints)
	out.PreferredPodAffinity = deepCopyAll(d.PreferredPodAffinity)
	out.InitContainers = deepCopyAll(d.InitContainers)
	return out
}

// deepCopyAll deep-copies a slice of API objects with their generated DeepCopyInto; nil stays nil.
func deepCopyAll[T any, PT interface {
	*T
	DeepCopyInto(*T)
}](in []T) []T {
	if in == nil {
		return nil
	}
	out := make([]T, len(in))
	for i := range in {
		PT(&in[i]).DeepCopyInto(&out[i])
	}
	return out
}

func ptr[T any](v T) *T { return &v }
