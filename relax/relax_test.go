package relax

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/cluster"
	"github.com/sparkplace/sparkplace/policies"
)

const zoneKey = "topology.kubernetes.io/zone"

var now = time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC)

// executor is an executor of app the scheduler could not place, created age ago, pinned to a zone or not.
func executor(app, name string, age time.Duration, pinned bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "spark-jobs", UID: types.UID("uid-" + name),
			Labels:            map[string]string{cluster.LabelRole: cluster.RoleExecutor, cluster.LabelAppID: app},
			CreationTimestamp: metav1.NewTime(now.Add(-age)),
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		}}},
	}
	if pinned {
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: zoneKey, Operator: corev1.NodeSelectorOpIn, Values: []string{"us-east-1c"}}}}},
		}}}
	}
	return p
}

func withStrictness(p *corev1.Pod, s string) *corev1.Pod {
	p.Labels[cluster.LabelZoneStrictness] = s
	return p
}

// recorder is the Relaxer's client: it records what was patched and deleted.
type recorder struct {
	client.Writer
	calls []string
}

func (r *recorder) Patch(_ context.Context, obj client.Object, patch client.Patch, _ ...client.PatchOption) error {
	data, _ := patch.Data(obj)
	r.calls = append(r.calls, "patch "+obj.GetName()+" "+string(data))
	return nil
}

func (r *recorder) Delete(_ context.Context, obj client.Object, opts ...client.DeleteOption) error {
	o := &client.DeleteOptions{}
	o.ApplyOptions(opts)
	r.calls = append(r.calls, "delete "+obj.GetName()+" uid "+string(*o.Preconditions.UID))
	return nil
}

