package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// apiServerProfileLength is how long the API server's CPU profile of a scheduling round runs (with
// SPARKPLACE_BENCH_PROFILE only); kube-scheduler's runs Scale.SchedProfile.
const apiServerProfileLength = 8 * time.Second

// cycleFunctions run kube-scheduler's scheduling cycles: ScheduleOne (one pod's cycle, on one goroutine) and
// the parallel workers its Filter, PreScore and Score steps fan out to (the framework's parallelizer uses
// client-go's workqueue.ParallelizeUntil). A CPU sample with one of them on its stack is scheduling work;
// binding (its own goroutine per pod), the informers, the event broadcaster and garbage collection are not.
var cycleFunctions = map[string]bool{
	"k8s.io/kubernetes/pkg/scheduler.(*Scheduler).ScheduleOne": true,
	"k8s.io/client-go/util/workqueue.ParallelizeUntil.func1":   true,
}

// cycleCPU is the CPU time a kube-scheduler CPU profile spent in scheduling cycles (cycleFunctions); false
// when the profile has no sample in them (another kube-scheduler version naming them otherwise).
func cycleCPU(p *profile.Profile) (time.Duration, bool) {
	cpu := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			cpu = i
		}
	}
	if cpu < 0 {
		return 0, false
	}
	var sum time.Duration
	found := false
	for _, s := range p.Sample {
		if inCycle(s) {
			sum += time.Duration(s.Value[cpu])
			found = true
		}
	}
	return sum, found
}

func inCycle(s *profile.Sample) bool {
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function != nil && cycleFunctions[line.Function.Name] {
				return true
			}
		}
	}
	return false
}

// roundProfiles are the CPU profiles taken over one scheduling round.
type roundProfiles struct {
	scheduler chan profileResult
	apiServer chan profileResult // nil unless e.profileDir is set
}

type profileResult struct {
	data []byte
	err  error
}

// startProfiles starts a CPU profile of kube-scheduler over the next Scale.SchedProfile and, with a
// profile directory (SPARKPLACE_BENCH_PROFILE), one of kube-apiserver over apiServerProfileLength. Call it
// once kube-scheduler runs (a paused one answers nothing).
func (e *Env) startProfiles(ctx context.Context) *roundProfiles {
	rp := &roundProfiles{scheduler: make(chan profileResult, 1)}
	go func() {
		b, err := e.schedulerProfile(ctx, e.Scale.SchedProfile)
		rp.scheduler <- profileResult{b, err}
	}()
	if e.profileDir != "" {
		rp.apiServer = make(chan profileResult, 1)
		go func() {
			b, err := e.CP.Client.Discovery().RESTClient().Get().AbsPath("/debug/pprof/profile").
				Param("seconds", strconv.Itoa(int(apiServerProfileLength/time.Second))).DoRaw(ctx)
			rp.apiServer <- profileResult{b, err}
		}()
	}
	return rp
}

// finishProfiles waits for the profiles, sets the round's cycle CPU from kube-scheduler's and, with a profile
// directory, writes both there as <name>-kube-scheduler.pprof and <name>-kube-apiserver.pprof (read them with
// `go tool pprof`).
func (e *Env) finishProfiles(rp *roundProfiles, r *SchedRound, name string) error {
	var errs []error
	save := func(process string, res profileResult) {
		if res.err == nil && e.profileDir != "" {
			file := strings.ReplaceAll(name, " ", "-") + "-" + process + ".pprof"
			res.err = os.WriteFile(filepath.Join(e.profileDir, file), res.data, 0o644)
		}
		if res.err != nil {
			errs = append(errs, fmt.Errorf("CPU profile of %s: %w", process, res.err))
		}
	}
	res := <-rp.scheduler
	save("kube-scheduler", res)
	if res.err == nil {
		p, err := profile.ParseData(res.data)
		if err != nil {
			errs = append(errs, fmt.Errorf("CPU profile of kube-scheduler: %w", err))
		} else if r.Wall+profileSlack < e.Scale.SchedProfile && r.Unbound == 0 {
			r.CycleCPU, r.HasCycleCPU = cycleCPU(p)
		}
	}
	if rp.apiServer != nil {
		save("kube-apiserver", <-rp.apiServer)
	}
	return errors.Join(errs...)
}

// profileSlack is the time a profile request takes to start after kube-scheduler's resumption, at most.
const profileSlack = time.Second

// schedulerProfile reads kube-scheduler's CPU profile over d (its secure port serves it as /metrics, see
// framework.Options.Profiling).
func (e *Env) schedulerProfile(ctx context.Context, d time.Duration) ([]byte, error) {
	url := e.CP.SchedulerProfileURL + "?seconds=" + strconv.Itoa(int(d/time.Second))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	client := *e.insecure
	client.Timeout = d + 30*time.Second
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %.200s", resp.Status, b)
	}
	return b, err
}
