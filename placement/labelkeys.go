package placement

import (
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// A decision's pod affinity terms and topology spread constraints may select "the pods that share this pod's
// value of label K" with matchLabelKeys (and, for pod affinity, "that do not" with mismatchLabelKeys), as in
// the Kubernetes API. The decision then names no label value (the default bundle's terms select the
// application's pods by spark-app-selector without reading the app id), so it is shared, and cached once, for
// the pods of every application. Apply resolves the keys from the pod's own labels: K=value joins the
// selector's matchLabels (K notin (value) its matchExpressions) and the key lists are dropped, so the pod
// carries the explicit selector the API server would have merged in, on every Kubernetes version, and
// recognises it when the admission is reinvoked.
//
// Unlike the API server, which ignores a key the pod does not carry (the term then selects the pods of every
// value, every application's driver say), Apply does not add such a term at all and says so: a required pod
// affinity widened that way could send the pod into another application's zone.

// resolveSelector is sel with match and mismatch resolved against labels, or a reason it cannot be. sel is
// returned as it is when there is nothing to resolve.
func resolveSelector(labels map[string]string, sel *metav1.LabelSelector, match, mismatch []string) (*metav1.LabelSelector, string) {
	if len(match) == 0 && len(mismatch) == 0 {
		return sel, ""
	}
	out := &metav1.LabelSelector{}
	if sel != nil {
		out = sel.DeepCopy()
	}
	for _, k := range match {
		v, ok := labels[k]
		if !ok {
			return nil, fmt.Sprintf("the pod has no label %s (matchLabelKeys)", k)
		}
		if have, ok := out.MatchLabels[k]; ok && have != v {
			return nil, fmt.Sprintf("the selector's %s=%s is not the pod's %s=%s (matchLabelKeys)", k, have, k, v)
		}
		if out.MatchLabels == nil {
			out.MatchLabels = make(map[string]string, len(match))
		}
		out.MatchLabels[k] = v
	}
	for _, k := range mismatch {
		v, ok := labels[k]
		if !ok {
			return nil, fmt.Sprintf("the pod has no label %s (mismatchLabelKeys)", k)
		}
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{Key: k, Operator: metav1.LabelSelectorOpNotIn, Values: []string{v}})
	}
	return out, ""
}

// resolveAffinityTerm is t with its label keys resolved from labels (see resolveSelector).
func resolveAffinityTerm(labels map[string]string, t corev1.PodAffinityTerm) (corev1.PodAffinityTerm, string) {
	sel, problem := resolveSelector(labels, t.LabelSelector, t.MatchLabelKeys, t.MismatchLabelKeys)
	if problem != "" || sel == t.LabelSelector {
		return t, problem
	}
	t.LabelSelector, t.MatchLabelKeys, t.MismatchLabelKeys = sel, nil, nil
	return t, ""
}

// resolveSpread is c with its label keys resolved from labels (see resolveSelector).
func resolveSpread(labels map[string]string, c corev1.TopologySpreadConstraint) (corev1.TopologySpreadConstraint, string) {
	sel, problem := resolveSelector(labels, c.LabelSelector, c.MatchLabelKeys, nil)
	if problem != "" || sel == c.LabelSelector {
		return c, problem
	}
	c.LabelSelector, c.MatchLabelKeys = sel, nil
	return c, ""
}

// checkLabelKeys holds matchLabelKeys and mismatchLabelKeys to what the API server accepts: a labelSelector
// to merge them into, valid label keys, no matchLabelKeys key in the labelSelector too, and no key in both
// lists.
func checkLabelKeys(vs *violations, field string, sel *metav1.LabelSelector, match, mismatch []string) {
	if len(match) == 0 && len(mismatch) == 0 {
		return
	}
	if sel == nil {
		vs.add(field+".labelSelector", "matchLabelKeys and mismatchLabelKeys need a labelSelector to merge into")
	}
	for i, k := range match {
		for _, msg := range validation.IsQualifiedName(k) {
			vs.add(fmt.Sprintf("%s.matchLabelKeys[%d]", field, i), "%q: %s", k, msg)
		}
	}
	for i, k := range mismatch {
		for _, msg := range validation.IsQualifiedName(k) {
			vs.add(fmt.Sprintf("%s.mismatchLabelKeys[%d]", field, i), "%q: %s", k, msg)
		}
	}
	var inSelector []string
	if sel != nil {
		inSelector = slices.Collect(maps.Keys(sel.MatchLabels))
		for _, r := range sel.MatchExpressions {
			inSelector = append(inSelector, r.Key)
		}
	}
	for i, k := range match {
		if slices.Contains(inSelector, k) {
			vs.add(fmt.Sprintf("%s.matchLabelKeys[%d]", field, i), "%q is in the labelSelector too", k)
		}
		if slices.Contains(mismatch, k) {
			vs.add(fmt.Sprintf("%s.matchLabelKeys[%d]", field, i), "%q is in mismatchLabelKeys too", k)
		}
	}
}
