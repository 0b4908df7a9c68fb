package policies

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestKeyTellsApartWhatThePolicyReads is the other half of TestKeyHoldsWhatTheDecisionDependsOn, the one the
// cache's soundness rests on: an input that differs in its JSON at any path the policy can read for its
// role gets another key (so never another input's decision). Each variant changes one value at or under a
// key path (a string, a number, a boolean, an element or member removed or added, a member absent before
// set); the key, written from the Go values (keyPlan), must differ. For the default bundle's paths per role
// and for a role keyed on the whole input.
func TestKeyTellsApartWhatThePolicyReads(t *testing.T) {
	v := newEngine(t, Options{}).Current()
	inputs := map[string]*Input{
		"executor/nvme":     benchInput(),
		"executor/no-zone":  makeInput("executor").namespaceProfile("spot").obj(),
		"driver/capacity":   makeInput("driver").profile("spot").localDirs().runAs(185, 185).obj(),
		"driver/no-profile": makeInput("driver").obj(),
	}
	inputs["driver/capacity"].ZoneChoice = &ZoneChoice{Zone: "us-east-1b", Reason: "capacity"}
	other := makeInput("executor").profile("nvme").driverZone("us-east-1a").localDirs().obj()
	other.Role = "other" // no key paths for this role: the whole input
	inputs["other role"] = other
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			paths := v.keys.paths[in.Role]
			if paths == nil {
				paths = &inputPaths{whole: true}
			}
			want := keyOfInput(t, v, in)
			tried := map[string]bool{}
			for _, variant := range variantsInside(t, in, paths) {
				tried[variant.path] = true
				if keyOfInput(t, v, variant.in) == want {
					t.Errorf("%s: the key did not change", variant.change)
				}
			}
			if paths.whole {
				if len(tried) == 0 {
					t.Fatal("no variants")
				}
				return
			}
			// Every path the policy reads got a variant: the test covers the whole key.
			for _, p := range pathList(paths) {
				if !tried[p] {
					t.Errorf("no variant changes %s", p)
				}
			}
		})
	}
}

type insideVariant struct {
	path, change string
	in           *Input
}

// variantsInside are copies of in, each with one change at or under a path of paths that shows in its
// JSON at that path (a change the Input type cannot hold, such as a member it does not have, is left out).
func variantsInside(t *testing.T, in *Input, paths *inputPaths) []insideVariant {
	t.Helper()
	doc := jsonObject(t, in)
	seen := projected(t, in, paths)
	var out []insideVariant
	// try sets the member name of obj (the object at path at) to each value in turn (absent: deleted).
	try := func(obj map[string]any, name string, at []string, values []any) {
		old, had := obj[name]
		for _, val := range values {
			if val == absent {
				delete(obj, name)
			} else {
				obj[name] = val
			}
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			var changed Input
			if json.Unmarshal(b, &changed) == nil && !reflect.DeepEqual(seen, projected(t, &changed, paths)) {
				out = append(out, insideVariant{
					path:   pathName(at),
					change: fmt.Sprintf("%s: %s -> %s", pathName(at), jsonText(old, had), jsonText(val, val != absent)),
					in:     &changed,
				})
			}
		}
		if had {
			obj[name] = old
		} else {
			delete(obj, name)
		}
	}
	var walk func(obj map[string]any, n *inputPaths, at []string)
	walk = func(obj map[string]any, n *inputPaths, at []string) {
		for _, name := range slices.Sorted(maps.Keys(n.next)) {
			child, path := n.next[name], append(slices.Clone(at), name)
			val, had := obj[name]
			sub, isObject := val.(map[string]any)
			switch {
			case !child.whole && !had:
				// Absent: set the members the policy reads inside a new object.
				obj[name] = map[string]any{}
				walk(obj[name].(map[string]any), child, path)
				delete(obj, name)
			case !child.whole && isObject:
				walk(sub, child, path)
				try(obj, name, path, []any{absent})
			default:
				try(obj, name, path, changesOf(val, had))
			}
		}
	}
	if paths.whole {
		for _, name := range slices.Sorted(maps.Keys(doc)) {
			val, had := doc[name]
			try(doc, name, []string{name}, changesOf(val, had))
		}
		return out
	}
	walk(doc, paths, nil)
	return out
}

// absent stands for a member removed.
var absent = &struct{ absent bool }{true}

