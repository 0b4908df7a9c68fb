package policies

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/sparkplace/sparkplace/placement"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// planBundles are bundles and configs the plan must evaluate as topdown does: the embedded bundle under
// configs that switch its modes, and the policy dirs of the tests (user policies that add to the decision's
// partial rules, replace files, conflict, or return a key no Decision has).
var planBundles = []struct {
	name      string
	policyDir string
	config    string
	// topdownOnly: the bundle is expected not to be planned.
	topdownOnly bool
}{
	{name: "embedded"},
	{name: "zone strict", config: "zone: {mode: strict}"},
	{name: "zone preferred", config: "zone: {mode: preferred, topologyKey: topology.k8s.aws/zone-id}"},
	{name: "ephemeral everywhere", config: "nvme: {mode: ephemeral, ephemeral: {storageClassName: local-nvme, size: 50Gi}}"},
	{name: "ephemeral where restricted", config: "nvme: {ephemeral: {storageClassName: local-nvme, namespaces: [team-b]}}\npodSecurity: {defaultEnforce: restricted}"},
	{name: "ephemeral without a class", config: "nvme: {mode: ephemeral}"},
	{name: "karpenter, no isolation, executors protected", config: "preset: karpenter\nisolation: {enabled: false}\nautoscaler: {protectExecutors: true}\nspotPools: {enabled: false}\ndriverZone: {enabled: false}\ncapacity: {key: node.kubernetes.io/lifecycle}"},
	{name: "nvme defaults changed", config: "nvme: {hostPath: /mnt/nvme, defaultUID: 1000, defaultGID: 2000, nodeSelector: {local-nvme: 'true'}}\ndefaultProfile: nvme"},
	{name: "custom team policy", policyDir: "testdata/custom", config: "custom: {teams: {costCenter: cc-42}}"},
	{name: "replaced isolation", policyDir: "testdata/replace"},
	{name: "fargate closed", policyDir: "testdata/breaksfargate"},
	{name: "conflict", policyDir: "testdata/conflict"},
	{name: "unknown key", policyDir: "testdata/unknownkey"},
	{name: "clock and with", policyDir: "testdata/unplanned", topdownOnly: true},
}

// planInputs are inputs over the dimensions the bundle reads: every role, profile source and zone situation
// together, and the rest (volumes, security contexts, namespaces' Pod Security, zone choices, the pod's own
// zone constraints) drawn from a fixed seed.
func planInputs() []*Input {
	roles := []string{"driver", "executor", "", "worker"}
	profiles := []func(*inputBuilder){
		func(*inputBuilder) {},
		func(b *inputBuilder) { b.profile("spot") },
		func(b *inputBuilder) { b.profile("on-demand") },
		func(b *inputBuilder) { b.profile("nvme") },
		func(b *inputBuilder) { b.profile("fargate") },
		func(b *inputBuilder) { b.profile("gpu") },
		func(b *inputBuilder) { b.namespaceProfile("nvme") },
		func(b *inputBuilder) { b.namespaceProfile("on-demand") },
		func(b *inputBuilder) { b.namespaceProfile("typo") },
	}
	zones := []func(*Input){
		func(*Input) {},
		func(in *Input) {
			in.Driver.NodeName, in.Driver.Zone, in.Zone = "node-1", "us-east-1a", Zone{Value: "us-east-1a", Source: "driver"}
		},
		func(in *Input) { in.Driver = Driver{}; in.Zone = Zone{Value: "us-east-1b", Source: "executors"} },
		func(in *Input) { in.Driver = Driver{} },
		func(in *Input) { in.Driver = Driver{Found: true, Name: "notebook", NodeName: "node-2"} },
		func(in *Input) { in.Driver.NodeName = "bare-metal-1" },
		func(in *Input) {
			in.Driver.NodeName, in.Driver.Zone, in.Zone = "node-1", "us-east-1a", Zone{Value: "us-east-1a", Source: "driver", Relaxed: "capacity"}
		},
		func(in *Input) {
			in.Driver.NodeName, in.Driver.Zone, in.Zone = "node-1", "us-east-1a", Zone{Value: "us-east-1a", Source: "driver", Unschedulable: true}
		},
		func(in *Input) { in.Zone = Zone{Unschedulable: true} },
		func(in *Input) { in.App.ID = "" },
	}
	rng := rand.New(rand.NewPCG(16, 2026))
	var out []*Input
	for _, role := range roles {
		for _, profile := range profiles {
			for _, zone := range zones {
				b := makeInput(role)
				profile(b)
				zone(&b.in)
				varyPod(rng, b)
				out = append(out, b.obj())
			}
		}
	}
	return out
}