func TestSweep(t *testing.T) {
	const bound = 2 * time.Minute
	relaxedLabel := func(name string) string {
		return "patch " + name + ` [{"op":"test","path":"/metadata/uid","value":"uid-` + name + `"},{"op":"add","path":"/metadata/labels/sparkplace.io~1zone-relaxed","value":"capacity"}]`
	}
	cases := map[string]struct {
		mode            policies.ZoneMode
		scope           []string // namespaces the webhook serves; nil: all
		scopeErr        error    // reading the scope fails
		pods            []*corev1.Pod
		wantCalls       []string
		wantRelaxed     map[string]string // app -> reason
		wantRelaxations float64
		wantPending     map[string]float64
	}{
		"bounded: executors pinned past the bound are replaced, the app relaxed once": {
			mode: policies.ZoneBounded,
			pods: []*corev1.Pod{
				withStrictness(executor("app-a", "a-exec-3", 3*time.Minute, true), "bounded-2m"),
				withStrictness(executor("app-a", "a-exec-4", 10*time.Second, true), "bounded-2m"),
			},
			wantCalls: []string{
				relaxedLabel("a-exec-3"), "delete a-exec-3 uid uid-a-exec-3",
				relaxedLabel("a-exec-4"), "delete a-exec-4 uid uid-a-exec-4",
			},
			wantRelaxed: map[string]string{"app-a": "capacity"}, wantRelaxations: 1,
			wantPending: map[string]float64{ReasonZone: 2, ReasonCapacity: 0},
		},
		"bounded: within the bound nothing happens": {
			mode:        policies.ZoneBounded,
			pods:        []*corev1.Pod{withStrictness(executor("app-a", "a-exec-3", time.Minute, true), "bounded-2m")},
			wantRelaxed: map[string]string{"app-a": ""},
			wantPending: map[string]float64{ReasonZone: 1, ReasonCapacity: 0},
		},
		"strict: stranded executors stay and are counted": {
			mode:        policies.ZoneStrict,
			pods:        []*corev1.Pod{withStrictness(executor("app-a", "a-exec-3", time.Hour, true), "strict"), withStrictness(executor("app-b", "b-exec-1", time.Hour, true), "strict")},
			wantRelaxed: map[string]string{"app-a": "", "app-b": ""},
			wantPending: map[string]float64{ReasonZone: 2, ReasonCapacity: 0},
		},
		"an executor admitted strict stays strict under a bounded config": {
			mode:        policies.ZoneBounded,
			pods:        []*corev1.Pod{withStrictness(executor("app-a", "a-exec-3", time.Hour, true), "strict")},
			wantRelaxed: map[string]string{"app-a": ""},
			wantPending: map[string]float64{ReasonZone: 1, ReasonCapacity: 0},
		},
		"an executor admitted bounded keeps its bound under a strict config": {
			mode:            policies.ZoneStrict,
			pods:            []*corev1.Pod{withStrictness(executor("app-a", "a-exec-3", 20*time.Second, true), "bounded-10s")},
			wantCalls:       []string{relaxedLabel("a-exec-3"), "delete a-exec-3 uid uid-a-exec-3"},
			wantRelaxed:     map[string]string{"app-a": "capacity"},
			wantRelaxations: 1,
			wantPending:     map[string]float64{ReasonZone: 1, ReasonCapacity: 0},
		},
		"a pin sparkplace did not add (no strictness label: the user's own term) is never relaxed": {
			mode:        policies.ZoneBounded,
			pods:        []*corev1.Pod{executor("app-a", "a-exec-3", time.Hour, true)},
			wantRelaxed: map[string]string{"app-a": ""},
			wantPending: map[string]float64{ReasonZone: 1, ReasonCapacity: 0},
		},
		"namespaces this webhook does not serve are neither counted nor swept": {
			mode:        policies.ZoneBounded,
			scope:       []string{"other-team"},
			pods:        []*corev1.Pod{withStrictness(executor("app-a", "a-exec-3", time.Hour, true), "bounded-2m"), executor("app-b", "b-exec-1", time.Hour, false)},
			wantRelaxed: map[string]string{"app-a": ""},
			wantPending: map[string]float64{ReasonZone: 0, ReasonCapacity: 0},
		},
		"while the webhook cannot tell which namespaces it serves, it relaxes nothing and counts every namespace": {
			mode:        policies.ZoneBounded,
			scopeErr:    errors.New(`mutatingwebhookconfigurations "sparkplace" is forbidden`),
			pods:        []*corev1.Pod{withStrictness(executor("app-a", "a-exec-3", time.Hour, true), "bounded-2m")},
			wantRelaxed: map[string]string{"app-a": ""},
			wantPending: map[string]float64{ReasonZone: 1, ReasonCapacity: 0},
		},
		"executors without a zone pin wait on capacity, which relaxing cannot help": {
			mode:        policies.ZoneBounded,
			pods:        []*corev1.Pod{executor("app-a", "a-exec-3", time.Hour, false)},
			wantRelaxed: map[string]string{"app-a": ""},
			wantPending: map[string]float64{ReasonZone: 0, ReasonCapacity: 1},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			state := cluster.FromObjects(tc.pods, nil, nil)
			rec := &recorder{}
			pending := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "p"}, []string{"reason"})
			relaxations := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r"}, []string{"reason"})
			var scope func(context.Context) (func(string) bool, error)
			if tc.scope != nil || tc.scopeErr != nil {
				scope = func(context.Context) (func(string) bool, error) {
					if tc.scopeErr != nil {
						return nil, tc.scopeErr
					}
					return func(ns string) bool { return slices.Contains(tc.scope, ns) }, nil
				}
			}
			r := New(Options{
				State: state, Client: rec, Pending: pending, Relaxations: relaxations, Now: func() time.Time { return now }, Scope: scope,
				Zone: func() policies.ZoneConfig {
					return policies.ZoneConfig{TopologyKey: zoneKey, Mode: tc.mode, Bound: bound}
				},
			})
			r.Sweep(context.Background())
			if diff := cmp.Diff(tc.wantCalls, rec.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			for app, want := range tc.wantRelaxed {
				if got := state.Relaxed("spark-jobs", app); got != want {
					t.Errorf("app %s relaxed %q, want %q", app, got, want)
				}
			}
			for reason, want := range tc.wantPending {
				if got := testutil.ToFloat64(pending.WithLabelValues(reason)); got != want {
					t.Errorf("pending{reason=%s} = %v, want %v", reason, got, want)
				}
			}
			r.Sweep(context.Background()) // the pods are still in the cache: no second relaxation
			if got := testutil.ToFloat64(relaxations.WithLabelValues(ReasonCapacity)); got != tc.wantRelaxations {
				t.Errorf("relaxations = %v, want %v", got, tc.wantRelaxations)
			}
		})
	}
}

