package policies

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// pathList is p as sorted dotted paths ("input.pod.metadata.labels[sparkplace.io/profile]").
func pathList(p *inputPaths) []string {
	var out []string
	var walk func(n *inputPaths, at string)
	walk = func(n *inputPaths, at string) {
		if n.whole {
			out = append(out, at)
			return
		}
		for name, c := range n.next {
			if strings.ContainsAny(name, "./") {
				walk(c, at+"["+name+"]")
			} else {
				walk(c, at+"."+name)
			}
		}
	}
	walk(p, "input")
	sort.Strings(out)
	return out
}

// TestDefaultBundleKeyPaths: what the default bundle's decision depends on, per role. Drivers: nothing that
// tells one application from another (no app id or name, no label but the profile's), so the drivers of
// applications of one shape share a decision. Executors: whether their driver was found, is a Spark driver and
// is scheduled, and whether the pod names its application, but neither the app id nor the driver's name or
// node (the pod affinity and spread terms select the application's pods with matchLabelKeys), so the
// executors of applications of one shape in one zone share a decision.
func TestDefaultBundleKeyPaths(t *testing.T) {
	keys := newEngine(t, Options{}).Current().keys
	common := []string{
		"input.namespace.labels[sparkplace.io/profile]", "input.namespace.name", "input.namespace.podSecurity",
		"input.pod.metadata.generateName", "input.pod.metadata.labels[sparkplace.io/profile]",
		"input.pod.spec.containers", "input.pod.spec.securityContext.fsGroup", "input.pod.spec.securityContext.runAsGroup",
		"input.pod.spec.securityContext.runAsUser", "input.pod.spec.volumes", "input.role",
	}
	want := map[string][]string{
		"driver": append(slices.Clone(common),
			"input.pod.spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution",
			"input.pod.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
			"input.pod.spec.nodeSelector[topology.kubernetes.io/zone]",
			"input.zoneChoice.reason", "input.zoneChoice.zone"),
		"executor": append(slices.Clone(common),
			"input.app.hasID", "input.driver.found", "input.driver.role", "input.driver.scheduled",
			"input.zone.relaxed", "input.zone.source", "input.zone.unschedulable", "input.zone.value"),
	}
	for role, w := range want {
		sort.Strings(w)
		if keys.paths[role] == nil {
			t.Fatalf("%s: keyed on the whole input", role)
		}
		if diff := cmp.Diff(w, pathList(keys.paths[role])); diff != "" {
			t.Errorf("%s key paths (-want +got):\n%s", role, diff)
		}
	}
}

// TestKeyHoldsWhatTheDecisionDependsOn checks the analysis against evaluation, on the default bundle:
// changing any part of an input outside its key paths (app id and name, pod name and labels, annotations,
// tolerations, another pod's fields) leaves both the key and the decision (evaluated afresh, no cache) as
// they were. For Spark's drivers and executors under each profile, with and without a known zone.
func TestKeyHoldsWhatTheDecisionDependsOn(t *testing.T) {
	e := newEngine(t, Options{CacheSize: -1})
	v := e.Current()
	ctx := context.Background()
	inputs := map[string]*Input{}
	for _, role := range []string{"driver", "executor"} {
		for _, profile := range []string{"spot", "on-demand", "nvme", "fargate", "typo"} {
			b := makeInput(role).profile(profile).localDirs().runAs(185, 185)
			if role == "executor" {
				b.driverZone("us-east-1a")
			} else {
				b.in.ZoneChoice = &ZoneChoice{Zone: "us-east-1b", Reason: "capacity"}
			}
			in := b.obj()
			in.Pod.Annotations = map[string]string{"example.com/owner": "team-a"}
			in.Pod.Name = "pi-" + role
			inputs[role+"/"+profile] = in
		}
		noZone := makeInput(role).namespaceProfile("spot").obj()
		inputs[role+"/no-zone"] = noZone
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			want, err := v.Decide(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			wantKey := keyOfInput(t, v, in)
			paths := v.keys.paths[in.Role]
			for _, variant := range variants(t, in, paths) {
				got, err := v.Decide(ctx, variant.in)
				if err != nil {
					t.Fatalf("%s: %v", variant.change, err)
				}
				if diff := cmp.Diff(want, got, cmpQuantities); diff != "" {
					t.Errorf("%s, outside the key paths, changed the decision (-before +after):\n%s", variant.change, diff)
				}
				if keyOfInput(t, v, variant.in) != wantKey {
					t.Errorf("%s, outside the key paths, changed the key", variant.change)
				}
			}
		})
	}
}

