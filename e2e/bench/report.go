package bench

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Report files, written into the report directory.
const (
	ReportFile = "cluster.md"
	ChartFile  = "latency.png"
)

// README markers between which UpdateReadme puts the report.
const (
	ReadmeBegin = "<!-- bench-cluster report: begin (written by `make bench-cluster`) -->"
	ReadmeEnd   = "<!-- bench-cluster report: end -->"
)

// Write writes the Markdown report and the chart into dir.
func (r *Report) Write(dir, command string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report directory: %w", err)
	}
	if err := writeChart(filepath.Join(dir, ChartFile), r.serialSeries(), r.loadedSeries()); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ReportFile), []byte(r.Markdown(command, ChartFile)), 0o644)
}

// UpdateReadme replaces what stands between ReadmeBegin and ReadmeEnd in the README at path with the report,
// its chart linked at chartPath (relative to the README).
func (r *Report) UpdateReadme(path, command, chartPath string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	begin, end := bytes.Index(b, []byte(ReadmeBegin)), bytes.Index(b, []byte(ReadmeEnd))
	if begin < 0 || end < begin {
		return fmt.Errorf("%s: no %q … %q section", path, ReadmeBegin, ReadmeEnd)
	}
	var out bytes.Buffer
	out.Write(b[:begin+len(ReadmeBegin)])
	out.WriteString("\n")
	// The README's own headings are one level deeper than the report's.
	out.WriteString(strings.ReplaceAll(r.Markdown(command, chartPath), "\n## ", "\n#### "))
	out.Write(b[end:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}

func (r *Report) serialSeries() []series {
	var out []series
	for _, v := range Variants {
		s := series{name: string(v), key: string(v)}
		for _, c := range r.Creates {
			if c.Variant == v {
				s.latencies = append(s.latencies, c.Serial...)
			}
		}
		out = append(out, s)
	}
	return out
}

func (r *Report) loadedSeries() []series {
	var out []series
	for _, v := range Variants {
		s := series{name: fmt.Sprintf("%s, %d clients", v, r.Scale.Clients), key: string(v)}
		for _, c := range r.Creates {
			if c.Variant == v {
				s.latencies = append(s.latencies, c.Parallel...)
			}
		}
		out = append(out, s)
	}
	for _, b := range r.Bursts {
		out = append(out, series{name: fmt.Sprintf("sparkplace, Spark burst, %s mode", b.Mode), key: "burst-" + string(b.Mode), latencies: b.Latencies})
	}
	return out
}

// Markdown renders the report; chart is the path of the chart relative to where the Markdown is shown.
func (r *Report) Markdown(command, chart string) string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Measured %s on the local control plane (`%s`, scale %q, %s). Machine: %d cores; load average %.1f at the start, %.1f at the end; "+
		"other processes used %.2f cores on average during the run (%.0f%% of the machine), the run itself %.2f.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 UTC"), command, r.Scale.Name, r.Wall.Round(time.Second), m.Cores, m.LoadStart, m.LoadEnd,
		coresOf(m.Others, m.Elapsed), 100*coresOf(m.Others, m.Elapsed)/float64(max(m.Cores, 1)), coresOf(m.Ours, m.Elapsed))
	if len(r.Creates) > 0 {
		r.createSection(&b)
	}
	if len(r.Bursts) > 0 {
		r.burstSection(&b)
	}
	if len(r.Sched) > 0 {
		r.schedSection(&b)
	}
	if r.Memory != nil {
		r.memorySection(&b)
	}
	if len(r.Creates) > 0 {
		fmt.Fprintf(&b, "![Cumulative distributions of pod create latency by webhook](%s)\n", chart)
	}
	return b.String()
}

func coresOf(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return cpu.Seconds() / wall.Seconds()
}

// spreadCell formats min–median–max (or the one value).
func spreadCell(s Spread, format string) string {
	if s.N == 0 {
		return "—"
	}
	if s.N == 1 || s.Min == s.Max {
		return fmt.Sprintf(format, s.Median)
	}
	return fmt.Sprintf(format+" – "+format+" – "+format, s.Min, s.Median, s.Max)
}

