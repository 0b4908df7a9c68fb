package placement

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The annotation is written with goccy/go-json: it must be byte for byte what encoding/json writes, for
// whatever a policy puts in its rules and notes and whatever a pod sets (respected values quote them).
func TestExplanationJSONMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		e    Explanation
	}{
		{"no rules", Explanation{Bundle: "sha256:0123"}},
		{"rules and notes", Explanation{Rules: []string{"zone-follow-driver", "spot-executors"}, Bundle: "sha256:abcd", Notes: []string{"driver zone us-east-1a (capacity)"}}},
		{"respected values with quotes and HTML", Explanation{Rules: []string{"r"}, Bundle: "b", Respected: []string{`label team="a&b" set on the pod (decision: "<x>")`}}},
		{"line and paragraph separators, control bytes", Explanation{Rules: []string{"a\u2028b\u2029c", "tab\there\nnewline\x01"}, Bundle: "b"}},
		{"invalid UTF-8", Explanation{Rules: []string{"bad\xff\xfebytes"}, Bundle: "\xc3", Notes: []string{"ok é ü 日本"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.e
			if e.Rules == nil {
				e.Rules = []string{}
			}
			want, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			pod := &corev1.Pod{}
			if !Annotate(pod, tt.e) {
				t.Fatal("Annotate reported no change on a pod without the annotation")
			}
			if got := pod.Annotations[AnnotationKey]; got != string(want) {
				t.Errorf("annotation\n got %s\nwant %s", got, want)
			}
			if Annotate(pod, tt.e) {
				t.Error("Annotate changed a pod that already had the explanation")
			}
		})
	}
}
