package policies

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	gojson "github.com/goccy/go-json"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/sparkplace/sparkplace/placement"
)

// decisionKey is the SHA-256 of the part of the input's JSON the decision can depend on (see keyOf).
// goccy/go-json, as encoding/json, writes struct fields in declaration order and map keys sorted, so equal
// values give equal bytes.
type decisionKey [sha256.Size]byte

// inputBuffers hold the JSON of inputs whose decision came from the cache (most admissions): nothing else
// keeps it, so the next admission writes its input there.
var inputBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encodeInput writes in as JSON into a buffer from inputBuffers. goccy/go-json writes what encoding/json
// writes (map keys sorted) in about a third of the time, and this runs on every admission.
func encodeInput(in *Input) (*bytes.Buffer, error) {
	buf := inputBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	if err := gojson.NewEncoder(buf).Encode(in); err != nil {
		inputBuffers.Put(buf)
		return nil, err
	}
	return buf, nil
}

// keyRoles are the roles whose decisions are keyed on the input paths the policy reads for them
// (readInputPaths); any other role is keyed on the whole input.
var keyRoles = []string{"driver", "executor"}

// keyPaths are, per role, the input paths a version's decision can depend on; a role missing (or nil) is
// keyed on the whole input.
type keyPaths map[string]*inputPaths

func newKeyPaths(ctx context.Context, c *ast.Compiler, store storage.Store) keyPaths {
	kp := keyPaths{}
	for _, role := range keyRoles {
		if p := readInputPaths(ctx, c, store, role); p != nil {
			kp[role] = p
		}
	}
	return kp
}

// keyOf is the decision cache's key for an input of role (raw: its JSON): the SHA-256 of the input
// reduced to the paths the decision can depend on. The executors of one application, whose inputs differ
// in nothing the policy reads, share a key; so do the drivers of applications of one shape, when the
// policy reads nothing that tells their applications apart (the default bundle does not, for drivers).
func (kp keyPaths) keyOf(role string, raw []byte) decisionKey {
	paths := kp[role]
	if paths == nil {
		return sha256.Sum256(raw)
	}
	out := projections.Get().(*[]byte)
	defer projections.Put(out)
	p := projector{in: raw, out: (*out)[:0]}
	p.project(paths)
	*out = p.out
	if p.bad {
		return sha256.Sum256(raw)
	}
	return sha256.Sum256(p.out)
}

// projections are keyOf's buffers.
var projections = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// projector copies the members of a JSON document that a set of paths names, in their order in the
// document, into out; the rest is skipped. The input is JSON that goccy/go-json wrote (valid); bad is set
// on anything else.
type projector struct {
	in  []byte
	pos int
	out []byte
	bad bool
}

// project copies the value at pos, reduced to paths.
func (p *projector) project(paths *inputPaths) {
	p.space()
	if paths.whole || p.pos >= len(p.in) || p.in[p.pos] != '{' {
		start := p.pos
		p.skip()
		p.out = append(p.out, p.in[start:p.pos]...)
		return
	}
	p.pos++
	p.out = append(p.out, '{')
	first := true
	for !p.bad {
		p.space()
		if p.pos >= len(p.in) {
			p.bad = true
			return
		}
		switch p.in[p.pos] {
		case '}':
			p.pos++
			p.out = append(p.out, '}')
			return
		case ',':
			p.pos++
			continue
		}
		start := p.pos
		p.skip()
		key := p.in[start:p.pos]
		p.space()
		if p.bad || p.pos >= len(p.in) || p.in[p.pos] != ':' || len(key) < 2 || key[0] != '"' {
			p.bad = true
			return
		}
		p.pos++
		var child *inputPaths
		if name := key[1 : len(key)-1]; bytes.IndexByte(name, '\\') < 0 {
			child = paths.next[string(name)] // no allocation for a lookup
		} else {
			child = paths.next[unquoteName(key)]
		}
		if child == nil {
			p.skip()
			continue
		}
		if !first {
			p.out = append(p.out, ',')
		}
		first = false
		p.out = append(p.out, key...)
		p.out = append(p.out, ':')
		p.project(child)
	}
}

// unquoteName is the name a JSON string token (quotes included) with escapes holds.
func unquoteName(key []byte) string {
	var s string
	if err := json.Unmarshal(key, &s); err != nil {
		return string(key)
	}
	return s
}

func (p *projector) space() {
	for p.pos < len(p.in) && (p.in[p.pos] == ' ' || p.in[p.pos] == '\n' || p.in[p.pos] == '\t' || p.in[p.pos] == '\r') {
		p.pos++
	}
}

// structural are the bytes skip stops at inside an object or array.
var structural = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

// skip moves past the value at pos, jumping over strings with bytes.IndexByte (vectorised): the scan runs
// on every admission, over the whole input.
func (p *projector) skip() {
	p.space()
	if p.pos >= len(p.in) {
		p.bad = true
		return
	}
	switch p.in[p.pos] {
	case '"':
		p.skipString()
	case '{', '[':
		depth := 0
		for !p.bad {
			for p.pos < len(p.in) && !structural[p.in[p.pos]] {
				p.pos++
			}
			if p.pos >= len(p.in) {
				p.bad = true
				return
			}
			switch p.in[p.pos] {
			case '"':
				p.skipString()
				continue
			case '{', '[':
				depth++
			default:
				if depth--; depth == 0 {
					p.pos++
					return
				}
			}
			p.pos++
		}
	default: // number, true, false, null
		for ; p.pos < len(p.in); p.pos++ {
			switch p.in[p.pos] {
			case ',', '}', ']', ' ', '\n', '\t', '\r':
				return
			}
		}
	}
}

// skipString moves past the string whose opening quote is at pos.
func (p *projector) skipString() {
	for p.pos++; ; {
		i := bytes.IndexByte(p.in[p.pos:], '"')
		if i < 0 {
			p.bad = true
			return
		}
		end := p.pos + i
		// The quote ends the string unless an odd number of backslashes precede it.
		backslashes := 0
		for j := end - 1; j >= p.pos && p.in[j] == '\\'; j-- {
			backslashes++
		}
		p.pos = end + 1
		if backslashes%2 == 0 {
			return
		}
	}
}

// decisionCache memoises decisions: a decision is a pure function of the input and the bundle version, and
// the executors of one application share one input. Entries are never handed out, only copies.
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

// copyDecision deep-copies d, so a caller (placement.Apply moving slices and pointers into a pod) cannot
// change a cached decision.
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
