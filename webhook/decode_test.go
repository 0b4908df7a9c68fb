package webhook

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"unsafe"

	gojson "github.com/goccy/go-json"
	"github.com/google/go-cmp/cmp"

	"github.com/sparkplace/sparkplace/policies"
)

// TestDecodeMatchesEncodingJSON holds the fast decoder to encoding/json's result on every fixture.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, fixture := range fixtures {
		t.Run(fixture, func(t *testing.T) {
			raw, err := json.Marshal(readFixture(t, fixture))
			if err != nil {
				t.Fatal(err)
			}
			var want, got admittedPod
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if err := gojson.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(admittedVolume{})); diff != "" {
				t.Errorf("(-encoding/json +goccy):\n%s", diff)
			}
		})
	}
}

// TestPlacingKeepsNoRequestMemory: the admitted pod's strings refer to the request's bytes
// (decodeAdmittedPod), so nothing a placement leaves behind may hold one: not the cached decision (a
// full evaluation of every fixture under each profile, and drivers whose zone is chosen, which remembers
// their profile's capacity pool), and not the placer's own maps.
func TestPlacingKeepsNoRequestMemory(t *testing.T) {
	placers := map[string]*Placer{
		"default":     newTestPlacer(t, policies.Options{}),
		"driver zone": newZonePlacer(t, zoneFleet(map[string]int{"us-east-1a": 4, "us-east-1b": 4, "us-east-1c": 4}), ""),
	}
	for name, placer := range placers {
		for _, fixture := range fixtures {
			for _, profile := range []string{"", "nvme"} {
				t.Run(name+"/"+fixture+"/"+profile, func(t *testing.T) {
					pod := readFixture(t, fixture)
					if profile != "" {
						pod = withProfile(pod, profile)
					}
					raw, err := json.Marshal(pod)
					if err != nil {
						t.Fatal(err)
					}
					admitted, err := decodeAdmittedPod(raw)
					if err != nil {
						t.Fatal(err)
					}
					out, err := placer.Place(context.Background(), admitted, pod.Namespace, "CREATE")
					if err != nil {
						t.Fatal(err)
					}
					inRaw := func(s string) bool {
						p, start := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
						return len(s) > 0 && p >= start && p < start+uintptr(len(raw))
					}
					if !inRaw(admitted.Labels[LabelRole]) {
						t.Fatal("the decoded pod's strings are copies: this test checks nothing")
					}
					forEachString(reflect.ValueOf(out.Decision), func(s string) {
						if inRaw(s) {
							t.Errorf("the cached decision holds %q, a string of the request", s)
						}
					})
					forEachString(reflect.ValueOf(out.Role), func(s string) {
						if inRaw(s) {
							t.Errorf("the outcome's role (a metric label) is %q, a string of the request", s)
						}
					})
					placer.pools.mu.Lock()
					for key := range placer.pools.ids {
						forEachString(reflect.ValueOf(key), func(s string) {
							if inRaw(s) {
								t.Errorf("the placer's pools hold %q, a string of the request", s)
							}
						})
					}
					placer.pools.mu.Unlock()
				})
			}
		}
	}
}

// forEachString calls f with every string in v, through pointers, interfaces, structs, lists and maps.
func forEachString(v reflect.Value, f func(string)) {
	switch v.Kind() {
	case reflect.String:
		f(v.String())
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			forEachString(v.Elem(), f)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			forEachString(v.Field(i), f)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			forEachString(v.Index(i), f)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			forEachString(it.Key(), f)
			forEachString(it.Value(), f)
		}
	}
}
