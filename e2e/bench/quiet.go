package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/sparkplace/sparkplace/e2e/framework"
)

// quietWindow is how long the control plane's CPU is sampled at a time; quietLimit bounds a wait for it to
// settle (a busy machine may never let it: the phase is measured all the same, and the report says so).
const (
	quietWindow = time.Second
	quietLimit  = time.Minute
)

// Quiet is one wait for the control plane to settle before a measured phase.
type Quiet struct {
	// Part is the measurement the phase belongs to (PartCreate, PartSched).
	Part string
	// Waited is how long it took; Busy the control plane's CPU (cores) in the last window sampled;
	// TimedOut that it did not settle within quietLimit.
	Waited   time.Duration
	Busy     float64
	TimedOut bool
}

// controlPlaneBusy is the CPU (cores) the run's child processes (the control plane, kwok, the webhooks) use
// over one quietWindow.
func (e *Env) controlPlaneBusy(ctx context.Context) (float64, error) {
	procs, err := framework.Leftovers(e.CP.Dir)
	if err != nil {
		return 0, err
	}
	cpu := func() time.Duration {
		var sum time.Duration
		for pid := range procs {
			if c, err := processCPU(pid); err == nil { // a process gone meanwhile counts nothing
				sum += c
			}
		}
		return sum
	}
	before, start := cpu(), time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(quietWindow):
	}
	return coresOf(cpu()-before, time.Since(start)), nil
}

// measureIdle records the control plane's CPU at rest: the least of three windows, right after setup.
func (e *Env) measureIdle(ctx context.Context) error {
	e.idle = -1
	for range 3 {
		busy, err := e.controlPlaneBusy(ctx)
		if err != nil {
			return fmt.Errorf("idle control plane: %w", err)
		}
		if e.idle < 0 || busy < e.idle {
			e.idle = busy
		}
	}
	e.Logf("control plane at rest: %.3f cores", e.idle)
	return nil
}

// quietThreshold is the CPU (cores) under which the control plane counts as settled: twice its rest, and at
// least 0.05 cores above it (a /proc tick is 10 ms, 0.01 cores over a second).
func (e *Env) quietThreshold() float64 { return max(2*e.idle, e.idle+0.05) }

// settle waits until the control plane is back at rest (its CPU over a window under quietThreshold), so that a
// phase does not measure what the previous one left behind (its deletions reaching the watchers, the
// controllers' work on them), and records the wait under part. Every phase of every variant gets the same.
func (e *Env) settle(ctx context.Context, part string) error {
	start := time.Now()
	q := Quiet{Part: part}
	for {
		busy, err := e.controlPlaneBusy(ctx)
		if err != nil {
			return err
		}
		q.Busy = busy
		if busy <= e.quietThreshold() {
			break
		}
		if time.Since(start) >= quietLimit {
			q.TimedOut = true
			break
		}
	}
	q.Waited = time.Since(start)
	e.quiets = append(e.quiets, q)
	return nil
}
