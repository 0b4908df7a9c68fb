package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/cluster"
	"github.com/sparkplace/sparkplace/placement"
	"github.com/sparkplace/sparkplace/policies"
)

// zoneFleet is 2 / 1 / 6 spot nodes (16 CPU, 128 GiB) over three zones, and an on-demand Spark node in each:
// unequal spot capacity, as in the README's simulation.
func zoneFleet(spot map[string]int) *cluster.State {
	s := cluster.NewState(nil)
	node := func(name, zone, capacityType string, taints ...corev1.Taint) *corev1.Node {
		res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("128Gi")}
		return &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
				corev1.LabelTopologyZone: zone, "eks.amazonaws.com/capacityType": capacityType, "noderole": "spark",
				corev1.LabelInstanceTypeStable: "m5.4xlarge",
			}},
			Spec:   corev1.NodeSpec{Taints: append([]corev1.Taint{{Key: "noderole", Value: "spark", Effect: corev1.TaintEffectNoSchedule}}, taints...)},
			Status: corev1.NodeStatus{Allocatable: res, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
		}
	}
	for _, zone := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		s.SetNode(node("od-"+zone, zone, "ON_DEMAND"))
		for i := range spot[zone] {
			s.SetNode(node(fmt.Sprintf("spot-%s-%d", zone, i), zone, "SPOT", corev1.Taint{Key: "spot", Value: "true", Effect: corev1.TaintEffectNoSchedule}))
		}
	}
	return s
}

// sizedDriver is the Spark 3.5 driver fixture as application n, with the submitter's size hint.
func sizedDriver(t testing.TB, n int, executors, cpu string) *corev1.Pod {
	p := readFixture(t, "spark-3.5-driver")
	p.Name = fmt.Sprintf("app-%d-driver", n)
	p.Labels[LabelAppID] = fmt.Sprintf("spark-%032d", n)
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[AnnotationExecutors], p.Annotations[AnnotationExecutorCPU], p.Annotations[AnnotationExecutorMemory] = executors, cpu, "4Gi"
	return p
}

func preferredZone(p *corev1.Pod) string {
	if p.Spec.Affinity == nil || p.Spec.Affinity.NodeAffinity == nil {
		return ""
	}
	for _, t := range p.Spec.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		for _, r := range t.Preference.MatchExpressions {
			if r.Key == corev1.LabelTopologyZone {
				return r.Values[0]
			}
		}
	}
	return ""
}

func explanation(t testing.TB, p *corev1.Pod) placement.Explanation {
	t.Helper()
	var e placement.Explanation
	if err := json.Unmarshal([]byte(p.Annotations[placement.AnnotationKey]), &e); err != nil {
		t.Fatalf("annotation %q: %v", p.Annotations[placement.AnnotationKey], err)
	}
	return e
}

