package policies

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/placement"
)

const appID = "spark-0123456789abcdef0123456789abcdef"

// inputBuilder builds the Input the webhook gives the engine for a Spark 3.5 pod.
type inputBuilder struct{ in Input }

func makeInput(role string) *inputBuilder {
	b := &inputBuilder{in: Input{
		Operation: "CREATE",
		Role:      role,
		App:       App{ID: appID, HasID: true, Name: "pi", SparkVersion: "3.5.3"},
		Namespace: Namespace{Name: "spark-jobs"},
	}}
	b.in.Pod.Labels = map[string]string{
		"spark-app-selector": appID, "spark-role": role, "spark-app-name": "pi", "spark-version": "3.5.3",
	}
	b.in.Pod.Spec.Containers = []corev1.Container{{Name: "spark-kubernetes-" + role, Image: "apache/spark:3.5.3"}}
	if role == "executor" {
		b.in.Driver = Driver{Found: true, Name: "pi-driver", Role: "driver"}
	}
	return b
}

func (b *inputBuilder) profile(p string) *inputBuilder {
	b.in.Pod.Labels["sparkplace.io/profile"] = p
	return b
}

func (b *inputBuilder) namespaceProfile(p string) *inputBuilder {
	b.in.Namespace.Labels = map[string]string{"sparkplace.io/profile": p}
	return b
}

func (b *inputBuilder) driverZone(zone string) *inputBuilder {
	b.in.Driver.NodeName, b.in.Driver.Scheduled, b.in.Driver.Zone = "node-1", true, zone
	b.in.Zone = Zone{Value: zone, Source: "driver"}
	return b
}

// localDirs adds Spark's default local dir: emptyDir spark-local-dir-1 at /var/data/spark-<uuid>.
func (b *inputBuilder) localDirs() *inputBuilder {
	b.in.Pod.Spec.Volumes = append(b.in.Pod.Spec.Volumes, corev1.Volume{
		Name: "spark-local-dir-1", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
	})
	c := &b.in.Pod.Spec.Containers[0]
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "spark-local-dir-1", MountPath: "/var/data/spark-5f1c"})
	return b
}

func (b *inputBuilder) runAs(uid, gid int64) *inputBuilder {
	b.in.Pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: &uid, FSGroup: &gid}
	return b
}

func (b *inputBuilder) obj() *Input { return &b.in }

var (
	spotToleration      = corev1.Toleration{Key: "spot", Operator: "Equal", Value: "true", Effect: "NoSchedule"}
	isolationToleration = corev1.Toleration{Key: "noderole", Operator: "Equal", Value: "spark", Effect: "NoSchedule"}
	fargateToleration   = corev1.Toleration{Key: "eks.amazonaws.com/compute-type", Operator: "Equal", Value: "fargate", Effect: "NoSchedule"}
	zoneA               = []corev1.NodeSelectorRequirement{{Key: "topology.kubernetes.io/zone", Operator: "In", Values: []string{"us-east-1a"}}}
	driverAffinity      = []corev1.PodAffinityTerm{{
		LabelSelector:  &metav1.LabelSelector{MatchLabels: map[string]string{"spark-role": "driver"}},
		MatchLabelKeys: []string{"spark-app-selector"},
		TopologyKey:    "topology.kubernetes.io/zone",
	}}
)

// driverProtection and poolSpread are what every node-bound driver and every spot executor get.
var (
	driverProtection = map[string]string{"cluster-autoscaler.kubernetes.io/safe-to-evict": "false", "karpenter.sh/do-not-disrupt": "true"}
	poolSpread       = []corev1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: "node.kubernetes.io/instance-type", WhenUnsatisfiable: corev1.ScheduleAnyway,
		LabelSelector:  &metav1.LabelSelector{MatchLabels: map[string]string{"spark-role": "executor"}},
		MatchLabelKeys: []string{"spark-app-selector"},
	}}
)

// scriptArg stands for the init container's shell script in expected commands (cmpScript); what the script
// does is tested by running it (webhook's TestTwoTenantsOnOneNode).
const scriptArg = "<script>"

// cmpScript compares string slices with any shell script (set -eu ...) taken as scriptArg.
var cmpScript = cmp.Comparer(func(a, b []string) bool {
	norm := func(s []string) []string {
		out := slices.Clone(s)
		for i, v := range out {
			if strings.HasPrefix(v, "set -eu\n") {
				out[i] = scriptArg
			}
		}
		return out
	}
	return slices.Equal(norm(a), norm(b))
})

