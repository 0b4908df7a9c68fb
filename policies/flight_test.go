package policies

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparkplace/sparkplace/placement"
)

// TestConcurrentMissesShareOneEvaluation: the first executors of applications that start together in one
// zone miss one key at the same time; they wait for the evaluation in flight instead of each making its own,
// get its decision, and count as hits. An evaluation error reaches every waiter; a waiter whose request ends
// stops waiting. The test leads the flight itself, so the waiters are known to wait.
func TestConcurrentMissesShareOneEvaluation(t *testing.T) {
	fromFlight := &placement.Decision{Rules: []string{"from-the-flight"}}
	cases := map[string]struct {
		err      error // the flight's outcome
		cancel   bool  // the waiters' requests end before it lands
		wantErr  error
		wantHits uint64
	}{
		"a decision":                    {wantHits: 4},
		"an evaluation error":           {err: errors.New("policy broke"), wantErr: errors.New("policy broke"), wantHits: 4},
		"the waiters' requests go away": {cancel: true, wantErr: context.Canceled},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v := newEngine(t, Options{}).Current()
			input := func(app int) *Input {
				in := makeInput("executor").profile("spot").driverZone("us-east-1a").obj()
				in.App.ID = fmt.Sprintf("spark-%032x", app)
				in.Pod.Labels["spark-app-selector"] = in.App.ID
				return in
			}
			key := keyOfInput(t, v, input(0))
			f, lead := v.flights.join(key)
			if !lead {
				t.Fatal("a new key's first caller does not lead its flight")
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type result struct {
				d   *placement.Decision
				err error
			}
			const waiters = 4
			results := make(chan result, waiters)
			for app := 1; app <= waiters; app++ {
				go func() {
					d, err := v.Decide(ctx, input(app))
					results <- result{d, err}
				}()
			}
			for joined := 0; joined < waiters; {
				select {
				case r := <-results:
					t.Fatalf("a caller returned (%v, %v) before the flight landed", r.d, r.err)
				default:
				}
				v.flights.mu.Lock()
				joined = f.waiters
				v.flights.mu.Unlock()
				runtime.Gosched()
			}
			if tc.cancel {
				cancel()
				for range waiters {
					if r := <-results; !errors.Is(r.err, context.Canceled) {
						t.Errorf("a waiter whose request ended got (%v, %v), want context.Canceled", r.d, r.err)
					}
				}
			}
			v.flights.land(key, f, fromFlight, tc.err)
			if !tc.cancel {
				for range waiters {
					r := <-results
					if tc.wantErr != nil {
						if r.err == nil || r.err.Error() != tc.wantErr.Error() {
							t.Errorf("waiter got error %v, want %v", r.err, tc.wantErr)
						}
						continue
					}
					if r.err != nil {
						t.Fatal(r.err)
					}
					if diff := cmp.Diff(fromFlight, r.d); diff != "" {
						t.Errorf("waiter's decision is not the flight's (-want +got):\n%s", diff)
					}
				}
			}
			if st := v.cache.counters; st.hits.Load() != tc.wantHits || st.misses.Load() != waiters-tc.wantHits {
				t.Errorf("%d hits, %d misses; want %d and %d (a waiter that got the decision evaluated nothing)", st.hits.Load(), st.misses.Load(), tc.wantHits, waiters-tc.wantHits)
			}
			// The flight is over: the next miss of the key evaluates afresh.
			if _, lead := v.flights.join(key); !lead {
				t.Error("the key's flight is still open after it landed")
			}
		})
	}
}