// varyPod draws the pod's volumes, containers, security context, namespace and scheduling constraints.
func varyPod(rng *rand.Rand, b *inputBuilder) {
	in := &b.in
	pick := func(n int) int { return rng.IntN(n) }
	switch pick(8) {
	case 1, 2:
		b.localDirs()
	case 3: // two local dirs, one tmpfs
		b.localDirs()
		in.Pod.Spec.Volumes = append(in.Pod.Spec.Volumes, corev1.Volume{Name: "spark-local-dir-2", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}})
		c := &in.Pod.Spec.Containers[0]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "spark-local-dir-2", MountPath: "/var/data/spark-2"})
	case 4: // size-limited
		limit := resource.MustParse("10Gi")
		b.localDirs()
		in.Pod.Spec.Volumes[0].EmptyDir.SizeLimit = &limit
	case 5: // already moved to a host path, by an earlier admission
		b.localDirs()
		in.Pod.Spec.Volumes[0].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/pv-disks/local/spark-jobs/pi-exec-1/spark-local-dir-1"}}
	case 6: // already an ephemeral volume
		b.localDirs()
		class := "local-nvme"
		in.Pod.Spec.Volumes[0].VolumeSource = corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &class}}}}
	case 7: // a sidecar first, Spark's container not named as Spark names it
		b.localDirs()
		in.Pod.Spec.Containers[0].Name = "main"
		in.Pod.Spec.Containers = append([]corev1.Container{{Name: "istio-proxy", Image: "istio/proxyv2"}}, in.Pod.Spec.Containers...)
	}
	switch pick(4) {
	case 1:
		b.runAs(185, 185)
	case 2:
		uid, gid := int64(1000), int64(3000)
		in.Pod.Spec.Containers[len(in.Pod.Spec.Containers)-1].SecurityContext = &corev1.SecurityContext{RunAsUser: &uid, RunAsGroup: &gid}
	case 3:
		gid := int64(42)
		in.Pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: &gid}
	}
	in.Namespace.PodSecurity = []string{"", "", "privileged", "baseline", "restricted", "audit-only"}[pick(6)]
	if pick(3) == 0 {
		in.Namespace.Name = "team-b"
	}
	if pick(5) == 0 {
		in.Pod.Name, in.Pod.GenerateName = "", "pi-exec-"
	} else {
		in.Pod.Name = "pi-exec-1"
	}
	if in.Role == "driver" && pick(3) > 0 {
		in.ZoneChoice = &ZoneChoice{Zone: "us-east-1c", Reason: []string{"capacity", "hint", "weight", "round-robin"}[pick(4)]}
	}
	switch pick(6) {
	case 1:
		in.Pod.Spec.NodeSelector = map[string]string{"topology.kubernetes.io/zone": "us-east-1a"}
	case 2:
		in.Pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "topology.kubernetes.io/zone", Operator: "In", Values: []string{"us-east-1b"}}}}},
		}}}
	case 3:
		in.Pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{
			Weight: 100, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "topology.kubernetes.io/zone", Operator: "In", Values: []string{"us-east-1c"}}}},
		}}}}
	}
}

