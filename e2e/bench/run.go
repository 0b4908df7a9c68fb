package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/sparkplace/sparkplace/e2e/framework"
)

// Parts of a run, in the order they run (scheduling starts from placements the burst saw).
const (
	PartCreate = "create"
	PartBurst  = "burst"
	PartSched  = "sched"
	PartMemory = "memory"
)

// AllParts is every measurement.
var AllParts = []string{PartCreate, PartBurst, PartSched, PartMemory}

// Report is what one run measured.
type Report struct {
	Scale   Scale
	Started time.Time
	Wall    time.Duration
	Machine MachineLoad
	Creates []CreateRound
	// Bursts are the Spark-shaped bursts: cluster mode, then client mode (only cluster mode when the burst
	// ran for the scheduling measurement alone).
	Bursts []*BurstResult
	Sched  []SchedRound
	Memory *MemoryResult
	// Idle is the control plane's CPU (cores) at rest; Quiets the waits for it to settle before each phase.
	Idle   float64
	Quiets []Quiet
}

// MachineLoad says how busy the machine was with other work during the run.
type MachineLoad struct {
	Cores                 int
	LoadStart, LoadEnd    float64
	Ours, Others, Elapsed time.Duration
}

// Run measures the parts asked for (all when none), in order.
func Run(ctx context.Context, e *Env, parts ...string) (*Report, error) {
	if len(parts) == 0 {
		parts = AllParts
	}
	want := map[string]bool{}
	for _, p := range parts {
		known := false
		for _, a := range AllParts {
			known = known || p == a
		}
		if !known {
			return nil, fmt.Errorf("unknown bench part %q: want some of %v", p, AllParts)
		}
		want[p] = true
	}
	r := &Report{Scale: e.Scale, Started: time.Now(), Idle: e.idle}
	load, err := startLoad(e.CP.Dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		r.Wall = time.Since(r.Started)
		r.Quiets = e.quiets
		if m, lerr := load.end(); lerr == nil {
			r.Machine = m
		}
	}()
	if want[PartCreate] {
		if r.Creates, err = e.MeasureCreates(ctx); err != nil {
			return r, err
		}
	}
	var placements map[string]ZonePlacement
	var modes []DeployMode
	switch {
	case want[PartBurst]:
		modes = []DeployMode{ClusterMode, ClientMode}
	case want[PartSched]: // it starts from the placements the cluster-mode burst saw
		modes = []DeployMode{ClusterMode}
	}
	for _, mode := range modes {
		b, pl, err := e.MeasureBurst(ctx, mode)
		if b != nil {
			r.Bursts = append(r.Bursts, b)
		}
		if err != nil {
			return r, fmt.Errorf("burst, %s mode: %w", mode, err)
		}
		if mode == ClusterMode {
			placements = pl
		}
		e.Logf("burst, %s mode: %d executors, %d refused, create p50 %s p99 %s, all running in %s, %d in their application's zone, %d on spot, %.0f of %.0f decision-cache hits",
			mode, b.Executors, b.Failures, percentile(b.Latencies, .5), percentile(b.Latencies, .99),
			b.Running.Round(time.Millisecond), b.InAppZone, b.OnSpot, b.CacheHits, b.CacheLookups)
	}
	if want[PartSched] {
		if r.Sched, err = e.MeasureScheduling(ctx, placements); err != nil {
			return r, err
		}
	}
	if want[PartMemory] {
		if r.Memory, err = e.MeasureMemory(ctx); err != nil {
			return r, fmt.Errorf("memory: %w", err)
		}
		a := r.Memory.After
		e.Logf("memory: RSS %.0f MB (anon %.0f, file %.0f, peak %.0f), heap %.0f MiB; executor create p99 %s, admission p99 %s",
			float64(a.RSS)/1e6, float64(a.Anon)/1e6, float64(a.File)/1e6, float64(a.Peak)/1e6, a.HeapAlloc/(1<<20), r.Memory.CreateP99, r.Memory.AdmissionP99)
	}
	return r, nil
}

// loadProbe measures the machine's busy time and the run's own processes' (the control plane, the webhooks
// and this process) between two points.
type loadProbe struct {
	start        time.Time
	loadStart    float64
	machine, our time.Duration
	pids         []int
}

func startLoad(dir string) (*loadProbe, error) {
	procs, err := framework.Leftovers(dir)
	if err != nil {
		return nil, err
	}
	p := &loadProbe{start: time.Now(), pids: []int{os.Getpid()}}
	for pid := range procs {
		p.pids = append(p.pids, pid)
	}
	if p.loadStart, err = loadAverage(); err != nil {
		return nil, err
	}
	if p.machine, err = machineCPU(); err != nil {
		return nil, err
	}
	p.our = p.ourCPU()
	return p, nil
}

// ourCPU sums the CPU time of the run's processes (a process gone meanwhile counts nothing).
func (p *loadProbe) ourCPU() time.Duration {
	var sum time.Duration
	for _, pid := range p.pids {
		if c, err := processCPU(pid); err == nil {
			sum += c
		}
	}
	return sum
}

func (p *loadProbe) end() (MachineLoad, error) {
	m := MachineLoad{Cores: runtime.NumCPU(), LoadStart: p.loadStart, Elapsed: time.Since(p.start)}
	machine, err := machineCPU()
	if err != nil {
		return m, err
	}
	if m.LoadEnd, err = loadAverage(); err != nil {
		return m, err
	}
	m.Ours = p.ourCPU() - p.our
	m.Others = max(machine-p.machine-m.Ours, 0)
	return m, nil
}