func keyOfInput(t *testing.T, v *Version, in *Input) decisionKey {
	t.Helper()
	key, err := v.keys.keyOf(in)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// jsonObject is v written as JSON and read back as a generic object, as a policy sees it.
func jsonObject(t *testing.T, v any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

type variant struct {
	change string
	in     *Input
}

// variants are copies of in, each with one member outside paths changed: a string or number changed, a
// boolean flipped, an object or array removed, or a member added to an object.
func variants(t *testing.T, in *Input, paths *inputPaths) []variant {
	doc := jsonObject(t, in)
	var out []variant
	emit := func(change string) {
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var v Input
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, variant{change, &v})
	}
	var walk func(obj map[string]any, n *inputPaths, at string)
	walk = func(obj map[string]any, n *inputPaths, at string) {
		if n != nil && n.whole {
			return
		}
		if strings.HasSuffix(at, "labels") || strings.HasSuffix(at, "annotations") {
			obj["example.com/added"] = "x"
			emit("adding " + at + "[example.com/added]")
			delete(obj, "example.com/added")
		}
		for _, k := range sortedKeys(obj) {
			var child *inputPaths
			if n != nil {
				child = n.next[k]
			}
			old := obj[k]
			if m, ok := old.(map[string]any); ok {
				walk(m, child, at+"."+k)
			}
			if child != nil {
				continue
			}
			switch x := old.(type) {
			case string:
				obj[k] = x + "-changed"
			case float64:
				obj[k] = x + 1
			case bool:
				obj[k] = !x
			default:
				delete(obj, k)
			}
			emit(fmt.Sprintf("changing %s.%s", at, k))
			obj[k] = old
		}
	}
	walk(doc, paths, "input")
	if len(out) == 0 {
		t.Fatal("no variants")
	}
	return out
}

// TestKeyFollowsTheUsersPolicy: a policy that reads more, or reads the input in ways the analysis cannot
// narrow, gets a key holding it; the cache then never hands one pod another's decision.
func TestKeyFollowsTheUsersPolicy(t *testing.T) {
	cases := map[string]struct {
		rego string
		// want is a path the driver's key must hold; "" means the whole input.
		want string
		// differ changes a driver's input so that this policy's decision changes.
		differ func(*Input)
	}{
		"the app name": {
			rego: `labels["example.com/app"] := input.app.name if role == "driver"`,
			want: "input.app.name",
			differ: func(in *Input) {
				in.App.Name = "other"
			},
		},
		"every label, by iteration": {
			rego: `labels[k] := v if { role == "driver"; some k, v in input.pod.metadata.labels; startswith(k, "example.com/") }`,
			want: "input.pod.metadata.labels",
			differ: func(in *Input) {
				in.Pod.Labels["example.com/team"] = "a"
			},
		},
		"a read before the role check": {
			rego: `labels["example.com/app"] := n if { n := input.app.name; role == "driver" }`,
			want: "input.app.name",
			differ: func(in *Input) {
				in.App.Name = "other"
			},
		},
		"the whole input": {
			rego: `annotations["example.com/input-size"] := format_int(count(json.marshal(input)), 10) if role == "driver"`,
			differ: func(in *Input) {
				in.App.ID += "0"
			},
		},
		"a member chosen by a variable": {
			rego: `labels["example.com/has-app"] := "yes" if { role == "driver"; some k; startswith(input[k].id, "spark-") }`,
			differ: func(in *Input) {
				in.App.ID = "app-1"
			},
		},
		"with": {
			rego: `labels["example.com/exec"] := "yes" if { role == "driver"; is_exec with input.role as "executor" }
is_exec if input.role == "executor"`,
			differ: func(in *Input) {
				in.Role = "executor"
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "extra.rego"), "package sparkplace.placement\n\n"+tc.rego+"\n")
			e := newEngine(t, Options{PolicyDir: dir})
			paths := e.Current().keys.paths["driver"]
			switch {
			case tc.want == "" && paths != nil:
				t.Errorf("driver keyed on %v, want the whole input", pathList(paths))
			case tc.want != "" && paths == nil:
				t.Errorf("driver keyed on the whole input, want %s in the key", tc.want)
			case tc.want != "" && !slices.Contains(pathList(paths), tc.want):
				t.Errorf("driver key paths %v lack %s", pathList(paths), tc.want)
			}
			ctx := context.Background()
			in := makeInput("driver").profile("spot").obj()
			first, err := e.Decide(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			other := makeInput("driver").profile("spot").obj()
			tc.differ(other)
			fresh := newEngine(t, Options{PolicyDir: dir, CacheSize: -1})
			want, err := fresh.Decide(ctx, other)
			if err != nil {
				t.Fatal(err)
			}
			if cmp.Equal(first, want, cmpQuantities) {
				t.Fatal("the change does not change this policy's decision: a test that cannot fail")
			}
			got, err := e.Decide(ctx, other)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, cmpQuantities); diff != "" {
				t.Errorf("the cache answered with another pod's decision (-want +got):\n%s", diff)
			}
		})
	}
}

// BenchmarkKeyOf is the cache key of an executor's input (every admission computes one).
func BenchmarkKeyOf(b *testing.B) {
	v := newEngine(b, Options{}).Current()
	in := benchInput()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.keys.keyOf(in); err != nil {
			b.Fatal(err)
		}
	}
}