func newZonePlacer(t testing.TB, state *cluster.State, config string) *Placer {
	t.Helper()
	opts := policies.Options{}
	if config != "" {
		opts.ConfigFile = filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(opts.ConfigFile, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	engine, err := policies.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return &Placer{Engine: engine, Cluster: state, Metrics: NewMetrics(nil)}
}

// A burst of drivers, none of whose executors exist yet, lands where the jobs fit: 18 jobs of 8 one-CPU
// executors fill the 32 / 16 / 96 free spot CPUs of the three zones exactly.
func TestDriverZoneBurst(t *testing.T) {
	p := newZonePlacer(t, zoneFleet(map[string]int{"us-east-1a": 2, "us-east-1b": 1, "us-east-1c": 6}), "")
	got := map[string]int{}
	for i := range 18 {
		pod := sizedDriver(t, i, "8", "1")
		if _, err := p.Place(context.Background(), pod, pod.Namespace, "CREATE"); err != nil {
			t.Fatal(err)
		}
		got[preferredZone(pod)]++
		e := explanation(t, pod)
		if !strings.Contains(strings.Join(e.Rules, ","), "zone.driver-capacity") || len(e.Notes) == 0 || !strings.Contains(e.Notes[0], "most free spot capacity (8 of 8 executors fit)") {
			t.Errorf("driver %d: explanation %+v, want zone.driver-capacity and a note", i, e)
		}
	}
	if diff := cmp.Diff(map[string]int{"us-east-1a": 4, "us-east-1b": 2, "us-east-1c": 12}, got); diff != "" {
		t.Errorf("drivers per zone (-want +got):\n%s", diff)
	}
}

func TestDriverZoneChoice(t *testing.T) {
	fleet := map[string]int{"us-east-1a": 2, "us-east-1b": 1, "us-east-1c": 6}
	sized := func(t testing.TB) *corev1.Pod { return sizedDriver(t, 1, "8", "1") }
	cases := map[string]struct {
		spot   map[string]int
		config string
		pod    func(testing.TB) *corev1.Pod
		// wantZone is the preferred zone ("" for none), wantRule the zone rule, wantNote part of a note.
		wantZone, wantRule, wantNote string
		// wantReserved is whether the driver's size hint stays reserved in the index.
		wantReserved bool
	}{
		"most free spot capacity": {
			spot: fleet, pod: sized, wantZone: "us-east-1c", wantRule: "zone.driver-capacity", wantReserved: true,
			wantNote: "driver zone us-east-1c: most free spot capacity (8 of 8 executors fit); free CPU by zone: us-east-1a=32 us-east-1b=16 us-east-1c=96",
		},
		"an nvme driver whose pool has no spot NVMe node: round robin over the zones": {
			spot: fleet, pod: func(t testing.TB) *corev1.Pod { return withProfile(readFixture(t, "spark-4.0-driver"), "nvme") },
			wantZone: "us-east-1a", wantRule: "zone.driver-round-robin", wantReserved: true,
		},
		"the user's zone is left alone and nothing is reserved": {
			spot: fleet,
			pod: func(t testing.TB) *corev1.Pod {
				p := sized(t)
				p.Spec.NodeSelector = map[string]string{corev1.LabelTopologyZone: "us-east-1b"}
				return p
			},
		},
		"unreadable size hints fall back to the defaults and say so": {
			spot: fleet, pod: func(t testing.TB) *corev1.Pod { return sizedDriver(t, 1, "eight", "lots") },
			wantZone: "us-east-1c", wantRule: "zone.driver-capacity", wantReserved: true,
			wantNote: `annotation sparkplace.io/executors="eight" is not a number of executors: ignored`,
		},
		"spot scaled to zero: round robin": {
			pod: sized, wantZone: "us-east-1a", wantRule: "zone.driver-round-robin", wantReserved: true,
			wantNote: "us-east-1a: no zone has free spot capacity; round robin",
		},
		"spot scaled to zero: configured weights": {
			pod: sized, config: "driverZone: {zones: {us-east-1b: {weight: 1}, us-east-1c: {weight: 3}}}",
			wantZone: "us-east-1c", wantRule: "zone.driver-weight", wantReserved: true,
		},
		"spot scaled to zero: configured capacity hints": {
			pod: sized, config: "driverZone: {zones: {us-east-1a: {cpu: '4', memory: 64Gi}, us-east-1b: {cpu: '64', memory: 512Gi}}}",
			wantZone: "us-east-1b", wantRule: "zone.driver-hint", wantReserved: true,
		},
		"turned off in config": {spot: fleet, pod: sized, config: "driverZone: {enabled: false}"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			state := zoneFleet(tc.spot)
			p := newZonePlacer(t, state, tc.config)
			pod := tc.pod(t)
			if _, err := p.Place(context.Background(), pod, pod.Namespace, "CREATE"); err != nil {
				t.Fatal(err)
			}
			if got := preferredZone(pod); got != tc.wantZone {
				t.Errorf("preferred zone %q, want %q", got, tc.wantZone)
			}
			e := explanation(t, pod)
			if tc.wantRule != "" && !strings.Contains(strings.Join(e.Rules, ","), tc.wantRule) {
				t.Errorf("rules %v, want %s", e.Rules, tc.wantRule)
			}
			if tc.wantNote != "" && !strings.Contains(strings.Join(e.Notes, "\n"), tc.wantNote) {
				t.Errorf("notes %q, want one containing %q", e.Notes, tc.wantNote)
			}
			if got := state.Capacity().Stats().Reservations; got != map[bool]int{true: 1}[tc.wantReserved] {
				t.Errorf("%d reservations, want reserved=%v", got, tc.wantReserved)
			}
		})
	}
}

// A dry-run admission creates no driver, so it leaves no reservation behind.
func TestDriverZoneDryRun(t *testing.T) {
	state := zoneFleet(map[string]int{"us-east-1a": 2, "us-east-1b": 1, "us-east-1c": 6})
	h := &Handler{Placer: newZonePlacer(t, state, ""), Metrics: NewMetrics(nil), OnPolicyError: PolicyErrorDeny}
	req := podRequest(t, sizedDriver(t, 1, "8", "1"))
	req.DryRun = new(true)
	if resp := h.Handle(context.Background(), req); !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("dry run: allowed %v, patch %s", resp.Allowed, resp.Patch)
	}
	if n := state.Capacity().Stats().Reservations; n != 0 {
		t.Errorf("%d reservations after a dry run, want 0", n)
	}
}

