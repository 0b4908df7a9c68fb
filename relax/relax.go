package relax

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-openapi/jsonpointer"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/cluster"
	"github.com/sparkplace/sparkplace/policies"
)

// Reasons, the "reason" label of the metrics.
const (
	// ReasonZone: an executor waits with a required zone term.
	ReasonZone = "zone"
	// ReasonCapacity: an executor waits without one (no room where it may go), and the reason a pin is relaxed:
	// the zone had no room for the application's executors within the bound.
	ReasonCapacity = "capacity"
)

// forgetAfter is how long a relaxed application is remembered once it has no pod left.
const forgetAfter = 15 * time.Minute

// Options configure a Relaxer.
type Options struct {
	State *cluster.State
	// Client patches and deletes stranded executors.
	Client client.Writer
	// Zone returns the zone configuration in effect (it changes with policy reloads).
	Zone func() policies.ZoneConfig
	// Scope returns, once per sweep, which namespaces are this webhook's to sweep: those its webhook
	// configuration sends to it. Nil sweeps every namespace. On an error nothing is relaxed (a webhook never
	// deletes pods it cannot show it placed), and the pending executors of every namespace are counted.
	Scope func(context.Context) (func(namespace string) bool, error)
	// Pending is sparkplace_executors_pending_placement{reason}; Relaxations is
	// sparkplace_placement_relaxations_total{reason}.
	Pending     *prometheus.GaugeVec
	Relaxations *prometheus.CounterVec
	// Interval between sweeps. Defaults to a quarter of zone.bound, between 1s and 10s.
	Interval time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
	Log logr.Logger
}

// registrationGrace is how long after the Relaxer is made its webhook configuration may be missing without
// an error: an install registers the configuration once the webhook serves, so it is missing at first.
const registrationGrace = time.Minute

// Relaxer sweeps the pending executors; it runs in every webhook replica (the deletes are idempotent).
// Sweeps are not concurrent.
type Relaxer struct {
	o       Options
	created time.Time
	// awaitingConfig: the missing webhook configuration was logged as awaited.
	awaitingConfig bool
}

// New returns a Relaxer.
func New(o Options) *Relaxer {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Relaxer{o: o, created: o.Now()}
}

// Start sweeps until ctx is done (a manager.Runnable; the caller starts it once the caches have synced).
func (r *Relaxer) Start(ctx context.Context) error {
	for {
		r.Sweep(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.interval()):
		}
	}
}

func (r *Relaxer) interval() time.Duration {
	if r.o.Interval > 0 {
		return r.o.Interval
	}
	return min(max(r.o.Zone().Bound/4, time.Second), 10*time.Second)
}

