package placement

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const appSelector = "spark-app-selector"

// appDriverTerm is the default bundle's zone term while the driver is unscheduled: its application's driver,
// named by matchLabelKeys.
func appDriverTerm() corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{
		LabelSelector:  &metav1.LabelSelector{MatchLabels: map[string]string{"spark-role": "driver"}},
		MatchLabelKeys: []string{appSelector},
		TopologyKey:    "topology.kubernetes.io/zone",
	}
}

// appPoolSpread is the default bundle's spot pool spread over the application's executors.
func appPoolSpread() corev1.TopologySpreadConstraint {
	c := poolSpread()
	c.LabelSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"spark-role": "executor"}}
	c.MatchLabelKeys = []string{appSelector}
	return c
}

// TestApplyResolvesLabelKeys: matchLabelKeys and mismatchLabelKeys become the explicit selector the pod's
// labels give (the pod carries what a decision naming the app id would have given it), a term whose key the
// pod does not carry is not added, and the decision itself is left as it was (it is cached and shared).
func TestApplyResolvesLabelKeys(t *testing.T) {
	const app = "spark-8e3b5f0d2c4a4b6e9f1a7c3d5e2b4a6c"
	noAppLabel := func() *corev1.Pod {
		p := executorPod()
		delete(p.Labels, appSelector)
		return p
	}
	requiredAffinity := func(terms ...corev1.PodAffinityTerm) *corev1.Affinity {
		return &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}}
	}
	otherApp := func() *metav1.LabelSelector {
		return &metav1.LabelSelector{
			MatchLabels:      map[string]string{"spark-role": "driver"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: appSelector, Operator: metav1.LabelSelectorOpNotIn, Values: []string{app}}},
		}
	}
	cases := map[string]struct {
		pod           func() *corev1.Pod
		decision      func() *Decision
		wantPod       func(*corev1.Pod)
		wantChanged   []Field
		wantRespected []string
	}{
		"key present: pod affinity to the pod's own application's driver": {
			pod:      executorPod,
			decision: func() *Decision { return &Decision{PodAffinity: []corev1.PodAffinityTerm{appDriverTerm()}} },
			wantPod: func(p *corev1.Pod) {
				p.Spec.Affinity = requiredAffinity(corev1.PodAffinityTerm{
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{appSelector: app, "spark-role": "driver"}},
					TopologyKey:   "topology.kubernetes.io/zone",
				})
			},
			wantChanged: []Field{FieldAffinity},
		},
		"key present: preferred pod affinity and pool spread over the application's pods": {
			pod: executorPod,
			decision: func() *Decision {
				return &Decision{
					PreferredPodAffinity:      []corev1.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: appDriverTerm()}},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{appPoolSpread()},
				}
			},
			wantPod: func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
					Weight: 100,
					PodAffinityTerm: corev1.PodAffinityTerm{
						LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{appSelector: app, "spark-role": "driver"}},
						TopologyKey:   "topology.kubernetes.io/zone",
					},
				}}}}
				// Exactly the spread a decision naming the app id gives.
				p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{poolSpread()}
			},
			wantChanged: []Field{FieldAffinity, FieldTopologySpreadConstraints},
		},
		"mismatchLabelKeys: the pods of other applications": {
			pod: executorPod,
			decision: func() *Decision {
				return &Decision{PodAffinity: []corev1.PodAffinityTerm{{
					LabelSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{"spark-role": "driver"}},
					MismatchLabelKeys: []string{appSelector},
					TopologyKey:       "topology.kubernetes.io/zone",
				}}}
			},
			wantPod: func(p *corev1.Pod) {
				p.Spec.Affinity = requiredAffinity(corev1.PodAffinityTerm{LabelSelector: otherApp(), TopologyKey: "topology.kubernetes.io/zone"})
			},
			wantChanged: []Field{FieldAffinity},
		},
		"key absent: no term, never one widened to every application's driver": {
			pod: noAppLabel,
			decision: func() *Decision {
				return &Decision{
					PodAffinity:               []corev1.PodAffinityTerm{appDriverTerm()},
					PreferredPodAffinity:      []corev1.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: appDriverTerm()}},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{appPoolSpread()},
				}
			},
			wantPod: func(*corev1.Pod) {},
			wantRespected: []string{
				"pod affinity with topologyKey topology.kubernetes.io/zone not added: the pod has no label spark-app-selector (matchLabelKeys)",
				"preferred pod affinity with topologyKey topology.kubernetes.io/zone not added: the pod has no label spark-app-selector (matchLabelKeys)",
				"topology spread constraint on node.kubernetes.io/instance-type not added: the pod has no label spark-app-selector (matchLabelKeys)",
			},
		},
		"mismatch key absent: no term": {
			pod: noAppLabel,
			decision: func() *Decision {
				t := appDriverTerm()
				t.MatchLabelKeys, t.MismatchLabelKeys = nil, []string{appSelector}
				return &Decision{PodAffinity: []corev1.PodAffinityTerm{t}}
			},
			wantPod:       func(*corev1.Pod) {},
			wantRespected: []string{"pod affinity with topologyKey topology.kubernetes.io/zone not added: the pod has no label spark-app-selector (mismatchLabelKeys)"},
		},
		"key already in matchLabels with the pod's value (guardrails refuse it; Apply stays exact)": {
			pod: executorPod,
			decision: func() *Decision {
				c := appPoolSpread()
				c.LabelSelector.MatchLabels[appSelector] = app
				return &Decision{TopologySpreadConstraints: []corev1.TopologySpreadConstraint{c}}
			},
			wantPod: func(p *corev1.Pod) {
				p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{poolSpread()}
			},
			wantChanged: []Field{FieldTopologySpreadConstraints},
		},
		"key already in matchLabels with another value: the term selects no pod, it is not added": {
			pod: executorPod,
			decision: func() *Decision {
				t := appDriverTerm()
				t.LabelSelector.MatchLabels[appSelector] = "spark-00000000000000000000000000000000"
				return &Decision{PodAffinity: []corev1.PodAffinityTerm{t}}
			},
			wantPod:       func(*corev1.Pod) {},
			wantRespected: []string{"pod affinity with topologyKey topology.kubernetes.io/zone not added: the selector's spark-app-selector=spark-00000000000000000000000000000000 is not the pod's spark-app-selector=spark-8e3b5f0d2c4a4b6e9f1a7c3d5e2b4a6c (matchLabelKeys)"},
		},
		"the resolved term is already on the pod (a reinvoked admission)": {
			pod: func() *corev1.Pod {
				p := executorPod()
				p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{poolSpread()}
				return p
			},
			decision: func() *Decision {
				return &Decision{TopologySpreadConstraints: []corev1.TopologySpreadConstraint{appPoolSpread()}}
			},
			wantPod: func(*corev1.Pod) {},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			pod, want, d := tc.pod(), tc.pod(), tc.decision()
			tc.wantPod(want)
			res := Apply(pod, d)
			if diff := cmp.Diff(want, pod); diff != "" {
				t.Errorf("pod (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantChanged, res.Changed); diff != "" {
				t.Errorf("changed fields (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRespected, res.Respected); diff != "" {
				t.Errorf("respected (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.decision(), d); diff != "" {
				t.Errorf("Apply changed the decision (-before +after):\n%s", diff)
			}
			again := Apply(pod, d)
			if diff := cmp.Diff(want, pod); diff != "" {
				t.Errorf("second Apply changed the pod (-want +got):\n%s", diff)
			}
			if len(again.Changed) != 0 {
				t.Errorf("second Apply reported changes %v", again.Changed)
			}
		})
	}
}
