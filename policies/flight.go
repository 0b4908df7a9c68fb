package policies

import (
	"context"
	"fmt"
	"sync"

	"github.com/sparkplace/sparkplace/placement"
)

// Applications that start together (a burst of drivers, each allocating its executors at once) send their
// first executors within milliseconds; in one zone and of one shape they share a decision, and before it is
// cached each would miss and evaluate it. A flight makes the callers that miss one key at the same time wait
// for one evaluation. (golang.org/x/sync/singleflight does the same, but does not say how many wait, which
// the test needs to run a flight deterministically.)

// flights are the evaluations in progress, by key.
type flights struct {
	mu sync.Mutex
	m  map[decisionKey]*flight
}

// flight is one evaluation in progress; d and err are set before done is closed.
type flight struct {
	done    chan struct{}
	d       *placement.Decision
	err     error
	waiters int // callers waiting for it besides the one evaluating
}

// join returns the flight of key, and whether the caller leads it: then it evaluates and lands it.
func (fs *flights) join(key decisionKey) (*flight, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[key]; f != nil {
		f.waiters++
		return f, false
	}
	if fs.m == nil {
		fs.m = map[decisionKey]*flight{}
	}
	f := &flight{done: make(chan struct{})}
	fs.m[key] = f
	return f, true
}

// land ends f, the flight of key, with its outcome; a later miss of key starts a new one.
func (fs *flights) land(key decisionKey, f *flight, d *placement.Decision, err error) {
	f.d, f.err = d, err
	fs.mu.Lock()
	delete(fs.m, key)
	fs.mu.Unlock()
	close(f.done)
}

// evalOnce returns the decision for in, whose key the cache missed: one evaluation for all
// the callers that miss key at the same time. The one that evaluates is the miss; the others, which the
// cache counted as misses, count as hits, since they evaluate nothing (misses count evaluations), and each
// waits only as long as its own ctx allows. The evaluation is not stopped when the caller that leads it goes
// away (others may be waiting; the policy timeout bounds it). With the cache disabled every caller evaluates.
func (v *Version) evalOnce(ctx context.Context, key decisionKey, in *Input) (*placement.Decision, error) {
	if v.cache.lru == nil {
		return v.evalInput(ctx, in)
	}
	f, lead := v.flights.join(key)
	if lead {
		landed := false
		defer func() {
			// A panic in the evaluation must not leave the key's flight open: every later miss would wait on it.
			if !landed {
				v.flights.land(key, f, nil, fmt.Errorf("evaluating %s: the evaluation for another pod panicked", Query))
			}
		}()
		d, err := v.evalInput(context.WithoutCancel(ctx), in)
		if err == nil {
			v.cache.add(key, d)
		}
		v.flights.land(key, f, d, err)
		landed = true
		return d, err
	}
	select {
	case <-f.done:
		v.cache.counters.misses.Add(^uint64(0)) // minus the miss the lookup counted
		v.cache.counters.hits.Add(1)
		return f.d, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("evaluating %s: waiting for the evaluation of the same input for another pod: %w", Query, ctx.Err())
	}
}

// evalInput evaluates the policy for in.
func (v *Version) evalInput(ctx context.Context, in *Input) (*placement.Decision, error) {
	return v.eval(ctx, in, v.timeout)
}