// chownInit is the init container that prepares the pod's hostPath local dirs for owner.
func chownInit(owner string, volumes ...string) []corev1.Container {
	return []corev1.Container{{
		Name:            "sparkplace-chown-local-dirs",
		Image:           "busybox:1.37.0",
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         append([]string{"sh", "-c", scriptArg, "sparkplace-local-dirs", "/sparkplace/local-dirs", owner}, volumes...),
		Env: []corev1.EnvVar{{Name: "POD_UID", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.uid"},
		}}},
		VolumeMounts: []corev1.VolumeMount{{Name: "sparkplace-local-dirs", MountPath: "/sparkplace/local-dirs"}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                new(int64(0)),
			RunAsNonRoot:             new(false),
			AllowPrivilegeEscalation: new(false),
			ReadOnlyRootFilesystem:   new(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"CHOWN"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}}
}

func newEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	e, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// cmpQuantities compares resource quantities by value (a parsed "10m" and a decoded one differ in cache fields).
var cmpQuantities = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

// boundedPin is the label of an executor pinned to its zone under the default zone.mode and bound.
var boundedPin = map[string]string{"sparkplace.io/zone-strictness": "bounded-2m"}

func TestDecide(t *testing.T) {
	cases := map[string]struct {
		opts  Options
		input *Input
		want  *placement.Decision
	}{
		"spot driver on on-demand capacity": {
			input: makeInput("driver").profile("spot").obj(),
			want: &placement.Decision{
				NodeSelector: map[string]string{"eks.amazonaws.com/capacityType": "ON_DEMAND", "noderole": "spark"},
				Tolerations:  []corev1.Toleration{isolationToleration},
				Annotations:  driverProtection,
				Rules:        []string{"autoscaler.driver-not-evicted", "capacity.driver-on-demand", "isolation.spark-nodes"},
			},
		},
		"spot is the default profile": {
			input: makeInput("driver").obj(),
			want: &placement.Decision{
				NodeSelector: map[string]string{"eks.amazonaws.com/capacityType": "ON_DEMAND", "noderole": "spark"},
				Tolerations:  []corev1.Toleration{isolationToleration},
				Annotations:  driverProtection,
				Rules:        []string{"autoscaler.driver-not-evicted", "capacity.driver-on-demand", "isolation.spark-nodes"},
			},
		},
		"spot executor with known driver zone": {
			input: makeInput("executor").profile("spot").driverZone("us-east-1a").obj(),
			want: &placement.Decision{
				Labels:                    boundedPin,
				NodeSelector:              map[string]string{"eks.amazonaws.com/capacityType": "SPOT", "noderole": "spark"},
				Tolerations:               []corev1.Toleration{isolationToleration, spotToleration},
				NodeAffinity:              zoneA,
				TopologySpreadConstraints: poolSpread,
				Rules:                     []string{"capacity.executor-spot", "isolation.spark-nodes", "spot.executors-spread-over-pools", "zone.executor-follows-driver"},
			},
		},
		"spot executor without driver zone falls back to pod affinity": {
			input: makeInput("executor").profile("spot").obj(),
			want: &placement.Decision{
				Labels:                    boundedPin,
				NodeSelector:              map[string]string{"eks.amazonaws.com/capacityType": "SPOT", "noderole": "spark"},
				Tolerations:               []corev1.Toleration{isolationToleration, spotToleration},
				PodAffinity:               driverAffinity,
				TopologySpreadConstraints: poolSpread,
				Rules:                     []string{"capacity.executor-spot", "isolation.spark-nodes", "spot.executors-spread-over-pools", "zone.executor-affinity-fallback"},
			},
		},
		"on-demand driver": {
			input: makeInput("driver").profile("on-demand").obj(),
			want: &placement.Decision{
				NodeSelector: map[string]string{"eks.amazonaws.com/capacityType": "ON_DEMAND", "noderole": "spark"},
				Tolerations:  []corev1.Toleration{isolationToleration},
				Annotations:  driverProtection,
				Rules:        []string{"autoscaler.driver-not-evicted", "capacity.driver-on-demand", "isolation.spark-nodes"},
			},
		},
		"on-demand executor from the namespace label": {
			input: makeInput("executor").namespaceProfile("on-demand").driverZone("us-east-1a").obj(),
			want: &placement.Decision{
				Labels:       boundedPin,
				NodeSelector: map[string]string{"eks.amazonaws.com/capacityType": "ON_DEMAND", "noderole": "spark"},
				Tolerations:  []corev1.Toleration{isolationToleration},
				NodeAffinity: zoneA,
				Rules:        []string{"capacity.executor-on-demand", "isolation.spark-nodes", "zone.executor-follows-driver"},
			},
		},
		"on-demand executor without driver zone": {
			input: makeInput("executor").profile("on-demand").obj(),
			want: &placement.Decision{
				Labels:       boundedPin,
				NodeSelector: map[string]string{"eks.amazonaws.com/capacityType": "ON_DEMAND", "noderole": "spark"},
				Tolerations:  []corev1.Toleration{isolationToleration},
				PodAffinity:  driverAffinity,
				Rules:        []string{"capacity.executor-on-demand", "isolation.spark-nodes", "zone.executor-affinity-fallback"},
			},
		},
		"nvme driver with local dirs": {
			input: makeInput("driver").profile("nvme").localDirs().obj(),
			want: &placement.Decision{
				NodeSelector:   map[string]string{"eks.amazonaws.com/capacityType": "ON_DEMAND", "noderole": "spark", "disk": "nvme"},
				Tolerations:    []corev1.Toleration{isolationToleration},
				LocalDirs:      &placement.LocalDirs{Type: placement.LocalDirsHostPath, Path: "/pv-disks/local", Volumes: []string{"spark-local-dir-1"}},
				InitContainers: chownInit("185:185", "spark-local-dir-1"),
				Annotations:    driverProtection,
				Rules:          []string{"autoscaler.driver-not-evicted", "capacity.driver-on-demand", "isolation.spark-nodes", "nvme.chown-init", "nvme.hostpath-local-dirs", "nvme.nodes"},
			},
		},
		"nvme executor with known driver zone, EMR uid": {
			input: makeInput("executor").profile("nvme").driverZone("us-east-1a").localDirs().runAs(999, 65534).obj(),
			want: &placement.Decision{
				Labels:                    boundedPin,
				NodeSelector:              map[string]string{"eks.amazonaws.com/capacityType": "SPOT", "noderole": "spark", "disk": "nvme"},
				Tolerations:               []corev1.Toleration{isolationToleration, spotToleration},
				NodeAffinity:              zoneA,
				LocalDirs:                 &placement.LocalDirs{Type: placement.LocalDirsHostPath, Path: "/pv-disks/local", Volumes: []string{"spark-local-dir-1"}},
				InitContainers:            chownInit("999:65534", "spark-local-dir-1"),
				TopologySpreadConstraints: poolSpread,
				Rules: []string{"capacity.executor-spot", "isolation.spark-nodes", "nvme.chown-init",
					"nvme.hostpath-local-dirs", "nvme.nodes", "spot.executors-spread-over-pools", "zone.executor-follows-driver"},
			},
		},
		"nvme executor without driver zone and without local dirs: no NVMe to ask for": {
			input: makeInput("executor").profile("nvme").obj(),
			want: &placement.Decision{
				Labels:                    boundedPin,
				NodeSelector:              map[string]string{"eks.amazonaws.com/capacityType": "SPOT", "noderole": "spark"},
				Tolerations:               []corev1.Toleration{isolationToleration, spotToleration},
				PodAffinity:               driverAffinity,
				TopologySpreadConstraints: poolSpread,
				Rules:                     []string{"capacity.executor-spot", "isolation.spark-nodes", "spot.executors-spread-over-pools", "zone.executor-affinity-fallback"},
			},
		},
		"fargate driver": {
			input: makeInput("driver").profile("fargate").localDirs().obj(),
			want: &placement.Decision{
				NodeSelector: map[string]string{"eks.amazonaws.com/compute-type": "fargate"},
				Labels:       map[string]string{"sparkplace.io/compute": "fargate"},
				Tolerations:  []corev1.Toleration{fargateToleration},
				Rules:        []string{"fargate.profile"},
			},
		},
		"fargate executor with known driver zone gets no node-bound change": {
			input: makeInput("executor").profile("fargate").driverZone("us-east-1a").localDirs().obj(),
			want: &placement.Decision{
				NodeSelector: map[string]string{"eks.amazonaws.com/compute-type": "fargate"},
				Labels:       map[string]string{"sparkplace.io/compute": "fargate"},
				Tolerations:  []corev1.Toleration{fargateToleration},
				Rules:        []string{"fargate.profile"},
			},
		},
		"fargate executor without driver zone": {
			input: makeInput("executor").profile("fargate").obj(),
			want: &placement.Decision{
				NodeSelector: map[string]string{"eks.amazonaws.com/compute-type": "fargate"},
				Labels:       map[string]string{"sparkplace.io/compute": "fargate"},
				Tolerations:  []corev1.Toleration{fargateToleration},
				Rules:        []string{"fargate.profile"},
			},
		},
		"unknown profile is denied": {
			input: makeInput("executor").profile("gpu").obj(),
			want: &placement.Decision{Deny: []string{`unknown sparkplace profile "gpu" (from the pod label sparkplace.io/profile); ` +
				`valid profiles: fargate, nvme, on-demand, spot. Set the label to one of them, e.g. ` +
				`--conf spark.kubernetes.driver.label.sparkplace.io/profile=spot and --conf spark.kubernetes.executor.label.sparkplace.io/profile=spot`}},
		},
		"a pod that is not a driver or executor gets an empty decision": {
			input: makeInput("shuffle-service").obj(),
			want:  &placement.Decision{},
		},
		"karpenter preset from config, no Rego edited": {
			opts:  Options{ConfigFile: "testdata/karpenter.yaml"},
			input: makeInput("executor").profile("spot").driverZone("us-east-1a").obj(),
			want: &placement.Decision{
				Labels:                    boundedPin,
				NodeSelector:              map[string]string{"karpenter.sh/capacity-type": "spot", "noderole": "spark"},
				Tolerations:               []corev1.Toleration{isolationToleration, spotToleration},
				NodeAffinity:              zoneA,
				TopologySpreadConstraints: poolSpread,
				Rules:                     []string{"capacity.executor-spot", "isolation.spark-nodes", "spot.executors-spread-over-pools", "zone.executor-follows-driver"},
			},
		},
		"karpenter preset for a driver": {
			opts:  Options{ConfigFile: "testdata/karpenter.yaml"},
			input: makeInput("driver").obj(),
			want: &placement.Decision{
				NodeSelector: map[string]string{"karpenter.sh/capacity-type": "on-demand", "noderole": "spark"},
				Tolerations:  []corev1.Toleration{isolationToleration},
				Annotations:  driverProtection,
				Rules:        []string{"autoscaler.driver-not-evicted", "capacity.driver-on-demand", "isolation.spark-nodes"},
			},
		},
		"another NVMe path and node selector from a JSON config": {
			opts:  Options{ConfigFile: "testdata/nvme-path.json"},
			input: makeInput("driver").profile("nvme").localDirs().obj(),
			want: &placement.Decision{
				NodeSelector:   map[string]string{"eks.amazonaws.com/capacityType": "ON_DEMAND", "noderole": "spark", "storage": "local-nvme"},
				Tolerations:    []corev1.Toleration{isolationToleration},
				LocalDirs:      &placement.LocalDirs{Type: placement.LocalDirsHostPath, Path: "/mnt/nvme0/spark", Volumes: []string{"spark-local-dir-1"}},
				InitContainers: chownInit("185:185", "spark-local-dir-1"),
				Annotations:    driverProtection,
				Rules:          []string{"autoscaler.driver-not-evicted", "capacity.driver-on-demand", "isolation.spark-nodes", "nvme.chown-init", "nvme.hostpath-local-dirs", "nvme.nodes"},
			},
		},
		"policy dir replaces an embedded file": {
			opts:  Options{PolicyDir: "testdata/replace"},
			input: makeInput("driver").obj(),
			want: &placement.Decision{
				NodeSelector: map[string]string{"eks.amazonaws.com/capacityType": "ON_DEMAND", "workload": "batch"},
				Annotations:  driverProtection,
				Rules:        []string{"autoscaler.driver-not-evicted", "capacity.driver-on-demand", "isolation.batch-nodes"},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEngine(t, tc.opts)
			got, err := e.Decide(context.Background(), tc.input)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmpQuantities, cmpScript); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	cases := map[string]struct {
		opts    Options
		wantErr []string
	}{
		"policy with a syntax error names file and line": {
			opts:    Options{PolicyDir: "testdata/broken"},
			wantErr: []string{filepath.Join("testdata", "broken", "zone.rego") + ":7: rego_parse_error:"},
		},
		"typos in input and config paths are type errors with file and line": {
			opts: Options{PolicyDir: "testdata/pathtypo"},
			wantErr: []string{
				filepath.Join("testdata", "pathtypo", "typos.rego") + ":4: rego_type_error: undefined ref: input.driver.zonee",
				filepath.Join("testdata", "pathtypo", "typos.rego") + ":6: rego_type_error: undefined ref: data.sparkplace.placement.cfg.zone.topologyKy",
			},
		},
		"input typo in a package without METADATA": {
			opts:    Options{PolicyDir: "testdata/ownpackage"},
			wantErr: []string{filepath.Join("testdata", "ownpackage", "helpers.rego") + ":4: rego_type_error: undefined ref: input.rol"},
		},
		"config syntax error names file and line": {
			opts:    Options{ConfigFile: "testdata/bad-syntax.yaml"},
			wantErr: []string{"config testdata/bad-syntax.yaml:", "line 3"},
		},
		"config key typo": {
			opts:    Options{ConfigFile: "testdata/typo.yaml"},
			wantErr: []string{"config testdata/typo.yaml: unknown key isolation.enable (known: enabled, nodeSelector, tolerations)"},
		},
		"config value of the wrong type": {
			opts:    Options{ConfigFile: "testdata/wrong-type.yaml"},
			wantErr: []string{"isolation.enabled: want a boolean, got a string"},
		},
		"missing policy dir": {
			opts:    Options{PolicyDir: "testdata/does-not-exist"},
			wantErr: []string{"reading policy dir", "does-not-exist"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := New(context.Background(), tc.opts)
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestCompileErrorIsTyped(t *testing.T) {
	_, err := New(context.Background(), Options{PolicyDir: "testdata/broken"})
	var ce *CompileError
	if !errors.As(err, &ce) || len(ce.Errors) == 0 || ce.Errors[0].Location.Row != 7 {
		t.Fatalf("want a *CompileError at line 7, got %v", err)
	}
}

func TestDecideErrors(t *testing.T) {
	cases := map[string]struct {
		opts     Options
		input    *Input
		wantErr  string
		wantIsDL bool
	}{
		"conflicting values are a runtime error": {
			opts:    Options{PolicyDir: "testdata/conflict"},
			input:   makeInput("driver").obj(),
			wantErr: "eval_conflict_error",
		},
		"a key placement.Decision does not have is rejected by name": {
			opts:    Options{PolicyDir: "testdata/unknownkey"},
			input:   makeInput("driver").obj(),
			wantErr: `unknown field "hostNetwork"`,
		},
		"evaluation past the deadline stops": {
			opts:     Options{PolicyDir: "testdata/slow", Timeout: 50 * time.Millisecond},
			input:    makeInput("driver").obj(),
			wantErr:  "stopped after 50ms",
			wantIsDL: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEngine(t, tc.opts)
			start := time.Now()
			_, err := e.Decide(context.Background(), tc.input)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Decide error = %v, want it to contain %q", err, tc.wantErr)
			}
			if tc.wantIsDL {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
				}
				if elapsed := time.Since(start); elapsed > time.Second {
					t.Errorf("Decide took %s, want it stopped near the 50ms deadline", elapsed)
				}
			}
		})
	}
}

func TestDecisionCache(t *testing.T) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	in := makeInput("executor").profile("nvme").driverZone("us-east-1a").localDirs().obj()
	first, err := e.Decide(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.current.Load().cache.lru.Len(); n != 1 {
		t.Fatalf("cache holds %d decisions, want 1", n)
	}
	// The caller owns its copy: mutating it must not reach the next caller.
	want, _ := e.Decide(ctx, in)
	first.NodeSelector["disk"] = "changed"
	first.Tolerations[0].Key = "changed"
	first.InitContainers[0].Command[0] = "rm"
	first.InitContainers[0].SecurityContext.Capabilities.Add[0] = "SYS_ADMIN"
	second, err := e.Decide(ctx, makeInput("executor").profile("nvme").driverZone("us-east-1a").localDirs().obj())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, second, cmpQuantities); diff != "" {
		t.Errorf("cached decision changed by a caller (-want +got):\n%s", diff)
	}
	if n := e.current.Load().cache.lru.Len(); n != 1 {
		t.Errorf("an equal input added a cache entry: %d entries", n)
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(config, "preset: eks\n")
	var mu sync.Mutex
	var reports []error
	e := newEngine(t, Options{PolicyDir: dir, ConfigFile: config, OnReload: func(_ string, err error) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, err)
	}})
	ctx := context.Background()
	in := makeInput("driver").obj()
	capacity := func() string {
		t.Helper()
		d, err := e.Decide(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return d.NodeSelector["eks.amazonaws.com/capacityType"] + d.NodeSelector["karpenter.sh/capacity-type"]
	}
	if got := capacity(); got != "ON_DEMAND" {
		t.Fatalf("before reload: capacity %q", got)
	}
	oldHash := e.Hash()

	if err := e.Reload(ctx); err != nil || len(reports) != 0 {
		t.Fatalf("reload without change: err %v, reports %v", err, reports)
	}

	write(config, "preset: karpenter\n")
	if err := e.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := capacity(); got != "on-demand" {
		t.Errorf("after reload the cached decision is still served: capacity %q", got)
	}
	goodHash := e.Hash()
	if goodHash == oldHash {
		t.Errorf("hash did not change with the config")
	}

	// A broken policy keeps the last good version in service.
	write(filepath.Join(dir, "zone.rego"), "package sparkplace.placement\nzone := {\n")
	err := e.Reload(ctx)
	if err == nil || !strings.Contains(err.Error(), "zone.rego:3: rego_parse_error") {
		t.Errorf("Reload of a broken policy: %v", err)
	}
	if e.Hash() != goodHash || capacity() != "on-demand" {
		t.Errorf("a failed reload replaced the last good version")
	}
	if len(reports) != 2 || reports[0] != nil || reports[1] == nil {
		t.Errorf("OnReload reports = %v, want [nil, error]", reports)
	}
}

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(config, []byte("preset: eks\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan error, 10)
	e := newEngine(t, Options{ConfigFile: config, PollInterval: 10 * time.Millisecond,
		OnReload: func(_ string, err error) { reloaded <- err }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Watch(ctx)

	if err := os.WriteFile(config, []byte("preset: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reloaded:
		if err == nil {
			t.Fatal("a broken config reloaded without error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not notice the change")
	}
	if err := os.WriteFile(config, []byte("preset: karpenter\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not notice the fix")
	}
	d, err := e.Decide(ctx, makeInput("driver").obj())
	if err != nil {
		t.Fatal(err)
	}
	if got := d.NodeSelector["karpenter.sh/capacity-type"]; got != "on-demand" {
		t.Errorf("driver nodeSelector %v after the watch reloaded preset: karpenter", d.NodeSelector)
	}
}

func TestConfigDefaults(t *testing.T) {
	e := newEngine(t, Options{})
	want := placement.Guardrails{
		AllowedHostPathPrefixes: []string{"/pv-disks/"},
		AllowedCapabilities:     []corev1.Capability{"CHOWN"},
		AllowedLabelPrefixes:    []string{"sparkplace.io/"},
	}
	if diff := cmp.Diff(want, e.Current().Guardrails()); diff != "" {
		t.Errorf("guardrails (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(e.Hash(), "sha256:") || len(e.Hash()) != len("sha256:")+64 {
		t.Errorf("Hash() = %q", e.Hash())
	}
	if newEngine(t, Options{}).Hash() != e.Hash() {
		t.Error("Hash() is not stable for the same content")
	}
}

// TestCopyDecisionCoversEveryField fails when placement.Decision gains a field copyDecision does not copy.
func TestCopyDecisionCoversEveryField(t *testing.T) {
	full := &placement.Decision{
		NodeSelector:          map[string]string{"a": "b"},
		Tolerations:           []corev1.Toleration{spotToleration},
		NodeAffinity:          zoneA,
		PodAffinity:           driverAffinity,
		PreferredNodeAffinity: []corev1.PreferredSchedulingTerm{{Weight: 100, Preference: corev1.NodeSelectorTerm{MatchExpressions: zoneA}}},
		TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "node.kubernetes.io/instance-type", WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"spark-app-selector": "x"}}}},
		Labels:               map[string]string{"c": "d"},
		Annotations:          map[string]string{"e": "f"},
		LocalDirs:            &placement.LocalDirs{Type: placement.LocalDirsEphemeral, Volumes: []string{"spark-local-dir-1"}, FSGroup: ptr[int64](185)},
		InitContainers:       chownInit("1:1", "spark-local-dir-1"),
		SchedulerName:        "s",
		PriorityClassName:    "p",
		Deny:                 []string{"no"},
		Rules:                []string{"r"},
		Notes:                []string{"n"},
		PreferredPodAffinity: []corev1.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: driverAffinity[0]}},
	}
	if n := reflect.TypeFor[placement.Decision]().NumField(); n != 16 {
		t.Fatalf("placement.Decision has %d fields; update copyDecision and this test", n)
	}
	if diff := cmp.Diff(full, copyDecision(full), cmpQuantities); diff != "" {
		t.Errorf("copy differs (-want +got):\n%s", diff)
	}
}
