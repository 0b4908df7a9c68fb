package policies

import (
	"crypto/sha256"
	"maps"
	"slices"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/sparkplace/sparkplace/placement"
)

// decisionKey is the SHA-256 of the input's JSON. encoding/json writes struct fields in declaration order
// and map keys sorted, so equal inputs give equal keys.
type decisionKey [sha256.Size]byte

func cacheKey(inputJSON []byte) decisionKey { return sha256.Sum256(inputJSON) }

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
