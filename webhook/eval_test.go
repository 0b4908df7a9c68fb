package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/sparkplace/sparkplace/policies"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

var fixtures = []string{"spark-3.5-driver", "spark-3.5-executor", "spark-4.0-driver", "spark-4.0-executor"}

// nvmeFixtures are Spark pods whose local dirs are not the usual ones, placed under the nvme profile: a pod
// template with a sidecar before Spark's container, a tmpfs local dir, a PVC and a user's hostPath. (Two local
// dirs with two host paths: spark-4.0-executor-nvme.)
var nvmeFixtures = []string{"spark-3.5-executor-sidecar", "spark-3.5-executor-tmpfs", "spark-3.5-executor-pvc", "spark-3.5-executor-hostpath"}

// profiles are the bundle's profiles; "" is a pod without the profile label (the default, spot).
var profiles = []string{"", "spot", "on-demand", "nvme", "fargate"}

func readFixture(t testing.TB, name string) *corev1.Pod {
	t.Helper()
	path := filepath.Join("testdata", "pods", name+".yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := DecodePod(path, data)
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

func withProfile(pod *corev1.Pod, profile string) *corev1.Pod {
	if profile != "" {
		pod.Labels["sparkplace.io/profile"] = profile
	}
	return pod
}

func newTestPlacer(t testing.TB, opts policies.Options) *Placer {
	t.Helper()
	engine, err := policies.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "cluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	state, err := ObjectsState("cluster.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return &Placer{Engine: engine, Cluster: state}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".yaml")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./webhook -run %s -update to create it)", err, t.Name())
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; go test ./webhook -update rewrites it):\n%s", path, diff)
	}
}

// TestEvaluateGolden places every Spark fixture under every profile (and under config variants that change no
// Rego) and compares the placed pods with golden files.
func TestEvaluateGolden(t *testing.T) {
	variants := map[string]policies.Options{
		"":           {},
		"-karpenter": {ConfigFile: filepath.Join("testdata", "config", "karpenter.yaml")},
		"-nvme-path": nvmePathOptions,
		"-ephemeral": nvmeEphemeralOptions,
	}
	for suffix, opts := range variants {
		placer := newTestPlacer(t, opts)
		for _, fixture := range fixtures {
			for _, profile := range profiles {
				if (suffix == "-nvme-path" || suffix == "-ephemeral") && profile != "nvme" || suffix == "-karpenter" && profile != "" {
					continue
				}
				name := fixture + "-" + profileName(profile) + suffix
				t.Run(name, func(t *testing.T) {
					pod := withProfile(readFixture(t, fixture), profile)
					var out bytes.Buffer
					if _, err := Evaluate(context.Background(), placer, pod, OutputYAML, &out); err != nil {
						t.Fatal(err)
					}
					// The bundle hash changes with every policy edit; the golden files show placements.
					got := strings.ReplaceAll(out.String(), placer.Engine.Current().Hash(), "sha256:BUNDLE")
					checkGolden(t, name, []byte(got))
				})
			}
		}
	}
	placer := newTestPlacer(t, policies.Options{})
	for _, fixture := range nvmeFixtures {
		t.Run(fixture+"-nvme", func(t *testing.T) {
			var out bytes.Buffer
			if _, err := Evaluate(context.Background(), placer, withProfile(readFixture(t, fixture), "nvme"), OutputYAML, &out); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, fixture+"-nvme", []byte(strings.ReplaceAll(out.String(), placer.Engine.Current().Hash(), "sha256:BUNDLE")))
		})
	}
}

func profileName(p string) string {
	if p == "" {
		return "default"
	}
	return p
}

// nvmePathOptions move the NVMe root to /mnt/nvme0/spark, guardrails included.
var nvmePathOptions = policies.Options{
	ConfigFile:     filepath.Join("testdata", "config", "nvme-path.yaml"),
	GuardrailsFile: filepath.Join("testdata", "guardrails", "nvme-path.yaml"),
}

// nvmeEphemeralOptions put local dirs on generic ephemeral volumes of a local-NVMe StorageClass.
var nvmeEphemeralOptions = policies.Options{ConfigFile: filepath.Join("testdata", "config", "nvme-ephemeral.yaml")}

// TestConfigChangesOutput shows that config alone (no Rego edited) moves pods to other labels and paths.
func TestConfigChangesOutput(t *testing.T) {
	cases := map[string]struct {
		opts    policies.Options
		profile string
		want    func(*corev1.Pod) string
		wantVal string
	}{
		"karpenter preset selects karpenter's capacity label": {
			opts: policies.Options{ConfigFile: filepath.Join("testdata", "config", "karpenter.yaml")}, profile: "spot",
			want:    func(p *corev1.Pod) string { return p.Spec.NodeSelector["karpenter.sh/capacity-type"] },
			wantVal: "spot",
		},
		"nvme path moves the local dirs": {
			opts: nvmePathOptions, profile: "nvme",
			want:    func(p *corev1.Pod) string { return p.Spec.Volumes[0].HostPath.Path },
			wantVal: "/mnt/nvme0/spark/spark-jobs/pi-5c0f4a93b1d2e7f8-exec-3/spark-local-dir-1",
		},
		"nvme node selector follows config": {
			opts: nvmePathOptions, profile: "nvme",
			want:    func(p *corev1.Pod) string { return p.Spec.NodeSelector["storage"] },
			wantVal: "local-nvme",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			placer := newTestPlacer(t, tc.opts)
			pod := withProfile(readFixture(t, "spark-3.5-executor"), tc.profile)
			if _, err := placer.Place(context.Background(), pod, pod.Namespace, "CREATE"); err != nil {
				t.Fatal(err)
			}
			if got := tc.want(pod); got != tc.wantVal {
				t.Errorf("got %q, want %q", got, tc.wantVal)
			}
		})
	}
}

