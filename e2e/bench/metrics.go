package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of sparkplace's /metrics.
type Metrics map[string]*dto.MetricFamily

// scrapeSparkplace reads sparkplace's metrics.
func (e *Env) scrapeSparkplace(ctx context.Context) (Metrics, error) {
	return e.scrapeWebhook(ctx, Sparkplace)
}

// scrapeWebhook reads the metrics of variant v's webhook (sparkplace's, or controller-runtime's of a baseline).
func (e *Env) scrapeWebhook(ctx context.Context, v Variant) (Metrics, error) {
	w := e.Sparkplace
	if v != Sparkplace {
		w = e.Baselines[v]
	}
	text, err := w.Metrics(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s webhook: %w", v, err)
	}
	return parseMetrics(string(v), text)
}

// scrapeAPIServer reads kube-apiserver's metrics.
func (e *Env) scrapeAPIServer(ctx context.Context) (Metrics, error) {
	b, err := e.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver metrics: %w", err)
	}
	return parseMetrics("kube-apiserver", string(b))
}

// scrapeScheduler reads kube-scheduler's metrics (its plugin and extension-point timings).
func (e *Env) scrapeScheduler(ctx context.Context) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.CP.SchedulerMetricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.insecure.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kube-scheduler metrics: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("kube-scheduler metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("kube-scheduler metrics: %s: %.200s", resp.Status, b)
	}
	return parseMetrics("kube-scheduler", string(b))
}

func parseMetrics(source, text string) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("parse %s metrics: %w", source, err)
	}
	return families, nil
}

// matches reports whether m carries every label of want.
func matches(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// Value sums the counters or gauges of family name that carry labels; ok is false when there is no such family.
func (ms Metrics) Value(name string, labels map[string]string) (v float64, ok bool) {
	f := ms[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		if !matches(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Untyped != nil:
			v += m.GetUntyped().GetValue()
		}
	}
	return v, true
}

// counterDelta is how much the counters of family name that carry labels grew between two scrapes.
func counterDelta(before, after Metrics, name string, labels map[string]string) float64 {
	b, _ := before.Value(name, labels)
	a, _ := after.Value(name, labels)
	return a - b
}

// histogram is the cumulative bucket counts of one histogram, by upper bound.
type histogram map[float64]float64

func (ms Metrics) histogram(name string, labels map[string]string) histogram {
	h := histogram{}
	f := ms[name]
	if f == nil {
		return h
	}
	for _, m := range f.GetMetric() {
		if !matches(m, labels) || m.Histogram == nil {
			continue
		}
		// The text format lists the +Inf bucket; the count stands in for it where it is missing.
		inf := false
		for _, b := range m.GetHistogram().GetBucket() {
			h[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			inf = inf || math.IsInf(b.GetUpperBound(), 1)
		}
		if !inf {
			h[math.Inf(1)] += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return h
}

// HistogramQuantile estimates the q-quantile (seconds) of the observations of a histogram made between two
// scrapes, interpolating linearly within a bucket as Prometheus's histogram_quantile does; the count of those
// observations is returned too.
func HistogramQuantile(before, after Metrics, name string, labels map[string]string, q float64) (seconds float64, count float64) {
	b, a := before.histogram(name, labels), after.histogram(name, labels)
	bounds := make([]float64, 0, len(a))
	for ub := range a {
		bounds = append(bounds, ub)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return 0, 0
	}
	total := a[math.Inf(1)] - b[math.Inf(1)]
	if total <= 0 {
		return 0, 0
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for _, ub := range bounds {
		c := a[ub] - b[ub]
		if c >= rank {
			if math.IsInf(ub, 1) {
				return prevBound, total
			}
			if c == prevCount {
				return ub, total
			}
			return prevBound + (ub-prevBound)*(rank-prevCount)/(c-prevCount), total
		}
		prevBound, prevCount = ub, c
	}
	return prevBound, total
}

// HistogramMean is the mean (seconds) of the observations made between two scrapes.
func HistogramMean(before, after Metrics, name string, labels map[string]string) float64 {
	sum := func(ms Metrics) (s, c float64) {
		f := ms[name]
		if f == nil {
			return 0, 0
		}
		for _, m := range f.GetMetric() {
			if matches(m, labels) && m.Histogram != nil {
				s += m.GetHistogram().GetSampleSum()
				c += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return s, c
	}
	s0, c0 := sum(before)
	s1, c1 := sum(after)
	if c1 <= c0 {
		return 0
	}
	return (s1 - s0) / (c1 - c0)
}

// histogramSums sums the observations (sample sums) of histogram family name by the value of label, over the
// series that keep accepts.
func (ms Metrics) histogramSums(name, label string, keep func(*dto.Metric) bool) map[string]float64 {
	out := map[string]float64{}
	f := ms[name]
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		if m.Histogram == nil || !keep(m) {
			continue
		}
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				out[l.GetValue()] += m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}
