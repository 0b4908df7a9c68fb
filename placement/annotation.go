package placement

import (
	gojson "github.com/goccy/go-json"
	corev1 "k8s.io/api/core/v1"
)

// AnnotationKey is the pod annotation that explains a placement: the rules that fired, the policy bundle's
// hash, and what was respected.
const AnnotationKey = "sparkplace.io/placement"

// Explanation is the JSON value of AnnotationKey.
type Explanation struct {
	Rules     []string `json:"rules"`
	Bundle    string   `json:"bundle"`
	Respected []string `json:"respected,omitempty"`
	Notes     []string `json:"notes,omitempty"`
}

// JSON is e as the annotation's value.
func (e Explanation) JSON() string {
	if e.Rules == nil {
		e.Rules = []string{}
	}
	// goccy/go-json (in the build through OPA) writes what encoding/json writes, escapes included
	// (TestExplanationJSONMatchesEncodingJSON), in a fraction of the time: this runs on every admission.
	raw, err := gojson.Marshal(e)
	if err != nil { // Explanation holds only strings and slices of them: Marshal cannot fail.
		return ""
	}
	return string(raw)
}

// Annotate records e on the pod. It owns the annotation: an older value (an earlier bundle) is replaced.
// It reports whether the pod changed.
func Annotate(pod *corev1.Pod, e Explanation) bool { return AnnotateJSON(pod, e.JSON()) }

// AnnotateJSON is Annotate with the explanation's JSON (Explanation.JSON) given.
func AnnotateJSON(pod *corev1.Pod, value string) bool {
	if value == "" || pod.Annotations[AnnotationKey] == value {
		return false
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationKey] = value
	return true
}
