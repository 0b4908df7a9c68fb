package placement

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// testGuardrails are the defaults of policies/guardrails.yaml.
var testGuardrails = Guardrails{
	AllowedHostPathPrefixes: []string{"/pv-disks/"},
	AllowedCapabilities:     []corev1.Capability{"CHOWN"},
	AllowedLabelPrefixes:    []string{"sparkplace.io/"},
}

// TestGuardrailsValidate has one row per hole a decision could use to raise a pod's privileges, reach other
// tenants' data or leave Spark's nodes (the first rows of issue 12's list, then the older checks); each is
// refused with a guardrail error naming the field.
func TestGuardrailsValidate(t *testing.T) {
	withInit := func(mutate func(*corev1.Container)) *Decision {
		d := nvmeDecision()
		mutate(&d.InitContainers[0])
		return d
	}
	with := func(mutate func(*Decision)) *Decision {
		d := nvmeDecision()
		mutate(d)
		return d
	}
	cases := map[string]struct {
		decision  *Decision
		wantField string // the field the violation names; "" for an accepted decision
		wantErr   string
	}{
		"default spot decision": {decision: spotDecision()},
		"default nvme decision": {decision: nvmeDecision()},
		"ephemeral local dirs":  {decision: &Decision{LocalDirs: &LocalDirs{Type: LocalDirsEphemeral, Volumes: []string{"spark-local-dir-1"}, StorageClassName: "local-nvme", Size: "100Gi", FSGroup: ptr(int64(185))}}},
		"fargate label":         {decision: &Decision{Labels: map[string]string{"sparkplace.io/compute": "fargate"}}},

		// Issue 12's holes.
		"root init container without drop ALL keeps the runtime's default capabilities": {
			decision:  withInit(func(c *corev1.Container) { c.SecurityContext.Capabilities.Drop = nil }),
			wantField: "initContainers[sparkplace-chown-local-dirs].securityContext.capabilities.drop", wantErr: "must drop ALL",
		},
		"init container without a securityContext": {
			decision:  withInit(func(c *corev1.Container) { c.SecurityContext = nil }),
			wantField: "initContainers[sparkplace-chown-local-dirs].securityContext", wantErr: "required",
		},
		"restartPolicy Always makes a sidecar": {
			decision:  withInit(func(c *corev1.Container) { c.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways) }),
			wantField: "initContainers[sparkplace-chown-local-dirs].restartPolicy", wantErr: "sidecar",
		},
		"seccomp Unconfined": {
			decision: withInit(func(c *corev1.Container) {
				c.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
			}),
			wantField: "initContainers[sparkplace-chown-local-dirs].securityContext.seccompProfile.type",
		},
		"SELinux spc_t": {
			decision:  withInit(func(c *corev1.Container) { c.SecurityContext.SELinuxOptions = &corev1.SELinuxOptions{Type: "spc_t"} }),
			wantField: "initContainers[sparkplace-chown-local-dirs].securityContext.seLinuxOptions.type", wantErr: `"spc_t" is not allowed`,
		},
		"env from a Secret key": {
			decision: withInit(func(c *corev1.Container) {
				c.Env = append(c.Env, corev1.EnvVar{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "aws-creds"}, Key: "secret"}}})
			}),
			wantField: "initContainers[sparkplace-chown-local-dirs].env[TOKEN].valueFrom.secretKeyRef", wantErr: "reads Secret aws-creds",
		},
		"envFrom a Secret": {
			decision: withInit(func(c *corev1.Container) {
				c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "aws-creds"}}}}
			}),
			wantField: "initContainers[sparkplace-chown-local-dirs].envFrom[0].secretRef",
		},
		"toleration Exists without a key tolerates every taint": {
			decision: with(func(d *Decision) {
				d.Tolerations = append(d.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists})
			}),
			wantField: "tolerations[2].key", wantErr: "tolerates every taint",
		},
		"control-plane node selector": {
			decision:  with(func(d *Decision) { d.NodeSelector["node-role.kubernetes.io/control-plane"] = "" }),
			wantField: "nodeSelector[node-role.kubernetes.io/control-plane]", wantErr: "control-plane",
		},
		"system-node-critical priority": {
			decision:  with(func(d *Decision) { d.PriorityClassName = "system-node-critical" }),
			wantField: "priorityClassName", wantErr: "reserved",
		},
		"label that makes the pod a Service endpoint": {
			decision:  with(func(d *Decision) { d.Labels = map[string]string{"app.kubernetes.io/name": "payments-api"} }),
			wantField: "labels[app.kubernetes.io/name]", wantErr: "outside the allowed prefixes",
		},
		"label that joins another application's driver Service": {
			decision:  with(func(d *Decision) { d.Labels = map[string]string{"spark-app-selector": "spark-0123"} }),
			wantField: "labels[spark-app-selector]",
		},
		"hostPath of / (the prefix check is in Guardrails.Check; a decision's path must still be inside one)": {
			decision:  with(func(d *Decision) { d.LocalDirs.Path = "/" }),
			wantField: "localDirs.path", wantErr: "outside the allowed prefixes",
		},

		// More ways to the same ends.
		"control-plane node affinity": {
			decision: with(func(d *Decision) {
				d.NodeAffinity = append(d.NodeAffinity, corev1.NodeSelectorRequirement{Key: "node-role.kubernetes.io/master", Operator: corev1.NodeSelectorOpExists})
			}),
			wantField: "nodeAffinity[1].key", wantErr: "control-plane",
		},
		"control-plane toleration": {
			decision: with(func(d *Decision) {
				d.Tolerations = append(d.Tolerations, corev1.Toleration{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists})
			}),
			wantField: "tolerations[2].key",
		},
		"AppArmor unconfined through an annotation": {
			decision: with(func(d *Decision) {
				d.Annotations = map[string]string{"container.apparmor.security.beta.kubernetes.io/spark-kubernetes-executor": "unconfined"}
			}),
			wantField: "annotations[container.apparmor.security.beta.kubernetes.io/spark-kubernetes-executor]",
		},
		"AppArmor Unconfined": {
			decision: withInit(func(c *corev1.Container) {
				c.SecurityContext.AppArmorProfile = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}
			}),
			wantField: "initContainers[sparkplace-chown-local-dirs].securityContext.appArmorProfile.type",
		},
		"init container mounting the pod's volume (a user's hostPath or a Secret)": {
			decision: withInit(func(c *corev1.Container) {
				c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "spark-local-dir-1", MountPath: "/data"})
			}),
			wantField: "initContainers[sparkplace-chown-local-dirs].volumeMounts[spark-local-dir-1]", wantErr: "never the pod's volumes",
		},
		"init container mounting a sub-path": {
			decision:  withInit(func(c *corev1.Container) { c.VolumeMounts[0].SubPath = ".." }),
			wantField: "initContainers[sparkplace-chown-local-dirs].volumeMounts[sparkplace-local-dirs].subPath",
		},
		"Bidirectional mount propagation": {
			decision: withInit(func(c *corev1.Container) {
				c.VolumeMounts[0].MountPropagation = ptr(corev1.MountPropagationBidirectional)
			}),
			wantField: "initContainers[sparkplace-chown-local-dirs].volumeMounts[sparkplace-local-dirs].mountPropagation",
		},
		"privileged init container": {
			decision:  withInit(func(c *corev1.Container) { c.SecurityContext.Privileged = ptr(true) }),
			wantField: "initContainers[sparkplace-chown-local-dirs].securityContext.privileged",
		},
		"privilege escalation left to the default": {
			decision:  withInit(func(c *corev1.Container) { c.SecurityContext.AllowPrivilegeEscalation = nil }),
			wantField: "initContainers[sparkplace-chown-local-dirs].securityContext.allowPrivilegeEscalation", wantErr: "must be false",
		},
		"capability beyond the allowed ones": {
			decision: withInit(func(c *corev1.Container) {
				c.SecurityContext.Capabilities.Add = append(c.SecurityContext.Capabilities.Add, "SYS_ADMIN")
			}),
			wantField: "initContainers[sparkplace-chown-local-dirs].securityContext.capabilities.add", wantErr: "SYS_ADMIN is not allowed",
		},
		"unmasked /proc": {
			decision:  withInit(func(c *corev1.Container) { c.SecurityContext.ProcMount = ptr(corev1.UnmaskedProcMount) }),
			wantField: "initContainers[sparkplace-chown-local-dirs].securityContext.procMount",
		},
		"Windows host process": {
			decision: withInit(func(c *corev1.Container) {
				c.SecurityContext.WindowsOptions = &corev1.WindowsSecurityContextOptions{HostProcess: ptr(true)}
			}),
			wantField: "initContainers[sparkplace-chown-local-dirs].securityContext.windowsOptions.hostProcess",
		},
		"host port": {
			decision:  withInit(func(c *corev1.Container) { c.Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 80}} }),
			wantField: "initContainers[sparkplace-chown-local-dirs].ports[0].hostPort",
		},
		"init container without image": {
			decision:  withInit(func(c *corev1.Container) { c.Image = "" }),
			wantField: "initContainers[sparkplace-chown-local-dirs].image",
		},
		"fsGroup 0 (the root group)": {
			decision:  &Decision{LocalDirs: &LocalDirs{Type: LocalDirsEphemeral, StorageClassName: "local-nvme", Size: "1Gi", FSGroup: ptr(int64(0))}},
			wantField: "localDirs.fsGroup",
		},
		"a volume that is not a local dir": {
			decision:  with(func(d *Decision) { d.LocalDirs.Volumes = []string{"kube-api-access-x"} }),
			wantField: "localDirs.volumes[0]",
		},
		"ephemeral size that is no quantity": {
			decision:  &Decision{LocalDirs: &LocalDirs{Type: LocalDirsEphemeral, StorageClassName: "local-nvme", Size: "lots"}},
			wantField: "localDirs.size",
		},
		"hostPath outside the prefixes": {
			decision:  with(func(d *Decision) { d.LocalDirs.Path = "/etc" }),
			wantField: "localDirs.path", wantErr: `"/etc" is outside the allowed prefixes`,
		},
		"hostPath sharing only a string prefix": {
			decision:  with(func(d *Decision) { d.LocalDirs.Path = "/pv-disks-evil" }),
			wantField: "localDirs.path", wantErr: "outside the allowed prefixes",
		},
		"hostPath escaping with dot-dot": {
			decision:  with(func(d *Decision) { d.LocalDirs.Path = "/pv-disks/../etc" }),
			wantField: "localDirs.path", wantErr: "must be an absolute, clean path",
		},
		"unknown localDirs type": {
			decision:  &Decision{LocalDirs: &LocalDirs{Type: "nfs"}},
			wantField: "localDirs.type",
		},
		"invalid label value": {
			decision:  &Decision{Labels: map[string]string{"sparkplace.io/profile": "not a value"}},
			wantField: "labels[sparkplace.io/profile]", wantErr: `invalid value "not a value"`,
		},
		"sparkplace's own annotation": {
			decision:  &Decision{Annotations: map[string]string{AnnotationKey: "{}"}},
			wantField: "annotations[sparkplace.io/placement]",
		},
		"affinity operator unknown": {
			decision:  &Decision{NodeAffinity: []corev1.NodeSelectorRequirement{{Key: "topology.kubernetes.io/zone", Operator: "Near"}}},
			wantField: "nodeAffinity[0].operator", wantErr: `unknown operator "Near"`,
		},
		"preferred zone and pool spread": {
			decision: &Decision{PreferredNodeAffinity: []corev1.PreferredSchedulingTerm{zonePreference("us-east-1a")}, TopologySpreadConstraints: []corev1.TopologySpreadConstraint{poolSpread()}},
		},
		"preferred weight out of range": {
			decision:  &Decision{PreferredNodeAffinity: []corev1.PreferredSchedulingTerm{{Weight: 101, Preference: zonePreference("a").Preference}}},
			wantField: "preferredNodeAffinity[0].weight", wantErr: "weight 101 is outside 1-100",
		},
		"preferred term that prefers every node": {
			decision:  &Decision{PreferredNodeAffinity: []corev1.PreferredSchedulingTerm{{Weight: 50}}},
			wantField: "preferredNodeAffinity[0].preference", wantErr: "without matchExpressions",
		},
		"preferred operator unknown": {
			decision:  &Decision{PreferredNodeAffinity: []corev1.PreferredSchedulingTerm{{Weight: 1, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "k", Operator: "Near"}}}}}},
			wantField: "preferredNodeAffinity[0].preference.matchExpressions[0].operator", wantErr: `unknown operator "Near"`,
		},
		"preferred control-plane nodes": {
			decision: &Decision{PreferredNodeAffinity: []corev1.PreferredSchedulingTerm{{Weight: 100, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.NodeSelectorOpExists}}}}}},
			wantField: "preferredNodeAffinity[0].preference.matchExpressions[0].key", wantErr: "control-plane",
		},
		"spread that can block scheduling": {
			decision: &Decision{TopologySpreadConstraints: []corev1.TopologySpreadConstraint{func() corev1.TopologySpreadConstraint {
				c := poolSpread()
				c.WhenUnsatisfiable = corev1.DoNotSchedule
				return c
			}()}},
			wantField: "topologySpreadConstraints[0].whenUnsatisfiable", wantErr: `"DoNotSchedule": only ScheduleAnyway is allowed`,
		},
		"spread without selector": {
			decision:  &Decision{TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{TopologyKey: "topology.kubernetes.io/zone", MaxSkew: 1, WhenUnsatisfiable: corev1.ScheduleAnyway}}},
			wantField: "topologySpreadConstraints[0].labelSelector", wantErr: "a labelSelector naming the pods to spread is required",
		},
		"spread without skew": {
			decision:  &Decision{TopologySpreadConstraints: []corev1.TopologySpreadConstraint{func() corev1.TopologySpreadConstraint { c := poolSpread(); c.MaxSkew = 0; return c }()}},
			wantField: "topologySpreadConstraints[0].maxSkew",
		},
		"spread without key": {
			decision:  &Decision{TopologySpreadConstraints: []corev1.TopologySpreadConstraint{func() corev1.TopologySpreadConstraint { c := poolSpread(); c.TopologyKey = ""; return c }()}},
			wantField: "topologySpreadConstraints[0].topologyKey",
		},
		"preferred pod affinity weight and key": {
			decision:  &Decision{PreferredPodAffinity: []corev1.WeightedPodAffinityTerm{{Weight: 0}}},
			wantField: "preferredPodAffinity[0].weight",
		},

		// matchLabelKeys as the API server accepts them.
		"the application's driver and executors by matchLabelKeys": {
			decision: &Decision{PodAffinity: []corev1.PodAffinityTerm{appDriverTerm()}, TopologySpreadConstraints: []corev1.TopologySpreadConstraint{appPoolSpread()}},
		},
		"matchLabelKeys without a labelSelector": {
			decision: &Decision{PodAffinity: []corev1.PodAffinityTerm{func() corev1.PodAffinityTerm {
				t := appDriverTerm()
				t.LabelSelector = nil
				return t
			}()}},
			wantField: "podAffinity[0].labelSelector", wantErr: "need a labelSelector",
		},
		"matchLabelKeys key that is no label key": {
			decision: &Decision{TopologySpreadConstraints: []corev1.TopologySpreadConstraint{func() corev1.TopologySpreadConstraint {
				c := appPoolSpread()
				c.MatchLabelKeys = []string{"spark app"}
				return c
			}()}},
			wantField: "topologySpreadConstraints[0].matchLabelKeys[0]", wantErr: `"spark app"`,
		},
		"matchLabelKeys key in the labelSelector too": {
			decision: &Decision{TopologySpreadConstraints: []corev1.TopologySpreadConstraint{func() corev1.TopologySpreadConstraint {
				c := appPoolSpread()
				c.LabelSelector.MatchLabels[appSelector] = "spark-8e3b5f0d2c4a4b6e9f1a7c3d5e2b4a6c"
				return c
			}()}},
			wantField: "topologySpreadConstraints[0].matchLabelKeys[0]", wantErr: "is in the labelSelector too",
		},
		"key in matchLabelKeys and mismatchLabelKeys": {
			decision: &Decision{PreferredPodAffinity: []corev1.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: func() corev1.PodAffinityTerm {
				t := appDriverTerm()
				t.MismatchLabelKeys = t.MatchLabelKeys
				return t
			}()}}},
			wantField: "preferredPodAffinity[0].podAffinityTerm.matchLabelKeys[0]", wantErr: "is in mismatchLabelKeys too",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := testGuardrails.Validate(tc.decision)
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			vs := Violations(err)
			i := slices.IndexFunc(vs, func(v *Violation) bool { return v.Field == tc.wantField })
			if i < 0 {
				t.Fatalf("Validate() = %v, want a violation of %s", err, tc.wantField)
			}
			if !strings.Contains(vs[i].Error(), "guardrail "+tc.wantField+": ") || !strings.Contains(vs[i].Reason, tc.wantErr) {
				t.Errorf("violation %q, want it to name %s and say %q", vs[i], tc.wantField, tc.wantErr)
			}
		})
	}
}

