package policies

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"

	gojson "github.com/goccy/go-json"
)

// TestInputJSONMatchesEncodingJSON: the cache key and Rego's input are goccy/go-json's encoding of the
// input; it must be byte for byte encoding/json's, so equal inputs keep equal keys and Rego sees the same.
func TestInputJSONMatchesEncodingJSON(t *testing.T) {
	for name, in := range map[string]*Input{
		"nvme executor": benchInput(),
		"driver":        makeInput("driver").profile("fargate").obj(),
	} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := gojson.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("goccy/go-json:\n%s\nencoding/json:\n%s", got, want)
			}
		})
	}
}

// TestDecisionCacheIsBounded fills the cache past its capacity with distinct decisions (NVMe executors, the
// largest decisions of the bundle, each in a namespace of its own: executors of two applications in one
// namespace and zone share one) and measures the heap each entry holds. The cache
// never holds more than its capacity; the figure goes into the README (`go test ./policies -run
// DecisionCacheIsBounded -v`).
func TestDecisionCacheIsBounded(t *testing.T) {
	const capacity = 256
	e := newEngine(t, Options{CacheSize: capacity})
	ctx := context.Background()
	decide := func(app int) {
		in := benchInput()
		in.App.ID = fmt.Sprintf("spark-%032x", app)
		in.Pod.Labels["spark-app-selector"] = in.App.ID
		in.Namespace.Name = fmt.Sprintf("team-%d", app)
		in.Pod.Namespace = in.Namespace.Name
		if _, err := e.Decide(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	decide(0) // what the first evaluation allocates once (compiled query caches) is not the cache's
	before := liveHeap()
	for app := 1; app <= capacity; app++ {
		decide(app)
	}
	perEntry := (liveHeap() - before) / capacity
	for app := capacity + 1; app <= 2*capacity; app++ {
		decide(app)
	}
	stats := e.CacheStats()
	if stats.Entries != capacity || stats.Capacity != capacity {
		t.Errorf("cache holds %d entries of capacity %d after %d distinct decisions, want %d", stats.Entries, stats.Capacity, 2*capacity+1, capacity)
	}
	if stats.Misses != 2*capacity+1 || stats.Hits != 0 {
		t.Errorf("lookups: %d hits, %d misses; want 0 and %d", stats.Hits, stats.Misses, 2*capacity+1)
	}
	t.Logf("decision cache: %d bytes of heap per entry (NVMe executor decisions); the default %d entries hold at most %.1f MiB",
		perEntry, defaultCacheSize, float64(perEntry*defaultCacheSize)/(1<<20))
	// A guard, not a measurement: an entry is a few KiB; tens of KiB would mean the cache keeps what it should not.
	if perEntry > 32<<10 {
		t.Errorf("%d bytes per cache entry, want under 32 KiB", perEntry)
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
