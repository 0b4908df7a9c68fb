package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain serves a baseline webhook when the binary is started as one (see BaselineArg).
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == BaselineArg {
		if err := ServeBaseline(os.Args[2], os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	flag.Parse()
	if testing.Short() {
		fmt.Println("bench: skipped in -short mode")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestCluster runs the cluster benchmark: at SmallScale in CI, where it shows that every measurement works
// and asserts no figure, only what must hold at any speed (no refused create, the same-patch webhook's pods
// placed as sparkplace's, every executor running and bound). `make bench-cluster` runs it at FullScale and
// writes the report.
//
// Environment: SPARKPLACE_BENCH_SCALE (small, full), SPARKPLACE_BENCH_PARTS (comma-separated, of create,
// burst, sched, memory; default all), SPARKPLACE_BENCH_REPORT (directory for the report and chart; default a
// temporary one), SPARKPLACE_BENCH_README (a README whose report section to replace),
// SPARKPLACE_BENCH_SCHED_REPS (repetitions of the scheduling measurement, instead of the scale's),
// SPARKPLACE_BENCH_PROFILE (a directory for CPU profiles of kube-apiserver and kube-scheduler over each
// scheduling round). A run of some parts only writes neither the report directory nor the README: its
// report, in the log, would replace the other parts' sections.
func TestCluster(t *testing.T) {
	scale, err := ScaleNamed(os.Getenv("SPARKPLACE_BENCH_SCALE"))
	if err != nil {
		t.Fatal(err)
	}
	if reps := os.Getenv("SPARKPLACE_BENCH_SCHED_REPS"); reps != "" {
		if scale.SchedReps, err = strconv.Atoi(reps); err != nil || scale.SchedReps < 1 {
			t.Fatalf("SPARKPLACE_BENCH_SCHED_REPS=%q: want a positive number", reps)
		}
	}
	var parts []string
	if p := os.Getenv("SPARKPLACE_BENCH_PARTS"); p != "" {
		parts = strings.Split(p, ",")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), scale.Timeout)
	defer cancel()
	start := time.Now()
	env, err := Setup(ctx, Options{
		Scale: scale, BaselineCommand: []string{self, BaselineArg}, Logf: t.Logf, ProfileDir: os.Getenv("SPARKPLACE_BENCH_PROFILE"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("cluster ready in %s", time.Since(start).Round(time.Millisecond))
	report, runErr := Run(ctx, env, parts...)
	if report == nil {
		t.Fatal(runErr)
	}
	// What was measured before a failure is still reported.
	checkReport(t, report)

	dir, readme := os.Getenv("SPARKPLACE_BENCH_REPORT"), os.Getenv("SPARKPLACE_BENCH_README")
	command := "make bench-cluster"
	if scale.Name != FullScale.Name {
		command = "SCALE=" + scale.Name + " " + command
	}
	if partial(parts) {
		command = "PARTS=" + strings.Join(parts, ",") + " " + command
		// Its report would replace the whole report, the other parts' sections too.
		if dir != "" || readme != "" {
			t.Logf("a run of some parts (%s) leaves the report directory and the README as they are: its report is in this log", strings.Join(parts, ","))
		}
		dir, readme = "", ""
	}
	if dir == "" {
		dir = t.TempDir()
	}
	if err := report.Write(dir, command); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(dir, ChartFile)); err != nil || info.Size() == 0 {
		t.Errorf("no chart: %v", err)
	}
	if readme != "" {
		chart, err := filepath.Rel(filepath.Dir(readme), filepath.Join(dir, ChartFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := report.UpdateReadme(readme, command, filepath.ToSlash(chart)); err != nil {
			t.Fatal(err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, ReportFile))
	t.Logf("report in %s:\n%s", dir, md)
	if runErr != nil {
		t.Fatal(runErr)
	}
}

// partial reports whether parts (as SPARKPLACE_BENCH_PARTS lists them; none is all) leave a part out.
func partial(parts []string) bool {
	for _, p := range AllParts {
		if len(parts) > 0 && !slices.Contains(parts, p) {
			return true
		}
	}
	return false
}

// checkReport asserts what holds whatever the machine's speed.
func checkReport(t *testing.T, r *Report) {
	t.Helper()
	for _, c := range r.Creates {
		if c.Failed > 0 {
			t.Errorf("repetition %d, %s: %d creates failed, first: %v", c.Rep+1, c.Variant, c.Failed, c.FirstFailure)
		}
		all := len(c.Serial) + c.Created
		switch c.Variant {
		case Sparkplace, SamePatch:
			// The same-patch webhook's pods must come out as sparkplace's do, or it is not the floor.
			if c.Placed != all {
				t.Errorf("repetition %d, %s: %d of %d pods carry sparkplace's placement", c.Rep+1, c.Variant, c.Placed, all)
			}
		default:
			if c.Placed != 0 {
				t.Errorf("repetition %d, %s: %d pods placed without sparkplace", c.Rep+1, c.Variant, c.Placed)
			}
		}
	}
	for _, b := range r.Bursts {
		if b.Failures > 0 {
			t.Errorf("burst, %s mode: %d executor creates refused, first: %s", b.Mode, b.Failures, b.FirstFailure)
		}
		if want := b.Drivers * b.ExecutorsPerDriver; b.Executors != want {
			t.Errorf("burst, %s mode: %d executors, want %d", b.Mode, b.Executors, want)
		}
	}
	for _, rd := range r.Sched {
		if rd.Unbound > 0 {
			t.Errorf("scheduling repetition %d, %s: %d executors not bound within %s", rd.Rep+1, rd.Variant, rd.Unbound, bindingLimit)
		}
	}
	if m := r.Memory; m != nil && m.Failures > 0 {
		t.Errorf("memory: %d executor creates refused", m.Failures)
	}
}
