package placement

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestGuardrailsValidate(t *testing.T) {
	g := Guardrails{AllowedHostPathPrefixes: []string{"/pv-disks/"}, AllowedCapabilities: []corev1.Capability{"CHOWN"}}
	withInit := func(mutate func(*corev1.Container)) *Decision {
		d := nvmeDecision()
		mutate(&d.InitContainers[0])
		return d
	}
	cases := map[string]struct {
		decision *Decision
		wantErr  []string
	}{
		"default spot decision":         {decision: spotDecision()},
		"default nvme decision":         {decision: nvmeDecision()},
		"hostPath equal to the prefix":  {decision: &Decision{LocalDirs: &LocalDirs{Type: LocalDirsHostPath, Path: "/pv-disks"}}},
		"emptyDir in memory":            {decision: &Decision{LocalDirs: &LocalDirs{Type: LocalDirsEmptyDir, Medium: corev1.StorageMediumMemory}}},
		"hostPath outside the prefixes": {decision: &Decision{LocalDirs: &LocalDirs{Type: LocalDirsHostPath, Path: "/etc"}}, wantErr: []string{`localDirs hostPath "/etc" is outside the allowed prefixes`}},
		"hostPath sharing only a string prefix": {
			decision: &Decision{LocalDirs: &LocalDirs{Type: LocalDirsHostPath, Path: "/pv-disks-evil"}},
			wantErr:  []string{"outside the allowed prefixes"},
		},
		"hostPath escaping with dot-dot": {
			decision: &Decision{LocalDirs: &LocalDirs{Type: LocalDirsHostPath, Path: "/pv-disks/../etc"}},
			wantErr:  []string{"must be an absolute, clean path"},
		},
		"relative hostPath":      {decision: &Decision{LocalDirs: &LocalDirs{Type: LocalDirsHostPath, Path: "pv-disks/local"}}, wantErr: []string{"absolute, clean"}},
		"unknown localDirs type": {decision: &Decision{LocalDirs: &LocalDirs{Type: "nfs"}}, wantErr: []string{`localDirs type "nfs"`}},
		"privileged init container": {
			decision: withInit(func(c *corev1.Container) { c.SecurityContext.Privileged = ptr(true) }),
			wantErr:  []string{`init container "sparkplace-chown-local-dirs": privileged containers are not allowed`},
		},
		"privilege escalation": {
			decision: withInit(func(c *corev1.Container) { c.SecurityContext.AllowPrivilegeEscalation = ptr(true) }),
			wantErr:  []string{"allowPrivilegeEscalation is not allowed"},
		},
		"capability beyond chown": {
			decision: withInit(func(c *corev1.Container) {
				c.SecurityContext.Capabilities.Add = append(c.SecurityContext.Capabilities.Add, "SYS_ADMIN")
			}),
			wantErr: []string{"capability SYS_ADMIN is not allowed"},
		},
		"host port": {
			decision: withInit(func(c *corev1.Container) { c.Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 80}} }),
			wantErr:  []string{"host port 80 is not allowed"},
		},
		"init container without image": {
			decision: withInit(func(c *corev1.Container) { c.Image = "" }),
			wantErr:  []string{"no image"},
		},
		"invalid label value": {
			decision: &Decision{Labels: map[string]string{"sparkplace.io/profile": "not a value"}},
			wantErr:  []string{`label sparkplace.io/profile value "not a value"`},
		},
		"sparkplace's own annotation": {
			decision: &Decision{Annotations: map[string]string{AnnotationKey: "{}"}},
			wantErr:  []string{"annotation sparkplace.io/placement is sparkplace's own"},
		},
		"affinity operator unknown": {
			decision: &Decision{NodeAffinity: []corev1.NodeSelectorRequirement{{Key: "topology.kubernetes.io/zone", Operator: "Near"}}},
			wantErr:  []string{`unknown operator "Near"`},
		},
		"preferred zone and pool spread": {
			decision: &Decision{PreferredNodeAffinity: []corev1.PreferredSchedulingTerm{zonePreference("us-east-1a")}, TopologySpreadConstraints: []corev1.TopologySpreadConstraint{poolSpread()}},
		},
		"preferred weight out of range": {
			decision: &Decision{PreferredNodeAffinity: []corev1.PreferredSchedulingTerm{{Weight: 101, Preference: zonePreference("a").Preference}}},
			wantErr:  []string{"weight 101 is outside 1-100"},
		},
		"preferred term that prefers every node": {
			decision: &Decision{PreferredNodeAffinity: []corev1.PreferredSchedulingTerm{{Weight: 50}}},
			wantErr:  []string{"without matchExpressions"},
		},
		"preferred operator unknown": {
			decision: &Decision{PreferredNodeAffinity: []corev1.PreferredSchedulingTerm{{Weight: 1, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "k", Operator: "Near"}}}}}},
			wantErr:  []string{`preferred node affinity on k: unknown operator "Near"`},
		},
		"spread that can block scheduling": {
			decision: &Decision{TopologySpreadConstraints: []corev1.TopologySpreadConstraint{func() corev1.TopologySpreadConstraint {
				c := poolSpread()
				c.WhenUnsatisfiable = corev1.DoNotSchedule
				return c
			}()}},
			wantErr: []string{`whenUnsatisfiable "DoNotSchedule": only ScheduleAnyway is allowed`},
		},
		"spread without selector, skew or key": {
			decision: &Decision{TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{WhenUnsatisfiable: corev1.ScheduleAnyway}}},
			wantErr:  []string{"topologyKey", "maxSkew 0 must be at least 1", "a labelSelector naming the pods to spread is required"},
		},
		"every violation is reported": {
			decision: &Decision{
				LocalDirs:      &LocalDirs{Type: LocalDirsHostPath, Path: "/var/lib"},
				InitContainers: []corev1.Container{{Name: "x", Image: "busybox", SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)}}},
			},
			wantErr: []string{"outside the allowed prefixes", "privileged"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := g.Validate(tc.decision)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors containing %q", tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}