// TestZoneChoiceGolden shows, as golden files, a sized driver on a spot fleet scaled to zero: round robin,
// configured capacity hints, configured weights (with executors spread over NodePools and protected from
// scale-down, as that config also asks), and the executors' spread over spot pools.
func TestZoneChoiceGolden(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "cluster-spot-at-zero.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string]string{
		"round-robin": "",
		"hints":       filepath.Join("testdata", "config", "zone-hints.yaml"),
		"weights":     filepath.Join("testdata", "config", "zone-weights.yaml"),
	}
	for variant, config := range variants {
		for _, fixture := range []string{"spark-3.5-driver", "spark-3.5-executor"} {
			name := "zones/" + fixture + "-spot-at-zero-" + variant
			t.Run(name, func(t *testing.T) {
				state, err := ObjectsState("cluster-spot-at-zero.yaml", data)
				if err != nil {
					t.Fatal(err)
				}
				engine, err := policies.New(context.Background(), policies.Options{ConfigFile: config})
				if err != nil {
					t.Fatal(err)
				}
				placer := &Placer{Engine: engine, Cluster: state}
				pod := readFixture(t, fixture)
				if pod.Labels[LabelRole] == RoleDriver {
					if pod.Annotations == nil {
						pod.Annotations = map[string]string{}
					}
					pod.Annotations[AnnotationExecutors], pod.Annotations[AnnotationExecutorCPU], pod.Annotations[AnnotationExecutorMemory] = "8", "4", "15769Mi"
				}
				var out bytes.Buffer
				if _, err := Evaluate(context.Background(), placer, pod, OutputYAML, &out); err != nil {
					t.Fatal(err)
				}
				checkGolden(t, name, []byte(strings.ReplaceAll(out.String(), engine.Current().Hash(), "sha256:BUNDLE")))
			})
		}
	}
}

// `policy eval --objects` counts what the webhook's caches count: a DaemonSet in the file takes its requests
// from every node it runs on (here the spot nodes of us-east-1c, which its toleration admits).
func TestObjectsDaemonSetsTakeCapacity(t *testing.T) {
	objects := `
apiVersion: v1
kind: Node
metadata:
  name: spot-c
  labels: {topology.kubernetes.io/zone: us-east-1c, eks.amazonaws.com/capacityType: SPOT, noderole: spark}
spec:
  taints:
  - {key: noderole, value: spark, effect: NoSchedule}
  - {key: spot, value: "true", effect: NoSchedule}
status:
  allocatable: {cpu: "16", memory: 128Gi}
  conditions: [{type: Ready, status: "True"}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: node-agent}}
  template:
    metadata: {labels: {app: node-agent}}
    spec:
      tolerations: [{operator: Exists}]
      containers:
      - name: agent
        image: example.com/agent:1
        resources: {requests: {cpu: 1500m, memory: 1Gi}}
`
	state, err := ObjectsState("cluster.yaml", []byte(objects))
	if err != nil {
		t.Fatal(err)
	}
	p := newZonePlacer(t, state, "")
	pod := sizedDriver(t, 1, "8", "1")
	if _, err := p.Place(context.Background(), pod, pod.Namespace, "CREATE"); err != nil {
		t.Fatal(err)
	}
	e := explanation(t, pod)
	if want := "free CPU by zone: us-east-1c=14500m"; len(e.Notes) == 0 || !strings.Contains(e.Notes[0], want) {
		t.Errorf("notes %q, want one with %q", e.Notes, want)
	}
}