// changesOf are values that differ from val (had: val is present) in one place each.
func changesOf(val any, had bool) []any {
	if !had {
		return []any{"x", true, 1.0, []any{"x"}, []any{map[string]any{}}, map[string]any{}}
	}
	out := []any{absent}
	switch x := val.(type) {
	case string:
		out = append(out, x+"-changed", "")
		if x != "" { // the same length
			out = append(out, x[:len(x)-1]+string(rune('a'+(x[len(x)-1]-'a'+1)%26)))
		}
	case float64:
		out = append(out, x+1)
	case bool:
		out = append(out, !x)
	case nil:
		out = append(out, "x", true, 1.0, []any{}, map[string]any{})
	case []any:
		out = append(out, []any{})
		if len(x) > 0 {
			out = append(out, x[:len(x)-1], append(slices.Clone(x), x[len(x)-1]))
		}
		for i, e := range x {
			for _, c := range changesOf(e, true) {
				if c != absent {
					changed := slices.Clone(x)
					changed[i] = c
					out = append(out, changed)
				}
			}
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			for _, c := range changesOf(x[k], true) {
				changed := maps.Clone(x)
				if c == absent {
					delete(changed, k)
				} else {
					changed[k] = c
				}
				out = append(out, changed)
			}
		}
	}
	return out
}

// projected is what a policy reading paths sees of in: the JSON value at each path, by path (absent when
// undefined). Below a member that is not an object (null, a list) every path is undefined; its value is kept
// all the same, which makes the test stricter than the policy.
func projected(t *testing.T, in *Input, paths *inputPaths) map[string]any {
	doc := jsonObject(t, in)
	out := map[string]any{}
	var walk func(v any, n *inputPaths, at []string)
	walk = func(v any, n *inputPaths, at []string) {
		obj, isObject := v.(map[string]any)
		if n.whole || !isObject {
			out[pathName(at)] = v
			return
		}
		for name, child := range n.next {
			if c, ok := obj[name]; ok {
				walk(c, child, append(slices.Clone(at), name))
			}
		}
	}
	walk(doc, paths, nil)
	return out
}

func pathName(path []string) string {
	var b strings.Builder
	b.WriteString("input")
	for _, name := range path {
		if strings.ContainsAny(name, "./") {
			b.WriteString("[" + name + "]")
		} else {
			b.WriteString("." + name)
		}
	}
	return b.String()
}

func jsonText(v any, present bool) string {
	if !present {
		return "absent"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestJSONFieldsAreEncodingJSONs: the members keyPlan finds in a struct are those encoding/json writes, with
// the values it writes under them: embedded structs promoted (k8s.io/api's inline TypeMeta), a shallower or
// tagged field winning a name, names two fields at one depth claim left out, "-" and unexported fields.
func TestJSONFieldsAreEncodingJSONs(t *testing.T) {
	type Inner struct {
		A string `json:"a"`
		B string
		C string `json:"c"`
		D string
	}
	type Other struct {
		OD string `json:"D"` // tagged: wins D over Inner.D at the same depth
		E  string `json:"e"`
		F  string
	}
	type Untagged struct{ F string }
	type Outer struct {
		Inner
		Other    `json:",inline"`
		Untagged       // F: Other.F and Untagged.F at one depth, neither tagged: encoding/json writes neither
		Named    Inner `json:"named"`
		C        string
		Skipped  string `json:"-"`
		Dash     string `json:"-,"`
		hidden   string
	}
	cases := map[string]any{
		"embedded, tags, conflicts": Outer{
			Inner: Inner{A: "a", B: "b", C: "c", D: "d"}, Other: Other{OD: "od", E: "e", F: "of"}, Untagged: Untagged{F: "uf"},
			Named: Inner{A: "na"}, C: "outer c", Skipped: "s", Dash: "dash", hidden: "h",
		},
		"a pod": corev1.Pod{
			TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"a": "b"}},
			Spec:       corev1.PodSpec{SchedulerName: "s"},
		},
		"a volume (inline source)": corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: "Memory"}}},
		"an input":                 *benchInput(),
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			want := jsonObject(t, value)
			fields, ok := jsonFields(reflect.TypeOf(value))
			if !ok {
				t.Fatal("not followed")
			}
			got := map[string]any{}
			v := reflect.ValueOf(value)
			for name, f := range fields {
				b, err := json.Marshal(v.FieldByIndex(f.index).Interface())
				if err != nil {
					t.Fatal(err)
				}
				var m any
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				if !emptyJSON(m) {
					got[name] = m
				}
			}
			for name, m := range want {
				if emptyJSON(m) {
					delete(want, name) // omitempty or not, an empty value tells nothing here
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("members (-encoding/json +jsonFields):\n%s", diff)
			}
		})
	}
}

// emptyJSON reports whether v (decoded JSON) is null, false, 0, "" or an empty list or object.
func emptyJSON(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return reflect.ValueOf(v).IsZero()
}