// apiServer is the pods' one API server shared by webhook replicas: a pod is deleted once, after which its
// deletes are answered NotFound.
type apiServer struct {
	client.Writer
	deleted map[string]bool
}

func (s *apiServer) Patch(context.Context, client.Object, client.Patch, ...client.PatchOption) error {
	return nil
}

func (s *apiServer) Delete(_ context.Context, obj client.Object, _ ...client.DeleteOption) error {
	if s.deleted[obj.GetName()] {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, obj.GetName())
	}
	s.deleted[obj.GetName()] = true
	return nil
}

func TestReplicasCountARelaxationOnce(t *testing.T) {
	pods := []*corev1.Pod{
		withStrictness(executor("app-a", "a-exec-3", 3*time.Minute, true), "bounded-2m"),
		withStrictness(executor("app-a", "a-exec-4", 3*time.Minute, true), "bounded-2m"),
		withStrictness(executor("app-b", "b-exec-1", 3*time.Minute, true), "bounded-2m"),
	}
	server := &apiServer{deleted: map[string]bool{}}
	var replicas []*Relaxer
	for range 2 {
		// Each replica has its own cache and its own counter (summed by whoever scrapes them).
		replicas = append(replicas, New(Options{
			State: cluster.FromObjects(pods, nil, nil), Client: server, Now: func() time.Time { return now },
			Pending:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "p"}, []string{"reason"}),
			Relaxations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r"}, []string{"reason"}),
			Zone: func() policies.ZoneConfig {
				return policies.ZoneConfig{TopologyKey: zoneKey, Mode: policies.ZoneBounded, Bound: 2 * time.Minute}
			},
		}))
	}
	var total float64
	for _, r := range replicas {
		r.Sweep(context.Background())
		total += testutil.ToFloat64(r.o.Relaxations.WithLabelValues(ReasonCapacity))
	}
	if total != 2 {
		t.Errorf("the replicas counted %v relaxations of two applications, want 2", total)
	}
	if len(server.deleted) != 3 {
		t.Errorf("deleted %v, want every stranded executor", server.deleted)
	}
}

func TestMissingWebhookConfigurationIsAwaitedAtFirst(t *testing.T) {
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, args) }, funcr.Options{})
	clock := now
	r := New(Options{
		State: cluster.FromObjects(nil, nil, nil), Client: &recorder{}, Now: func() time.Time { return clock }, Log: log,
		Pending:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "p"}, []string{"reason"}),
		Relaxations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r"}, []string{"reason"}),
		Scope: func(context.Context) (func(string) bool, error) {
			return nil, apierrors.NewNotFound(schema.GroupResource{Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations"}, "sparkplace")
		},
		Zone: func() policies.ZoneConfig {
			return policies.ZoneConfig{TopologyKey: zoneKey, Mode: policies.ZoneBounded, Bound: 2 * time.Minute}
		},
	})
	for _, after := range []time.Duration{0, 10 * time.Second, 50 * time.Second} {
		clock = now.Add(after)
		r.Sweep(context.Background())
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "not registered yet") || strings.Contains(lines[0], `"error"`) {
		t.Fatalf("within the grace, want one line saying the configuration is awaited, got %q", lines)
	}
	clock = now.Add(registrationGrace)
	r.Sweep(context.Background())
	if len(lines) != 2 || !strings.Contains(lines[1], `"error"`) {
		t.Errorf("after the grace, want an error, got %q", lines)
	}
}
