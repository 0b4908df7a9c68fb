package webhook

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sparkplace/sparkplace/policies"
)

func TestCacheCollectors(t *testing.T) {
	stats := policies.CacheStats{Hits: 980, Misses: 21, Entries: 21, Capacity: 1024}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(CacheCollectors(func() policies.CacheStats { return stats })...)
	want := `
# HELP sparkplace_decision_cache_entries Decisions held in the cache now (at most its capacity, about 4 KiB each).
# TYPE sparkplace_decision_cache_entries gauge
sparkplace_decision_cache_entries 21
# HELP sparkplace_decision_cache_lookups_total Decision-cache lookups by result (hit, miss); a miss is a full policy evaluation.
# TYPE sparkplace_decision_cache_lookups_total counter
sparkplace_decision_cache_lookups_total{result="hit"} 980
sparkplace_decision_cache_lookups_total{result="miss"} 21
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