// Sweep counts the pending executors and relaxes the applications whose executors waited on their zone pin
// past the bound.
func (r *Relaxer) Sweep(ctx context.Context) {
	inScope, relaxing := func(string) bool { return true }, true
	if r.o.Scope != nil {
		if served, err := r.o.Scope(ctx); err != nil {
			// Still counted, in every namespace, so that the stranded-executors alert can fire.
			switch {
			case apierrors.IsNotFound(err) && r.o.Now().Sub(r.created) < registrationGrace:
				if !r.awaitingConfig {
					r.o.Log.Info("the webhook configuration is not registered yet; relaxing nothing until it is", "reason", err.Error())
					r.awaitingConfig = true
				}
			default:
				r.o.Log.Error(err, "reading which namespaces this webhook serves; relaxing nothing until it can")
			}
			relaxing = false
		} else {
			inScope = served
		}
	}
	zone := r.o.Zone()
	pending := r.o.State.PendingExecutors(zone.TopologyKey)
	counts := map[string]int{ReasonZone: 0, ReasonCapacity: 0}
	type app struct{ namespace, id string }
	stranded := map[app][]cluster.PendingExecutor{}
	var apps []app
	now := r.o.Now()
	for _, p := range pending {
		if !inScope(p.Namespace) {
			continue
		}
		if !p.Pinned {
			counts[ReasonCapacity]++
			continue
		}
		counts[ReasonZone]++
		a := app{p.Namespace, p.App}
		if len(stranded[a]) == 0 {
			apps = append(apps, a)
		}
		stranded[a] = append(stranded[a], p)
	}
	for reason, n := range counts {
		r.o.Pending.WithLabelValues(reason).Set(float64(n))
	}
	if !relaxing {
		return
	}
	r.o.State.ForgetRelaxed(forgetAfter)
	for _, a := range apps {
		var due []cluster.PendingExecutor
		for _, p := range stranded[a] {
			if bound, ok := boundOf(p); ok && now.Sub(p.Created) >= bound {
				due = append(due, p)
			}
		}
		if a.id == "" || len(due) == 0 {
			continue
		}
		// Every replica sweeps the same executors, and only one deletes each (the UID precondition): the one
		// that deletes the application's first stranded executor (name order, the same in every replica)
		// counts the relaxation, so that the replicas' counters sum to one per application.
		counted := r.o.State.Relaxed(a.namespace, a.id) != ""
		if !counted {
			r.o.Log.Info("relaxing the zone pin of an application whose executors waited past the bound",
				"namespace", a.namespace, "app", a.id, "executors", len(due))
		}
		r.o.State.Relax(a.namespace, a.id, ReasonCapacity)
		// Every pinned executor of the application waits in the same full zone: replace them all.
		for _, p := range stranded[a] {
			if _, ok := boundOf(p); !ok {
				continue
			}
			deleted, err := r.replace(ctx, p)
			if err != nil {
				r.o.Log.Error(err, "replacing a stranded executor", "namespace", p.Namespace, "pod", p.Name)
			}
			if !counted && deleted {
				r.o.Relaxations.WithLabelValues(ReasonCapacity).Inc()
			}
			counted = true
		}
	}
}

// boundOf is how long a pinned executor may wait: the strictness it was admitted under (its label, set by
// the policy that pinned it). ok is false when it is held strictly, or when the pin is not sparkplace's (no
// label: the user's own term, which a replacement would carry again, or another placer's).
func boundOf(p cluster.PendingExecutor) (time.Duration, bool) {
	bounded := string(policies.ZoneBounded) + "-"
	if !strings.HasPrefix(p.Strictness, bounded) {
		return 0, false
	}
	d, err := time.ParseDuration(strings.TrimPrefix(p.Strictness, bounded))
	return d, err == nil
}

// replace labels a stranded executor relaxed (so every replica's cache learns the application is) and
// deletes it; Spark's allocator creates a replacement, which is admitted relaxed. deleted is false when the
// pod was gone already (another replica, Spark or a user deleted it).
func (r *Relaxer) replace(ctx context.Context, p cluster.PendingExecutor) (deleted bool, err error) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}}
	label := fmt.Sprintf(`[{"op":"test","path":"/metadata/uid","value":%q},{"op":"add","path":"/metadata/labels/%s","value":%q}]`,
		p.UID, jsonpointer.Escape(cluster.LabelZoneRelaxed), ReasonCapacity)
	var labelErr error
	if err := r.o.Client.Patch(ctx, pod, client.RawPatch(types.JSONPatchType, []byte(label))); err != nil && !gone(err) {
		// This replica knows the application is relaxed; the pod is stranded all the same: delete it.
		labelErr = fmt.Errorf("labelling: %w", err)
	}
	uid := p.UID
	switch err := r.o.Client.Delete(ctx, pod, client.Preconditions{UID: &uid}); {
	case err == nil:
		return true, labelErr
	case gone(err):
		return false, labelErr
	default:
		return false, errors.Join(labelErr, fmt.Errorf("deleting: %w", err))
	}
}

// gone: the pod was deleted meanwhile (by another replica, Spark, or a user), or replaced by another of the
// same name (the UID precondition or test failed).
func gone(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsConflict(err) || apierrors.IsInvalid(err)
}