// The plan gives every input the value topdown gives it, for the embedded bundle under several configs and
// for user policies; where topdown fails (a conflict), the plan stops and leaves the answer to topdown, so
// Decide returns topdown's error.
func TestPlanMatchesTopdown(t *testing.T) {
	ctx := context.Background()
	inputs := planInputs()
	for _, bc := range planBundles {
		t.Run(bc.name, func(t *testing.T) {
			opts := Options{PolicyDir: bc.policyDir, CacheSize: -1}
			if bc.config != "" {
				opts.ConfigFile = filepath.Join(t.TempDir(), "config.yaml")
				if err := os.WriteFile(opts.ConfigFile, []byte(bc.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			v := newEngine(t, opts).Current()
			if (v.plan == nil) != bc.topdownOnly {
				t.Fatalf("planned: %v, want %v", v.plan != nil, !bc.topdownOnly)
			}
			if v.plan == nil { // Decide evaluates with topdown alone
				d, err := newEngine(t, opts).Decide(ctx, makeInput("executor").profile("on-demand").obj())
				if err != nil || !slices.Contains(d.Notes, "the pod's own label picks its profile") {
					t.Errorf("Decide: %+v, %v", d, err)
				}
				return
			}
			var planned, fellBack int
			for i, in := range inputs {
				buf, err := encodeInput(in)
				if err != nil {
					t.Fatal(err)
				}
				input, err := parseValue(buf)
				if err != nil {
					t.Fatal(err)
				}
				want, wantErr := topdownValue(ctx, v, input)
				got, err := v.plan.eval(ctx, input)
				var fallback *errPlanFallback
				switch {
				case errors.As(err, &fallback):
					fellBack++
					if wantErr == nil {
						t.Errorf("input %d: the plan stopped (%v) where topdown answers %v\n%s", i, err, want, buf)
					}
				case err != nil:
					t.Fatalf("input %d: %v", i, err)
				case wantErr != nil:
					t.Errorf("input %d: the plan answers %v where topdown fails: %v\n%s", i, got, wantErr, buf)
				case (got == nil) != (want == nil) || (got != nil && got.Compare(want) != 0):
					t.Errorf("input %d:\nplan:    %v\ntopdown: %v\n%s", i, got, want, buf)
				default:
					planned++
					if want != nil {
						compareDecodings(t, want)
					}
				}
				// What Decide returns (the plan's answer on the input reduced to what the decision can depend
				// on, or topdown's) is topdown's answer on the whole input, its errors too.
				d, err := v.eval(ctx, in, v.timeout)
				var wd *placement.Decision
				if wantErr != nil || want == nil {
					wd, wantErr = v.evalTopdown(ctx, input, v.timeout)
				} else {
					wd, wantErr = decodeDecision(want)
				}
				if fmt.Sprint(err) != fmt.Sprint(wantErr) {
					t.Errorf("input %d: Decide fails with %v; topdown with %v", i, err, wantErr)
				} else if diff := cmp.Diff(wd, d, cmpQuantities); diff != "" {
					t.Errorf("input %d: Decide (+) and topdown (-) differ:\n%s", i, diff)
				}
			}
			t.Logf("%d inputs: %d answered by the plan, %d by topdown after the plan stopped", len(inputs), planned, fellBack)
			if planned == 0 && bc.policyDir != "testdata/conflict" {
				t.Error("the plan answered no input")
			}
		})
	}
}

// topdownValue is the query's value by topdown, nil when undefined.
func topdownValue(ctx context.Context, v *Version, input ast.Value) (ast.Value, error) {
	rs, err := v.query.Eval(ctx, rego.EvalParsedInput(input), rego.EvalGenerateJSON(keepValue))
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	return rs[0].Expressions[0].Value.(ast.Value), nil
}

// Evaluations running at once share the plan, its folded rules and the bundle's data, and reuse each other's
// state (planEval.runs): each gets the decision it gets alone.
func TestPlanConcurrentEvaluations(t *testing.T) {
	ctx := context.Background()
	v := newEngine(t, Options{CacheSize: -1}).Current()
	inputs := planInputs()
	values := make([]ast.Value, len(inputs))
	want := make([]ast.Value, len(inputs))
	for i, in := range inputs {
		var err error
		if values[i], err = v.keys.inputValue(in); err != nil {
			t.Fatal(err)
		}
		if want[i], err = v.plan.eval(ctx, values[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for k := range inputs {
				i := (k*7 + g*13) % len(inputs)
				got, err := v.plan.eval(ctx, values[i])
				if err != nil || (got == nil) != (want[i] == nil) || (got != nil && got.Compare(want[i]) != 0) {
					t.Errorf("input %d: %v, %v; alone %v", i, got, err, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestEvaluatorOption: Options.Evaluator picks the plan (the default) or OPA's evaluator alone, and a
// Version says which one it runs and why not the plan; the decision is the same either way.
func TestEvaluatorOption(t *testing.T) {
	for name, tc := range map[string]struct {
		opts    Options
		want    string
		why     string // a substring of the reason for topdown
		loadErr string
	}{
		"default":                   {opts: Options{}, want: EvaluatorPlan},
		"plan":                      {opts: Options{Evaluator: EvaluatorPlan}, want: EvaluatorPlan},
		"topdown asked for":         {opts: Options{Evaluator: EvaluatorTopdown}, want: EvaluatorTopdown, why: "the policy evaluator is topdown"},
		"a bundle the plan refuses": {opts: Options{PolicyDir: "testdata/unplanned"}, want: EvaluatorTopdown, why: errPlanUnsupported.Error()},
		"unknown evaluator":         {opts: Options{Evaluator: "wasm"}, loadErr: `policy evaluator "wasm": want plan or topdown`},
	} {
		t.Run(name, func(t *testing.T) {
			e, err := New(context.Background(), tc.opts)
			if tc.loadErr != "" {
				if err == nil || err.Error() != tc.loadErr {
					t.Fatalf("New: %v, want %q", err, tc.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, why := e.Current().Evaluator()
			if got != tc.want || !strings.Contains(why, tc.why) || (tc.why == "") != (why == "") {
				t.Errorf("Evaluator() = %q, %q; want %q, reason containing %q", got, why, tc.want, tc.why)
			}
			in := makeInput("executor").profile("nvme").obj()
			d, err := e.Decide(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := newEngine(t, Options{PolicyDir: tc.opts.PolicyDir, Evaluator: EvaluatorTopdown}).Decide(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ref, d, cmpQuantities); diff != "" {
				t.Errorf("decision differs from topdown's (-topdown +%s):\n%s", got, diff)
			}
		})
	}
}
