package zonecapacity

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Why a zone was chosen.
const (
	// ReasonCapacity: the zone where the most of the job fits in free capacity now.
	ReasonCapacity = "capacity"
	// ReasonHint: no zone has free capacity (a fleet scaled to zero, or full): configured per-zone capacity
	// hints stand in for it.
	ReasonHint = "hint"
	// ReasonWeight: no free capacity and no hints: configured per-zone weights share drivers out.
	ReasonWeight = "weight"
	// ReasonRoundRobin: no free capacity, hints or weights: drivers take turns over the zones.
	ReasonRoundRobin = "round-robin"
)

// ZoneHint is the configuration of one zone for a fleet whose free capacity is unknown (scaled to zero).
type ZoneHint struct {
	// Weight shares drivers out in proportion when no zone has free capacity and no hint gives capacity.
	// 0 leaves the zone out of weighted choices.
	Weight int
	// Capacity is what the autoscaler can bring up in the zone; zero when not configured.
	Capacity Resources
}

// Request asks for a driver's zone.
type Request struct {
	// App identifies the application (namespace/spark-app-selector). A second request for an application
	// with a live reservation gets the same answer: a reinvoked or retried admission chooses the same zone.
	App string
	// Pool is where the driver's executors may run (see Index.Pool).
	Pool PoolID
	// Executors is the size hint (sparkplace.io/executors); 0 when the driver gives none.
	Executors int
	// PerExecutor is one executor's requests.
	PerExecutor Resources
	// Zones holds the configured per-zone hints and weights (config driverZone.zones); when set, choices
	// without free capacity stay within these zones.
	Zones map[string]ZoneHint
	// TTL is how long the driver's size hint counts against its zone before its executors exist.
	TTL time.Duration
}

// ZoneState is what the index knew of one zone when it chose.
type ZoneState struct {
	Zone string `json:"zone"`
	// Free is the estimated free capacity for the pool (after pending executors and recent drivers).
	Free Resources `json:"free"`
	// Fits is how many executors of the requested size fit in Free (capped at the hint's count).
	Fits int64 `json:"fits"`
	// Recent counts the drivers admitted to the zone whose reservation is still live.
	Recent int `json:"recent"`
}

// Choice is a driver's zone and why.
type Choice struct {
	Zone   string      `json:"zone"`
	Reason string      `json:"reason"`
	Zones  []ZoneState `json:"zones,omitempty"`
}

// Explain says in one line which zone was chosen and why, for the pod annotation.
func (c Choice) Explain(executors int) string {
	var b strings.Builder
	switch c.Reason {
	case ReasonCapacity:
		want := "executors"
		if executors > 0 {
			want = fmt.Sprintf("of %d executors", executors)
		}
		fmt.Fprintf(&b, "%s: most free spot capacity", c.Zone)
		for _, z := range c.Zones {
			if z.Zone == c.Zone {
				fmt.Fprintf(&b, " (%d %s fit)", z.Fits, want)
			}
		}
	case ReasonHint:
		fmt.Fprintf(&b, "%s: no zone has free spot capacity; most room by the configured zone hints", c.Zone)
	case ReasonWeight:
		fmt.Fprintf(&b, "%s: no zone has free spot capacity; by the configured zone weights", c.Zone)
	default:
		fmt.Fprintf(&b, "%s: no zone has free spot capacity; round robin", c.Zone)
	}
	b.WriteString("; free CPU by zone:")
	for _, z := range c.Zones {
		fmt.Fprintf(&b, " %s=%s", z.Zone, resource.NewMilliQuantity(z.Free.MilliCPU, resource.DecimalSI))
	}
	return b.String()
}

// reservation is a recently admitted driver's size hint, counted against its zone until its executors exist
// or it expires.
type reservation struct {
	zoneKey, zone string
	remaining     Resources
	expires       time.Time
	choice        Choice
}

type expiring struct {
	app     string
	expires time.Time
}

// Choose picks the zone for a driver and reserves its size hint there, in one step, so that concurrent
// drivers see each other. With free capacity known, the zone where the most executors fit wins, then the
// most free CPU, then the zone with the fewest recent drivers, then the next in turn. With none (every zone
// full, or a pool scaled to zero), configured hints, else weights, else round robin over the zones that have
// nodes. An empty Zone means no zone is known at all.
func (x *Index) Choose(req Request) Choice {
	x.mu.Lock()
	defer x.mu.Unlock()
	now := x.now()
	x.expire(now)
	if r := x.reservations[req.App]; r != nil && req.App != "" {
		return r.choice
	}
	if int(req.Pool) < 0 || int(req.Pool) >= len(x.pools) {
		return Choice{}
	}
	ps := x.pools[req.Pool]
	choice := x.byCapacity(ps, req)
	if choice.Zone == "" {
		choice = x.byConfig(ps, req)
	}
	if choice.Zone != "" && req.App != "" {
		size := req.PerExecutor.times(max(req.Executors, 1))
		r := &reservation{zoneKey: ps.pool.ZoneKey, zone: choice.Zone, remaining: size, expires: now.Add(req.TTL), choice: choice}
		x.reservations[req.App] = r
		x.reserve(r, r.remaining, 1)
		x.expiry = append(x.expiry, expiring{req.App, r.expires})
	}
	x.turn++
	return choice
}

// Forget drops an application's reservation: its driver did not take the zone (the user set another one,
// the policy did not apply it, the request was a dry run).
func (x *Index) Forget(app string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if r := x.reservations[app]; r != nil {
		x.drop(app, r)
	}
}