func (r *Report) createSection(b *strings.Builder) {
	s := r.Scale
	fmt.Fprintf(b, "## Executor creates through the API server\n\n"+
		"%d repetitions; in each, every variant gets a fresh namespace with a running driver, then makes %d creates one at a time, "+
		"the variants taking turns create by create, then %d by %d clients at once in %d blocks, the variants taking turns block by block "+
		"(so that a change in the machine's load hits them alike; order rotated per round and per repetition; each block once the "+
		"control plane is back at rest). Creates/s is a variant's parallel creates over its blocks' summed time; CPU per create is over "+
		"its blocks too. Spark executor pods as a running driver creates them "+
		"(never scheduled, so only the create is measured). Cells: min – median – max over the repetitions. "+
		"*same-patch* returns, precomputed, the very patch sparkplace returns for each pod: the API server does the same work, the webhook none. "+
		"The webhook call is the API server's own timing of it (`apiserver_admission_webhook_admission_duration_seconds`: sending the review, "+
		"the webhook, reading the answer); the server mean is controller-runtime's (`controller_runtime_webhook_latency_seconds`: decoding "+
		"the review, the handler, encoding the answer), the handler mean sparkplace's own. sparkplace's CPU is that of its process during "+
		"each variant's blocks: its informer takes in every Spark pod, the baselines' too.\n\n",
		s.Reps, s.Serial, s.Parallel, s.Clients, s.Blocks)
	b.WriteString("| measurement |")
	for _, v := range Variants {
		fmt.Fprintf(b, " %s |", v)
	}
	b.WriteString("\n|---|")
	for range Variants {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	row := func(name, format string, f func(*CreateRound) (float64, bool)) {
		spreadRow(b, name, format, Variants, r.Creates, func(c *CreateRound) Variant { return c.Variant }, f)
	}
	row("serial create p50, ms", "%.1f", func(c *CreateRound) (float64, bool) { return ms(percentile(c.Serial, .5)), len(c.Serial) > 0 })
	row("serial create p99, ms", "%.1f", func(c *CreateRound) (float64, bool) { return ms(percentile(c.Serial, .99)), len(c.Serial) > 0 })
	row("serial: webhook call mean (API server), ms", "%.2f", func(c *CreateRound) (float64, bool) {
		return ms(c.SerialCall), c.SerialCall > 0
	})
	row("serial: webhook server mean (controller-runtime), ms", "%.2f", func(c *CreateRound) (float64, bool) {
		return ms(c.SerialServer), c.SerialServer > 0
	})
	row("serial: sparkplace handler mean (its histogram), ms", "%.2f", func(c *CreateRound) (float64, bool) {
		return ms(c.SerialHandler), c.SerialHandler > 0
	})
	row(fmt.Sprintf("creates/s, %d clients", s.Clients), "%.0f", func(c *CreateRound) (float64, bool) { return c.CreatesPerSecond(), c.Created > 0 })
	row("kube-apiserver CPU per create, ms", "%.2f", func(c *CreateRound) (float64, bool) {
		return ms(c.APIServerCPU) / float64(c.Created), c.Created > 0
	})
	row("webhook CPU per create, ms", "%.2f", func(c *CreateRound) (float64, bool) {
		return ms(c.WebhookCPU) / float64(c.Created), c.Created > 0 && c.Variant != NoWebhook
	})
	row("sparkplace CPU per create (its process, during these creates), ms", "%.2f", func(c *CreateRound) (float64, bool) {
		return ms(c.SparkplaceCPU) / float64(c.Created), c.Created > 0
	})
	row("other processes on the machine (during these creates), cores", "%.2f", func(c *CreateRound) (float64, bool) {
		return c.Others, c.Created > 0
	})
	row(fmt.Sprintf("%d clients: webhook call mean (API server), ms", s.Clients), "%.2f", func(c *CreateRound) (float64, bool) {
		return ms(c.ParallelCall), c.ParallelCall > 0
	})
	row(fmt.Sprintf("%d clients: webhook server mean (controller-runtime), ms", s.Clients), "%.2f", func(c *CreateRound) (float64, bool) {
		return ms(c.ServerMean), c.ServerMean > 0
	})
	row(fmt.Sprintf("%d clients: sparkplace handler mean (its histogram), ms", s.Clients), "%.2f", func(c *CreateRound) (float64, bool) {
		return ms(c.HandlerMean), c.HandlerMean > 0
	})
	row("failed creates", "%.0f", func(c *CreateRound) (float64, bool) { return float64(c.Failed), true })
	row("pods placed by sparkplace's patch", "%.0f", func(c *CreateRound) (float64, bool) { return float64(c.Placed), true })
	b.WriteString("\n")
	r.quietSentence(b, PartCreate, "measured phase (the serial creates, each block of parallel creates)")
	b.WriteString("Ratios within each repetition (min – median – max), and over the whole run (a variant's parallel creates over all its blocks' time; " +
		"the p50 of all its serial creates):\n\n| ratio | within each repetition | over the whole run | target |\n|---|---|---|---|\n")
	ratio := func(name, target string, num, den Variant, f func(...*CreateRound) float64) {
		var xs []float64
		var as, cs []*CreateRound
		for rep := range s.Reps {
			a, c := r.round(rep, num), r.round(rep, den)
			if a != nil && c != nil && f(c) > 0 {
				xs = append(xs, f(a)/f(c))
				as, cs = append(as, a), append(cs, c)
			}
		}
		whole := "—"
		if len(as) > 0 {
			whole = fmt.Sprintf("%.2f", f(as...)/f(cs...))
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", name, spreadCell(spreadOf(xs), "%.2f"), whole, target)
	}
	p50 := func(cs ...*CreateRound) float64 {
		var serial []time.Duration
		for _, c := range cs {
			serial = append(serial, c.Serial...)
		}
		return ms(percentile(serial, .5))
	}
	ratio("creates/s, sparkplace / same-patch", "≥ 0.95", Sparkplace, SamePatch, createsPerSecond)
	ratio("serial p50, sparkplace / same-patch", "≤ 1.05", Sparkplace, SamePatch, p50)
	ratio("creates/s, sparkplace / no-op", "", Sparkplace, NoOp, createsPerSecond)
	ratio("serial p50, sparkplace / no-op", "", Sparkplace, NoOp, p50)
	ratio("creates/s, same-patch / no webhook", "", SamePatch, NoWebhook, createsPerSecond)
	b.WriteString("\n")
}

// spreadRow writes a table row: its name, then for each variant the spread of what f returns for the rounds
// of that variant (rounds for which f returns false do not count).
func spreadRow[R any, V comparable](b *strings.Builder, name, format string, variants []V, rounds []R, variant func(*R) V, f func(*R) (float64, bool)) {
	fmt.Fprintf(b, "| %s |", name)
	for _, v := range variants {
		var xs []float64
		for i := range rounds {
			if rd := &rounds[i]; variant(rd) == v {
				if x, ok := f(rd); ok {
					xs = append(xs, x)
				}
			}
		}
		fmt.Fprintf(b, " %s |", spreadCell(spreadOf(xs), format))
	}
	b.WriteString("\n")
}

func (r *Report) round(rep int, v Variant) *CreateRound {
	return find(r.Creates, func(c *CreateRound) bool { return c.Rep == rep && c.Variant == v })
}

// find returns the first element of xs that match accepts, or nil.
func find[T any](xs []T, match func(*T) bool) *T {
	for i := range xs {
		if match(&xs[i]) {
			return &xs[i]
		}
	}
	return nil
}

func (r *Report) burstSection(b *strings.Builder) {
	first := r.Bursts[0]
	fmt.Fprintf(b, "## Spark-shaped burst\n\n"+
		"%d applications, each allocating %d executors at once as Spark's ExecutorPodsAllocator does "+
		"(e2e/sparksim: one create at a time, in batches, a batch after the previous one was seen), through sparkplace. "+
		"*Cluster mode*: each has a running driver pod, the drivers round-robin over the zones; the executors are "+
		"owned by their driver and share its local dirs. *Client mode* (notebooks, spark-shell), the other namespace, "+
		"after it: no driver pod, executors with no owner, each with a fresh local dir; their application's zone is "+
		"the one most of its executors run in (100%% means each application kept to one zone).\n\n",
		first.Drivers, first.ExecutorsPerDriver)
	b.WriteString("| mode | failed creates | create p50 | create p99 | all created | all running | in their application's zone (cluster mode: the driver's) | on spot | decision cache hits | sparkplace admission mean / p99 |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, br := range r.Bursts {
		cache := "not exported"
		if br.CacheLookups >= 0 {
			cache = fmt.Sprintf("%.0f of %.0f (%s)", br.CacheHits, br.CacheLookups, pct(br.CacheHits, br.CacheLookups))
		}
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %d of %d (%s) | %d of %d (%s) | %s | %s / %s |\n",
			br.Mode, br.Failures, roundMS(percentile(br.Latencies, .5)), roundMS(percentile(br.Latencies, .99)),
			br.Created.Round(100*time.Millisecond), br.Running.Round(100*time.Millisecond),
			br.InAppZone, br.Executors, pct(float64(br.InAppZone), float64(br.Executors)),
			br.OnSpot, br.Executors, pct(float64(br.OnSpot), float64(br.Executors)), cache,
			roundMS(br.AdmissionMean), roundMS(br.AdmissionP99))
	}
	b.WriteString("\n")
}

func (r *Report) schedSection(b *strings.Builder) {
	s := r.Scale
	fmt.Fprintf(b, "## Scheduling\n\n"+
		"%d repetitions, interleaved, after one round not counted (the first round of a run is the slowest; it warms kube-scheduler, "+
		"the API server and kwok up for all): %d running drivers with %d executors each, the executors created while kube-scheduler is "+
		"paused (SIGSTOP); the rate is executors bound per second from its resumption to the last binding (kube-scheduler's client "+
		"is not rate limited here, 5,000 QPS: at 200, the limit on its bindings and Events set the rate whatever the placement). "+
		"The executors carry sparkplace's placement as admitted in the burst; *no zone rule* drops its zone requirement; "+
		"*EMR pod affinity* replaces it with EMR on EKS's recipe (a required pod affinity to the driver, topology key zone). "+
		"In each repetition sparkplace node affinity and no zone rule run back to back, each first in every other repetition, "+
		"EMR pod affinity before or after the pair. CPU is each process's, from /proc, from kube-scheduler's resumption to the last "+
		"binding; *all the run's processes* adds etcd, the controller-manager and the webhooks. kube-scheduler's CPU in scheduling cycles "+
		"is what it spends placing the pods (ScheduleOne and its parallel Filter and Score workers, without binding, informers and "+
		"garbage collection), from a CPU profile of it over the round: the figure the zone rule's cost shows in, with the least noise "+
		"from the machine's other work.\n\n",
		s.SchedReps, s.SchedDrivers, s.SchedExecutors)
	b.WriteString("| measurement |")
	for _, v := range SchedVariants {
		fmt.Fprintf(b, " %s |", v)
	}
	b.WriteString("\n|---|---|---|---|\n")
	row := func(name, format string, f func(*SchedRound) (float64, bool)) {
		spreadRow(b, name, format, SchedVariants, r.Sched, func(rd *SchedRound) SchedVariant { return rd.Variant }, f)
	}
	row("executors bound per second", "%.0f", func(rd *SchedRound) (float64, bool) { return rd.PodsPerSecond(), true })
	row(fmt.Sprintf("executors not bound within %s", bindingLimit), "%.0f", func(rd *SchedRound) (float64, bool) { return float64(rd.Unbound), true })
	row("kube-scheduler CPU per executor, ms", "%.2f", func(rd *SchedRound) (float64, bool) {
		return ms(rd.SchedulerCPU) / float64(rd.Pods), rd.SchedulerCPU > 0
	})
	row("kube-scheduler CPU in scheduling cycles per executor (CPU profile), ms", "%.2f", func(rd *SchedRound) (float64, bool) {
		return ms(rd.CycleCPU) / float64(rd.Pods), rd.HasCycleCPU
	})
	row("kube-apiserver CPU per executor, ms", "%.2f", func(rd *SchedRound) (float64, bool) {
		return ms(rd.APIServerCPU) / float64(rd.Pods), rd.APIServerCPU > 0
	})
	cpuRow := func(name string, cpu func(*SchedRound) time.Duration) {
		row(name+" CPU per executor, ms", "%.2f", func(rd *SchedRound) (float64, bool) {
			return ms(cpu(rd)) / float64(rd.Pods), cpu(rd) > 0
		})
	}
	cpuRow("kwok", func(rd *SchedRound) time.Duration { return rd.CPU["kwok"] })
	cpuRow("sparkplace webhook (its informers)", func(rd *SchedRound) time.Duration { return rd.WebhookCPU })
	cpuRow("all the run's processes", (*SchedRound).TotalCPU)
	row("API server requests during the round, per executor", "%.2f", func(rd *SchedRound) (float64, bool) {
		return rd.Requests / float64(rd.Pods), rd.Requests > 0
	})
	row("of them pod status writes (kwok marking executors running), per executor", "%.2f", func(rd *SchedRound) (float64, bool) {
		return rd.StatusWrites / float64(rd.Pods), rd.Requests > 0
	})
	row("API server: binding mean (POST pods/binding), ms", "%.0f", func(rd *SchedRound) (float64, bool) {
		return ms(rd.BindingCall), rd.BindingCall > 0
	})
	row("other processes on the machine, cores", "%.2f", func(rd *SchedRound) (float64, bool) { return rd.Others, true })
	row("scheduling attempts per executor", "%.2f", func(rd *SchedRound) (float64, bool) {
		return rd.Scheduler.Attempts / float64(rd.Pods), rd.Scheduler.Attempts > 0
	})
	for _, point := range schedulerPoints {
		row(point+", mean per cycle, ms", "%.3f", func(rd *SchedRound) (float64, bool) {
			x, ok := rd.Scheduler.Points[point]
			return x * 1e3, ok && x > 0
		})
	}
	b.WriteString("| in the driver's zone |")
	for _, v := range SchedVariants {
		in, all := 0, 0
		for _, rd := range r.Sched {
			if rd.Variant == v {
				in, all = in+rd.InDriverZone, all+rd.Pods
			}
		}
		fmt.Fprintf(b, " %s |", pct(float64(in), float64(all)))
	}
	b.WriteString("\n")
	for _, plugin := range r.topPlugins(6) {
		row("plugin "+plugin+", share of plugin time", "%.0f%%", func(rd *SchedRound) (float64, bool) {
			return 100 * rd.Scheduler.Plugins[plugin] / max(sumOf(rd.Scheduler.Plugins), 1e-12), len(rd.Scheduler.Plugins) > 0
		})
	}
	var xs, ys, cs, ts, ccs []float64
	var nodes, nones []*SchedRound // the pairs
	faster := 0                    // pairs in which the pinned executors bound faster
	for rep := range s.SchedReps {
		node, none, pod := r.schedRound(rep, SchedNodeAffinity), r.schedRound(rep, SchedNoZone), r.schedRound(rep, SchedPodAffinity)
		if node != nil && none != nil {
			xs = append(xs, node.PodsPerSecond()/none.PodsPerSecond())
			nodes, nones = append(nodes, node), append(nones, none)
			if node.PodsPerSecond() > none.PodsPerSecond() {
				faster++
			}
			if none.SchedulerCPU > 0 {
				cs = append(cs, float64(node.SchedulerCPU)/float64(none.SchedulerCPU))
			}
			if none.TotalCPU() > 0 {
				ts = append(ts, float64(node.TotalCPU())/float64(none.TotalCPU()))
			}
			if node.HasCycleCPU && none.HasCycleCPU && none.CycleCPU > 0 {
				ccs = append(ccs, float64(node.CycleCPU)/float64(none.CycleCPU))
			}
		}
		if pod != nil && none != nil {
			ys = append(ys, pod.PodsPerSecond()/none.PodsPerSecond())
		}
	}
	whole := "—"
	if len(nodes) > 0 {
		whole = fmt.Sprintf("%.2f", podsPerSecond(nodes...)/podsPerSecond(nones...))
	}
	fmt.Fprintf(b, "\nExecutors per second, sparkplace node affinity / no zone rule (target ≥ 0.95): %s within each repetition, "+
		"%s over the whole run (each variant's executors over its rounds' summed time); the pinned executors bound faster in %d of %d repetitions. "+
		"Within each repetition: EMR pod affinity / no zone rule %s; CPU, sparkplace node affinity / no zone rule: kube-scheduler's in scheduling cycles %s, "+
		"kube-scheduler's %s, all the run's processes' %s. "+
		"Extension points and plugin shares are kube-scheduler's own metrics: PreFilter to Score are its placement work "+
		"for one pod; Bind runs apart, one API call per pod, and its mean is mostly the wait for the API server; plugin shares "+
		"are of the scheduling cycle (not binding), from the cycles it samples.\n\n",
		spreadCell(spreadOf(xs), "%.2f"), whole, faster, len(xs), spreadCell(spreadOf(ys), "%.2f"), spreadCell(spreadOf(ccs), "%.2f"), spreadCell(spreadOf(cs), "%.2f"),
		spreadCell(spreadOf(ts), "%.2f"))
	r.quietSentence(b, PartSched, "round (before kube-scheduler resumed)")
}

// quietSentence says how long the phases of part waited for the control plane to settle.
func (r *Report) quietSentence(b *strings.Builder, part, phase string) {
	var waits []float64
	timedOut := 0
	for _, q := range r.Quiets {
		if q.Part == part {
			waits = append(waits, q.Waited.Seconds())
			if q.TimedOut {
				timedOut++
			}
		}
	}
	if len(waits) == 0 {
		return
	}
	fmt.Fprintf(b, "Before each %s the run waited until the control plane, kwok and the webhooks were back at rest (their CPU over a second "+
		"at most twice, and at most 0.05 cores above, the %.2f cores measured at rest after setup): waits of %s s",
		phase, r.Idle, spreadCell(spreadOf(waits), "%.1f"))
	if timedOut > 0 {
		fmt.Fprintf(b, "; %d of %d did not settle within %s and were measured all the same", timedOut, len(waits), quietLimit)
	}
	b.WriteString(".\n\n")
}

// topPlugins names the n plugins with the most time in the scheduling rounds, summed over the rounds.
func (r *Report) topPlugins(n int) []string {
	total := map[string]float64{}
	for _, rd := range r.Sched {
		for p, v := range rd.Scheduler.Plugins {
			total[p] += v
		}
	}
	names := slices.Collect(maps.Keys(total))
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(total[b], total[a]) })
	return names[:min(n, len(names))]
}

