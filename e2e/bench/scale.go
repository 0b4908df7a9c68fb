package bench

import (
	"fmt"
	"time"
)

// Scale sizes a run. CI runs SmallScale (it only shows that every step works); `make bench-cluster` runs
// FullScale, the scale the report's figures are stated at.
type Scale struct {
	Name string
	// Reps is the number of repetitions of the create measurement; each runs every variant: the serial creates
	// taking turns create by create, the parallel ones block by block, in a rotated order.
	Reps int
	// Serial creates are made one at a time (latency); Parallel creates by Clients clients at once (throughput),
	// in Blocks blocks.
	Serial, Parallel, Clients, Blocks int
	// BurstDrivers drivers over three zones each allocate BurstExecutors executors.
	BurstDrivers, BurstExecutors int
	// SpotNodesPerZone are added to framework.DefaultFleet, so that a burst's executors all fit on spot.
	SpotNodesPerZone int
	// SchedReps interleaved repetitions of the scheduling measurement, of SchedDrivers × SchedExecutors.
	SchedReps, SchedDrivers, SchedExecutors int
	// SchedProfile is how long kube-scheduler's CPU profile of a scheduling round runs from its resumption: longer
	// than any round of the scale takes, so that it holds all of the round's scheduling cycles (a round still
	// binding at its end gets no cycle figure). It runs on while the round's pods are deleted.
	SchedProfile time.Duration
	// At MemNodes extra nodes and MemPods non-Spark pods, MemDrivers drivers allocate MemExecutors executors each.
	MemNodes, MemPods, MemDrivers, MemExecutors int
	// Timeout bounds the whole run.
	Timeout time.Duration
}

// SmallScale keeps the run to a few seconds of work per measurement.
var SmallScale = Scale{
	Name: "small", Reps: 1, Serial: 10, Parallel: 48, Clients: 16, Blocks: 2,
	BurstDrivers: 3, BurstExecutors: 4,
	SchedReps: 1, SchedDrivers: 3, SchedExecutors: 4, SchedProfile: 3 * time.Second,
	MemNodes: 30, MemPods: 60, MemDrivers: 2, MemExecutors: 4,
	Timeout: 10 * time.Minute,
}

// FullScale is the scale of the report: 5 repetitions of 200 serial and 1,000 parallel creates (10 blocks of
// 100) per variant; 20 drivers × 50 executors; 10 repetitions of scheduling 1,000 executors per variant; 5,000
// nodes, 20,000 other pods and 1,000 Spark pods. It takes about 30 minutes on 2 shared cores, 11 to 14 of them
// the creates and 12 the scheduling rounds.
//
// The two ratios with a 5% target move more than 5% from one repetition to the next on 2 shared cores (the
// scheduling rate 0.72–1.33 in one run of 5), so they get more repetitions than the other figures need:
// blocks of 100 rather than 50 leave less of each block to the 16 clients' ramp-up and drain.
var FullScale = Scale{
	Name: "full", Reps: 5, Serial: 200, Parallel: 1000, Clients: 16, Blocks: 10,
	BurstDrivers: 20, BurstExecutors: 50, SpotNodesPerZone: 24,
	// Rounds took 4 to 9 s at full scale on a shared 2-core machine; the profile sets a round's length (with
	// 20 s, 30 s a round).
	SchedReps: 10, SchedDrivers: 20, SchedExecutors: 50, SchedProfile: 12 * time.Second,
	MemNodes: 5000, MemPods: 20000, MemDrivers: 20, MemExecutors: 49,
	Timeout: 90 * time.Minute,
}

// ScaleNamed returns SmallScale for "" or "small" and FullScale for "full".
func ScaleNamed(name string) (Scale, error) {
	switch name {
	case "", SmallScale.Name:
		return SmallScale, nil
	case FullScale.Name:
		return FullScale, nil
	}
	return Scale{}, fmt.Errorf("unknown bench scale %q: want small or full", name)
}