func TestGuardrailsValidateReportsEveryViolation(t *testing.T) {
	d := &Decision{
		LocalDirs:      &LocalDirs{Type: LocalDirsHostPath, Path: "/var/lib"},
		InitContainers: []corev1.Container{{Name: "x", Image: "busybox", SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)}}},
	}
	var fields []string
	for _, v := range Violations(testGuardrails.Validate(d)) {
		fields = append(fields, v.Field)
	}
	for _, want := range []string{"localDirs.path", "initContainers[x].securityContext.privileged", "initContainers[x].securityContext.capabilities.drop"} {
		if !slices.Contains(fields, want) {
			t.Errorf("violations %v, want one of %s", fields, want)
		}
	}
}

// TestGuardrailsCheck: guardrails that would not hold are refused, naming the field.
func TestGuardrailsCheck(t *testing.T) {
	cases := map[string]struct {
		g         Guardrails
		wantField string
	}{
		"defaults":                 {g: testGuardrails},
		"a dedicated NVMe mount":   {g: Guardrails{AllowedHostPathPrefixes: []string{"/mnt/nvme0/spark"}}},
		"hostPath prefix /":        {g: Guardrails{AllowedHostPathPrefixes: []string{"/"}}, wantField: "allowedHostPathPrefixes[0]"},
		"hostPath prefix //":       {g: Guardrails{AllowedHostPathPrefixes: []string{"/pv-disks/", "//"}}, wantField: "allowedHostPathPrefixes[1]"},
		"hostPath prefix /etc":     {g: Guardrails{AllowedHostPathPrefixes: []string{"/etc/"}}, wantField: "allowedHostPathPrefixes[0]"},
		"kubelet's state":          {g: Guardrails{AllowedHostPathPrefixes: []string{"/var/lib/kubelet/pods"}}, wantField: "allowedHostPathPrefixes[0]"},
		"a parent of the kubelet":  {g: Guardrails{AllowedHostPathPrefixes: []string{"/var/lib"}}, wantField: "allowedHostPathPrefixes[0]"},
		"relative prefix":          {g: Guardrails{AllowedHostPathPrefixes: []string{"pv-disks"}}, wantField: "allowedHostPathPrefixes[0]"},
		"SYS_ADMIN":                {g: Guardrails{AllowedCapabilities: []corev1.Capability{"SYS_ADMIN"}}, wantField: "allowedCapabilities[0]"},
		"empty label prefix (any)": {g: Guardrails{AllowedLabelPrefixes: []string{""}}, wantField: "allowedLabelPrefixes[0]"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			vs := Violations(tc.g.Check())
			if tc.wantField == "" {
				if len(vs) > 0 {
					t.Fatalf("Check() = %v, want nil", vs)
				}
				return
			}
			if len(vs) != 1 || vs[0].Field != tc.wantField {
				t.Fatalf("Check() = %v, want one violation of %s", vs, tc.wantField)
			}
		})
	}
}