func sumOf(m map[string]float64) float64 {
	s := 0.0
	for _, v := range m {
		s += v
	}
	return s
}

func (r *Report) schedRound(rep int, v SchedVariant) *SchedRound {
	return find(r.Sched, func(rd *SchedRound) bool { return rd.Rep == rep && rd.Variant == v })
}

func (r *Report) memorySection(b *strings.Builder) {
	m := r.Memory
	fmt.Fprintf(b, "## Memory at scale\n\n"+
		"The cluster grown by %d nodes (not run by kwok, and cordoned: they stay NotReady and take no pods, which changes nothing the webhook caches) and %d "+
		"other pods (never scheduled), then %d Spark pods (%d drivers allocating executors as Spark does) created through sparkplace.\n\n",
		m.Nodes, m.OtherPods, m.SparkPods, r.Scale.MemDrivers)
	settings := "Go runtime defaults"
	if len(m.GoEnv) > 0 {
		settings = strings.Join(m.GoEnv, " ") + " (from manifests/base/deployment.yaml)"
	}
	limit := "none"
	if m.GOMEMLIMIT > 0 && m.GOMEMLIMIT < 1<<62 {
		limit = fmt.Sprintf("%.0f MiB", m.GOMEMLIMIT/(1<<20))
	}
	fmt.Fprintf(b, "The webhook runs with %s: it reports GOGC %.0f, memory limit %s. RSS is VmRSS of /proc: its anonymous part "+
		"(Go heap, stacks, runtime) and its file-backed part (the pages of the executable it touched); peak is VmHWM.\n\n", settings, m.GOGC, limit)
	b.WriteString("| | webhook RSS | anonymous | file-backed | peak RSS | Go heap allocated | next GC at |\n|---|---|---|---|---|---|---|\n")
	for _, row := range []struct {
		name string
		s    MemorySample
	}{{"before", m.Before}, {fmt.Sprintf("at %d nodes, %d other pods, %d Spark pods", m.Nodes, m.OtherPods, m.SparkPods), m.After}} {
		fmt.Fprintf(b, "| %s | **%.0f MB** | %.0f MB | %.0f MB | %.0f MB | %.1f MiB | %.1f MiB |\n", row.name,
			float64(row.s.RSS)/1e6, float64(row.s.Anon)/1e6, float64(row.s.File)/1e6, float64(row.s.Peak)/1e6, row.s.HeapAlloc/(1<<20), row.s.NextGC/(1<<20))
	}
	b.WriteString("\n| executor create p50 / p99 | sparkplace admission mean / p99 | failed creates |\n|---|---|---|\n")
	fmt.Fprintf(b, "| %s / %s | %s / %s | %d |\n\n",
		roundMS(m.CreateP50), roundMS(m.CreateP99), roundMS(m.AdmissionMean), roundMS(m.AdmissionP99), m.Failures)
}

func pct(n, of float64) string {
	if of <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", 100*n/of)
}

func roundMS(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", ms(d))
	default:
		return fmt.Sprintf("%.0f ms", ms(d))
	}
}
