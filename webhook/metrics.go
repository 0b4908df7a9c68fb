package webhook

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparkplace/sparkplace/policies"
)

// Admission results, the "result" label of sparkplace_admissions_total.
const (
	ResultMutated   = "mutated"   // a patch was returned
	ResultUnchanged = "unchanged" // the pod already had its placement
	ResultDenied    = "denied"    // the policy denied the pod
	ResultSkipped   = "skipped"   // not a Spark pod, not a CREATE, or not a pod
	ResultError     = "error"     // bad request or policy error, answered per --on-policy-error
)

// Metrics are the webhook's Prometheus collectors. Create them with NewMetrics; nothing is global.
type Metrics struct {
	Admissions       *prometheus.CounterVec
	AdmissionLatency *prometheus.HistogramVec
	PolicyLatency    prometheus.Histogram
	PolicyErrors     *prometheus.CounterVec
	RulesFired       *prometheus.CounterVec
	PolicyReloads    *prometheus.CounterVec
	PolicyBundle     *prometheus.GaugeVec
	// ExecutorsPending, Relaxations and UnsatisfiableTerms are bounded strictness's (see package relax).
	ExecutorsPending   *prometheus.GaugeVec
	Relaxations        *prometheus.CounterVec
	UnsatisfiableTerms prometheus.Counter
	// DriverZoneChoices and ZoneFreeSpotCPU are the driver zone choice's (see package zonecapacity).
	DriverZoneChoices *prometheus.CounterVec
	ZoneFreeSpotCPU   *prometheus.GaugeVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not registered, as in tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	// Admissions are sub-millisecond when the decision is cached and a few ms on a cold Rego evaluation; the
	// API server's timeout is seconds.
	buckets := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &Metrics{
		Admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparkplace_admissions_total",
			Help: "Admission requests by Spark role (driver, executor, none) and result (mutated, unchanged, denied, skipped, error).",
		}, []string{"role", "result"}),
		AdmissionLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sparkplace_admission_duration_seconds",
			Help:    "Time to answer one admission request, from decoded request to response, by Spark role.",
			Buckets: buckets,
		}, []string{"role"}),
		PolicyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sparkplace_policy_evaluation_duration_seconds",
			Help:    "Time to get a decision from the policy engine (cache hits included).",
			Buckets: buckets,
		}),
		PolicyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparkplace_policy_errors_total",
			Help: "Policy failures at admission by kind: evaluation (runtime error or timeout) or guardrail (a decision breaking a guardrail).",
		}, []string{"kind"}),
		RulesFired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparkplace_rules_fired_total",
			Help: "Policy rules that fired for admitted pods, by rule name.",
		}, []string{"rule"}),
		PolicyReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparkplace_policy_reloads_total",
			Help: "Policy bundle reloads by result (success, failure: the last good bundle stays in effect).",
		}, []string{"result"}),
		PolicyBundle: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sparkplace_policy_bundle_info",
			Help: "The policy bundle in effect: 1 for its hash and the evaluator of its decision-cache misses (plan, or topdown: several times slower, see the webhook's log for why).",
		}, []string{"hash", "evaluator"}),
		ExecutorsPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sparkplace_executors_pending_placement",
			Help: "Executors the scheduler cannot place, by reason: zone (they carry a required zone term) or capacity (they do not: no room for them anywhere they may go).",
		}, []string{"reason"}),
		Relaxations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparkplace_placement_relaxations_total",
			Help: "Applications whose zone pin was relaxed, by reason (capacity: executors waited on the pin longer than zone.bound).",
		}, []string{"reason"}),
		UnsatisfiableTerms: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sparkplace_unsatisfiable_required_terms_total",
			Help: "Executors admitted with a required zone term that no schedulable node could meet at admission (zone.mode strict, or a policy that ignores input.zone.unschedulable). Stays 0 with the default policy in modes bounded and preferred.",
		}),
		DriverZoneChoices: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparkplace_driver_zone_choices_total",
			Help: "Drivers steered to a zone, by zone and reason (capacity: most free spot capacity; hint, weight, round-robin: no zone had free capacity).",
		}, []string{"zone", "reason"}),
		ZoneFreeSpotCPU: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sparkplace_zone_free_spot_cpu",
			Help: "Free spot CPU (cores) per zone for the executors of the last steered driver's profile, as the capacity index estimated it (after pending executors and recent drivers).",
		}, []string{"zone"}),
	}
	// Exported from 0, so a rate or an alert on relaxations has a series before the first one, and a replica
	// whose peers did the relaxing still shows it never had to.
	m.Relaxations.WithLabelValues("capacity")
	if reg != nil {
		reg.MustRegister(m.Admissions, m.AdmissionLatency, m.PolicyLatency, m.PolicyErrors, m.RulesFired, m.PolicyReloads, m.PolicyBundle,
			m.ExecutorsPending, m.Relaxations, m.UnsatisfiableTerms, m.DriverZoneChoices, m.ZoneFreeSpotCPU)
	}
	return m
}

// BundleLoaded records the bundle in effect after a (re)load attempt, its hash and evaluator
// (policies.Version.Evaluator); err is the failure that kept a new bundle out.
func (m *Metrics) BundleLoaded(hash, evaluator string, err error) {
	if err != nil {
		m.PolicyReloads.WithLabelValues("failure").Inc()
	} else {
		m.PolicyReloads.WithLabelValues("success").Inc()
	}
	m.PolicyBundle.Reset()
	m.PolicyBundle.WithLabelValues(hash, evaluator).Set(1)
}

// CacheCollectors export the policy engine's decision cache, read from stats at each scrape:
// sparkplace_decision_cache_lookups_total{result="hit"|"miss"} and sparkplace_decision_cache_entries. Executors
// of one application share a decision, so misses should be about one per application plus one per driver.
func CacheCollectors(stats func() policies.CacheStats) []prometheus.Collector {
	lookups := func(result string, count func(policies.CacheStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "sparkplace_decision_cache_lookups_total",
			Help:        "Decision-cache lookups by result (hit, miss); a miss is a full policy evaluation.",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(count(stats())) })
	}
	return []prometheus.Collector{
		lookups("hit", func(s policies.CacheStats) uint64 { return s.Hits }),
		lookups("miss", func(s policies.CacheStats) uint64 { return s.Misses }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sparkplace_decision_cache_entries",
			Help: "Decisions held in the cache now (at most its capacity, about 4 KiB each).",
		}, func() float64 { return float64(stats().Entries) }),
	}
}