// TestPatchIsIdempotent admits every fixture under every profile through the handler, applies its JSON patch
// to the admitted pod as the API server does, and checks that the result is the pod `policy eval` places
// (the handler decodes only part of the pod; the patch must still be right for all of it). Admitting the
// patched pod again (reinvocation) changes nothing.
func TestPatchIsIdempotent(t *testing.T) {
	type run struct {
		fixture, profile, suffix string
		opts                     policies.Options
		// edit, when set, changes the fixture first.
		edit func(*corev1.Pod)
	}
	var runs []run
	for _, fixture := range fixtures {
		for _, profile := range profiles {
			runs = append(runs, run{fixture: fixture, profile: profile})
		}
		runs = append(runs, run{fixture: fixture, profile: "nvme", suffix: "-ephemeral", opts: nvmeEphemeralOptions})
	}
	for _, fixture := range nvmeFixtures {
		runs = append(runs, run{fixture: fixture, profile: "nvme"})
	}
	// Maps placement adds keys to, already there: the patch adds only its keys, the pod's stay.
	withMaps := func(pod *corev1.Pod) {
		pod.Annotations = map[string]string{"example.com/owner": "team-a", "example.com/a~b": "c"}
		pod.Spec.NodeSelector = map[string]string{"kubernetes.io/arch": "amd64"}
	}
	for _, profile := range []string{"", "nvme", "fargate"} {
		runs = append(runs, run{fixture: "spark-3.5-executor", profile: profile, suffix: "-with-maps", edit: withMaps})
	}
	placers := map[string]*Placer{}
	for _, r := range runs {
		fixture, profile := r.fixture, r.profile
		placer := placers[r.suffix]
		if placer == nil {
			placer = newTestPlacer(t, r.opts)
			placers[r.suffix] = placer
		}
		h := &Handler{Placer: placer, Metrics: NewMetrics(nil), OnPolicyError: PolicyErrorDeny}
		{
			t.Run(fixture+"-"+profileName(profile)+r.suffix, func(t *testing.T) {
				original := withProfile(readFixture(t, fixture), profile)
				if r.edit != nil {
					r.edit(original)
				}
				want := original.DeepCopy()
				if _, err := placer.Place(context.Background(), want, want.Namespace, "CREATE"); err != nil {
					t.Fatal(err)
				}

				req := podRequest(t, original)
				resp := h.Handle(context.Background(), req)
				if !resp.Allowed || len(resp.Patch) == 0 {
					t.Fatalf("first admission: allowed %v, patch %q, result %+v", resp.Allowed, resp.Patch, resp.Result)
				}
				p, err := jsonpatch.DecodePatch(resp.Patch)
				if err != nil {
					t.Fatal(err)
				}
				patchedRaw, err := p.Apply(req.Object.Raw)
				if err != nil {
					t.Fatalf("applying the patch: %v", err)
				}
				var patched corev1.Pod
				if err := json.Unmarshal(patchedRaw, &patched); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, &patched); diff != "" {
					t.Fatalf("admitted and patched pod differs from the placed pod (-placed +patched):\n%s", diff)
				}

				again := h.Handle(context.Background(), podRequest(t, &patched))
				if !again.Allowed || len(again.Patch) != 0 {
					t.Errorf("second admission: allowed %v, patch %s; want allowed without a patch", again.Allowed, again.Patch)
				}
			})
		}
	}
}

func TestEvaluateBadInput(t *testing.T) {
	cases := map[string]struct {
		pod     string
		wantErr string
	}{
		"malformed YAML":  {pod: "apiVersion: v1\nkind: Pod\nmetadata: [name: x\n", wantErr: "bad input"},
		"malformed JSON":  {pod: `{"apiVersion": "v1", "kind": "Pod", "metadata": {`, wantErr: "bad input"},
		"not a pod":       {pod: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n", wantErr: "is a Deployment, not a Pod"},
		"two documents":   {pod: "apiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: Pod\n", wantErr: "want one pod, found 2 documents"},
		"empty":           {pod: "", wantErr: "no object"},
		"no kind":         {pod: "metadata:\n  name: x\n", wantErr: "bad input"},
		"unknown kind":    {pod: "apiVersion: example.com/v1\nkind: Widget\n", wantErr: "bad input"},
		"wrong type":      {pod: "apiVersion: v1\nkind: Pod\nspec:\n  containers: 3\n", wantErr: "bad input"},
		"not Spark's pod": {pod: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nginx\n  labels:\n    app: nginx\n", wantErr: "not a Spark pod"},
	}
	placer := newTestPlacer(t, policies.Options{})
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			pod, err := DecodePod("pod.yaml", []byte(tc.pod))
			if err == nil {
				_, err = Evaluate(context.Background(), placer, pod, OutputYAML, &bytes.Buffer{})
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), "bad input") {
				t.Errorf("error %q is not marked as bad input", err)
			}
		})
	}
}