func (x *Index) byCapacity(ps *poolState, req Request) Choice {
	zones := make([]ZoneState, 0, len(ps.zones))
	for _, z := range ps.order {
		if ps.zones[z].nodes == 0 {
			continue
		}
		zones = append(zones, x.state(ps, req, z, ps.zones[z].free))
	}
	best := x.best(zones, func(a, b ZoneState) int {
		return cmpFirst(a.Fits-b.Fits, a.Free.MilliCPU-b.Free.MilliCPU, int64(b.Recent-a.Recent))
	})
	if best < 0 || zones[best].Fits == 0 {
		return Choice{Zones: zones}
	}
	return Choice{Zone: zones[best].Zone, Reason: ReasonCapacity, Zones: zones}
}

func (x *Index) byConfig(ps *poolState, req Request) Choice {
	var zones []ZoneState
	hinted, weighted := false, false
	candidates := sortedZones(req.Zones)
	if len(candidates) == 0 {
		candidates = sortedZones(ps.anyNodes)
	}
	for _, z := range candidates {
		h := req.Zones[z]
		cap := h.Capacity
		hinted = hinted || !cap.isZero()
		weighted = weighted || h.Weight > 0
		zones = append(zones, x.state(ps, req, z, cap))
	}
	var best int
	reason := ReasonRoundRobin
	switch {
	case hinted:
		reason = ReasonHint
		best = x.best(zones, func(a, b ZoneState) int {
			return cmpFirst(a.Fits-b.Fits, a.Free.MilliCPU-b.Free.MilliCPU, int64(b.Recent-a.Recent))
		})
	case weighted:
		reason = ReasonWeight
		// The zone furthest below its share: fewest recent drivers per unit of weight ((r+1)/w, compared
		// without division). A zone of weight 0 never wins.
		best = x.best(zones, func(a, b ZoneState) int {
			wa, wb := int64(req.Zones[a.Zone].Weight), int64(req.Zones[b.Zone].Weight)
			switch {
			case wa == 0 || wb == 0:
				return int(wa - wb)
			}
			return cmpFirst(int64(b.Recent+1)*wa - int64(a.Recent+1)*wb)
		})
	default:
		best = x.best(zones, func(a, b ZoneState) int { return cmpFirst(int64(b.Recent - a.Recent)) })
	}
	// Numbers from configuration stand in for free capacity; report the free capacity the index saw.
	for i := range zones {
		zones[i].Free, zones[i].Fits = x.observed(ps, req, zones[i].Zone)
	}
	if best < 0 {
		return Choice{Zones: zones}
	}
	return Choice{Zone: zones[best].Zone, Reason: reason, Zones: zones}
}

// state is a zone's free capacity for req, starting from base (the pool's free sum, or a configured hint),
// less pending executors and live reservations there.
func (x *Index) state(ps *poolState, req Request, zone string, base Resources) ZoneState {
	reserved := x.reserved[ps.pool.ZoneKey][zone]
	free := base.minus(x.pending[ps.pool.ZoneKey][zone]).minus(reserved.sum).atLeastZero()
	recent := reserved.count
	fits := free.count(req.PerExecutor)
	if req.Executors > 0 {
		fits = min(fits, int64(req.Executors))
	}
	return ZoneState{Zone: zone, Free: free, Fits: fits, Recent: recent}
}

func (x *Index) observed(ps *poolState, req Request, zone string) (Resources, int64) {
	var base Resources
	if s := ps.zones[zone]; s != nil {
		base = s.free
	}
	st := x.state(ps, req, zone, base)
	return st.Free, st.Fits
}

// best returns the index of the greatest zone by cmp; among equals, the one whose turn it is, so that a
// burst of equal choices rotates over them. -1 for no zones.
func (x *Index) best(zones []ZoneState, cmp func(a, b ZoneState) int) int {
	var tied []int
	for i := range zones {
		switch {
		case len(tied) == 0:
			tied = []int{i}
		case cmp(zones[i], zones[tied[0]]) > 0:
			tied = []int{i}
		case cmp(zones[i], zones[tied[0]]) == 0:
			tied = append(tied, i)
		}
	}
	if len(tied) == 0 {
		return -1
	}
	return tied[x.turn%len(tied)]
}

// cmpFirst returns the sign of the first non-zero difference.
func cmpFirst(diffs ...int64) int {
	for _, d := range diffs {
		switch {
		case d > 0:
			return 1
		case d < 0:
			return -1
		}
	}
	return 0
}

// consume lets an executor that now exists take over part of its driver's reservation.
func (x *Index) consume(r *reservation, used Resources) {
	left := r.remaining.minus(used).atLeastZero()
	x.reserve(r, left.minus(r.remaining), 0)
	r.remaining = left
}

func (x *Index) drop(app string, r *reservation) {
	delete(x.reservations, app)
	x.reserve(r, Resources{}.minus(r.remaining), -1)
}

// reserve changes the per-zone sum of live reservations by size and their count by n.
func (x *Index) reserve(r *reservation, size Resources, n int) {
	byZone := x.reserved[r.zoneKey]
	if byZone == nil {
		byZone = map[string]reservedSum{}
		x.reserved[r.zoneKey] = byZone
	}
	s := byZone[r.zone]
	s.sum, s.count = s.sum.plus(size), s.count+n
	if s.count == 0 {
		delete(byZone, r.zone)
	} else {
		byZone[r.zone] = s
	}
}

type reservedSum struct {
	sum   Resources
	count int
}

// expire drops the reservations whose time is up; the queue is in expiry order (one TTL per request, and
// the clock only moves forward), and entries of reservations already dropped or renewed are skipped.
func (x *Index) expire(now time.Time) {
	i := 0
	for ; i < len(x.expiry) && !x.expiry[i].expires.After(now); i++ {
		e := x.expiry[i]
		if r := x.reservations[e.app]; r != nil && r.expires.Equal(e.expires) {
			x.drop(e.app, r)
		}
	}
	x.expiry = x.expiry[i:]
}
