package policies

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// An input built from its Go values is its JSON read as Rego, at the paths of every role's decision and whole:
// for the inputs of TestPlanMatchesTopdown and for whole Spark pods (the webhook's fixtures, with their
// resources, probes and metadata), and for values JSON writes in its own way.
func TestInputValueMatchesJSON(t *testing.T) {
	inputs := planInputs()
	fixtures, err := filepath.Glob("../webhook/testdata/pods/*.yaml")
	if err != nil || len(fixtures) == 0 {
		t.Fatalf("fixtures: %v", err)
	}
	for _, f := range fixtures {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		in := makeInput("executor").obj()
		if err := yaml.Unmarshal(data, &in.Pod); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		inputs = append(inputs, in)
	}
	odd := makeInput("executor").obj()
	odd.Pod.Labels["bad"] = "a\xffb\xfe"
	odd.Pod.Spec.Volumes = []corev1.Volume{} // empty, not nil: omitted all the same
	odd.Pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}
	odd.Pod.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}}}
	odd.Pod.Spec.Containers[0].Args = []string{}
	inputs = append(inputs, odd)

	v := newEngine(t, Options{}).Current()
	pathSets := map[string]*inputPaths{"whole": wholeValue}
	for role, p := range v.keys.paths {
		pathSets[role] = p
	}
	if len(pathSets) != 3 {
		t.Fatalf("path sets: %v", pathSets)
	}
	for i, in := range inputs {
		raw, err := encodeInput(in)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := parseValue(raw)
		if err != nil {
			t.Fatal(err)
		}
		for name, paths := range pathSets {
			got, err := goValue(reflect.ValueOf(in).Elem(), paths)
			if err != nil {
				t.Fatalf("input %d, %s paths: %v", i, name, err)
			}
			if want := pruneValue(whole, paths); got.Value.Compare(want) != 0 {
				t.Errorf("input %d, %s paths:\ngot  %v\nwant %v", i, name, got, want)
			}
		}
	}
}

// pruneValue is v with only the members paths name (below a path marked whole, or where v has no members,
// all of it).
func pruneValue(v ast.Value, paths *inputPaths) ast.Value {
	obj, ok := v.(ast.Object)
	if paths.whole || !ok {
		return v
	}
	out := ast.NewObject()
	for name, next := range paths.next {
		if m := obj.Get(ast.StringTerm(name)); m != nil {
			out.Insert(ast.StringTerm(name), ast.NewTerm(pruneValue(m.Value, next)))
		}
	}
	return out
}
