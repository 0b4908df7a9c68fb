package placement

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// executorPod is shaped like an executor that Spark 3.5's ExecutorPodsAllocator creates.
func executorPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "pi-4f1a2b8c9d0e1f20-exec-1",
			Namespace: "spark-jobs",
			Labels: map[string]string{
				"spark-app-selector":            "spark-8e3b5f0d2c4a4b6e9f1a7c3d5e2b4a6c",
				"spark-role":                    "executor",
				"spark-app-name":                "pi",
				"spark-version":                 "3.5.3",
				"spark-exec-id":                 "1",
				"spark-exec-resourceprofile-id": "0",
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "pi-4f1a2b8c9d0e1f20-driver", UID: "0b6f3c1e-7d2a-4e59-9a8b-1c2d3e4f5a6b", Controller: ptr(true)}},
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name:  "spark-kubernetes-executor",
				Image: "apache/spark:3.5.3",
				Args:  []string{"executor"},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "spark-local-dir-1", MountPath: "/var/data/spark-2f0c8f7e-3f5e-4c7b-9d1a-6b2e8c4d0a11"},
					{Name: "spark-conf-volume-exec", MountPath: "/opt/spark/conf"},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "spark-local-dir-1", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "spark-conf-volume-exec", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "spark-exec-4f1a2b8c9d0e1f20-conf-map"}}}},
			},
			SchedulerName: corev1.DefaultSchedulerName,
		},
	}
}

func spotDecision() *Decision {
	return &Decision{
		NodeSelector: map[string]string{"eks.amazonaws.com/capacityType": "SPOT", "noderole": "spark"},
		Tolerations: []corev1.Toleration{
			{Key: "spot", Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule},
			{Key: "noderole", Operator: corev1.TolerationOpEqual, Value: "spark", Effect: corev1.TaintEffectNoSchedule},
		},
		NodeAffinity: []corev1.NodeSelectorRequirement{{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"us-east-1b"}}},
		Rules:        []string{"capacity.executor-spot", "zone.executor-follows-driver", "isolation.spark-nodes"},
	}
}

func nvmeDecision() *Decision {
	d := spotDecision()
	d.NodeSelector["disk"] = "nvme"
	d.LocalDirs = &LocalDirs{Type: LocalDirsHostPath, Path: "/pv-disks/local"}
	d.InitContainers = []corev1.Container{{
		Name:    "sparkplace-chown-local-dirs",
		Image:   "busybox:1.36",
		Command: []string{"chown", "185:185", "/var/data/spark-2f0c8f7e-3f5e-4c7b-9d1a-6b2e8c4d0a11"},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr(int64(0)),
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"CHOWN"}},
		},
	}}
	return d
}

func TestApply(t *testing.T) {
	zoneTerm := func(zone string) *corev1.Affinity {
		return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{zone}}}}},
		}}}
	}
	driverAffinity := corev1.PodAffinityTerm{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"spark-app-selector": "spark-8e3b5f0d2c4a4b6e9f1a7c3d5e2b4a6c", "spark-role": "driver"}},
		TopologyKey:   "topology.kubernetes.io/zone",
	}
	cases := map[string]struct {
		pod           func() *corev1.Pod
		decision      *Decision
		wantPod       func(*corev1.Pod)
		wantChanged   []Field
		wantRespected []string
	}{
		"spot executor gets capacity, isolation and its driver's zone": {
			pod:      executorPod,
			decision: spotDecision(),
			wantPod: func(p *corev1.Pod) {
				p.Spec.NodeSelector = map[string]string{"eks.amazonaws.com/capacityType": "SPOT", "noderole": "spark"}
				p.Spec.Tolerations = spotDecision().Tolerations
				p.Spec.Affinity = zoneTerm("us-east-1b")
			},
			wantChanged: []Field{FieldNodeSelector, FieldTolerations, FieldAffinity},
		},
		"nvme executor gets hostPath local dirs with names and mounts kept, and the chown init container first": {
			pod: func() *corev1.Pod {
				p := executorPod()
				p.Spec.InitContainers = []corev1.Container{{Name: "user-init", Image: "busybox"}}
				return p
			},
			decision: nvmeDecision(),
			wantPod: func(p *corev1.Pod) {
				d := nvmeDecision()
				p.Spec.NodeSelector = d.NodeSelector
				p.Spec.Tolerations = d.Tolerations
				p.Spec.Affinity = zoneTerm("us-east-1b")
				p.Spec.Volumes[0].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/pv-disks/local", Type: ptr(corev1.HostPathDirectoryOrCreate)}}
				p.Spec.InitContainers = append(d.InitContainers, p.Spec.InitContainers...)
			},
			wantChanged: []Field{FieldNodeSelector, FieldTolerations, FieldAffinity, FieldVolumes, FieldInitContainers},
		},
		"user's node selector on the capacity key is respected": {
			pod: func() *corev1.Pod {
				p := executorPod()
				p.Spec.NodeSelector = map[string]string{"eks.amazonaws.com/capacityType": "ON_DEMAND"}
				return p
			},
			decision: &Decision{NodeSelector: map[string]string{"eks.amazonaws.com/capacityType": "SPOT", "noderole": "spark"}},
			wantPod: func(p *corev1.Pod) {
				p.Spec.NodeSelector = map[string]string{"eks.amazonaws.com/capacityType": "ON_DEMAND", "noderole": "spark"}
			},
			wantChanged:   []Field{FieldNodeSelector},
			wantRespected: []string{`nodeSelector eks.amazonaws.com/capacityType="ON_DEMAND" set on the pod (decision: "SPOT")`},
		},
		"user's zone affinity is respected": {
			pod: func() *corev1.Pod {
				p := executorPod()
				p.Spec.Affinity = zoneTerm("us-east-1a")
				return p
			},
			decision: &Decision{NodeAffinity: spotDecision().NodeAffinity},
			wantPod: func(p *corev1.Pod) {
				p.Spec.Affinity = zoneTerm("us-east-1a")
			},
			wantRespected: []string{"node affinity on topology.kubernetes.io/zone set on the pod (decision: In [us-east-1b])"},
		},
		"user's nodeSelector on the zone key is respected over a zone affinity": {
			pod: func() *corev1.Pod {
				p := executorPod()
				p.Spec.NodeSelector = map[string]string{"topology.kubernetes.io/zone": "us-east-1c"}
				return p
			},
			decision: &Decision{NodeAffinity: spotDecision().NodeAffinity},
			wantPod: func(p *corev1.Pod) {
				p.Spec.NodeSelector = map[string]string{"topology.kubernetes.io/zone": "us-east-1c"}
			},
			wantRespected: []string{`nodeSelector topology.kubernetes.io/zone="us-east-1c" set on the pod (decision: node affinity topology.kubernetes.io/zone In [us-east-1b])`},
		},
		"zone requirement is ANDed into every existing term": {
			pod: func() *corev1.Pod {
				p := executorPod()
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{
						{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpIn, Values: []string{"arm64"}}}},
						{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpIn, Values: []string{"amd64"}}}},
					},
				}}}
				return p
			},
			decision: &Decision{NodeAffinity: spotDecision().NodeAffinity},
			wantPod: func(p *corev1.Pod) {
				zone := spotDecision().NodeAffinity[0]
				terms := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
				for i := range terms {
					terms[i].MatchExpressions = append(terms[i].MatchExpressions, zone)
				}
			},
			wantChanged: []Field{FieldAffinity},
		},
		"executor without driver node falls back to pod affinity": {
			pod:      executorPod,
			decision: &Decision{PodAffinity: []corev1.PodAffinityTerm{driverAffinity}},
			wantPod: func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{driverAffinity}}}
			},
			wantChanged: []Field{FieldAffinity},
		},
		"user's single-AZ pod affinity (seed template) is respected": {
			pod: func() *corev1.Pod {
				p := executorPod()
				p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
					LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "spark/app", Operator: metav1.LabelSelectorOpIn, Values: []string{"emr-eks-optimized"}}}},
					TopologyKey:   "topology.kubernetes.io/zone",
				}}}}
				return p
			},
			decision:      &Decision{PodAffinity: []corev1.PodAffinityTerm{driverAffinity}},
			wantPod:       func(*corev1.Pod) {},
			wantRespected: []string{"pod affinity with topologyKey topology.kubernetes.io/zone set on the pod (decision: affinity to spark-app-selector=spark-8e3b5f0d2c4a4b6e9f1a7c3d5e2b4a6c,spark-role=driver)"},
		},
		"user's hostPath local dir (seed NVMe example) is respected": {
			pod: func() *corev1.Pod {
				p := executorPod()
				p.Spec.Volumes[0].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/mnt/nvme"}}
				return p
			},
			decision:      &Decision{LocalDirs: &LocalDirs{Type: LocalDirsHostPath, Path: "/pv-disks/local"}},
			wantPod:       func(*corev1.Pod) {},
			wantRespected: []string{"volume spark-local-dir-1 is not an emptyDir on the pod (decision: hostPath /pv-disks/local)"},
		},
		"labels, annotations, scheduler and priority class are set when absent": {
			pod: executorPod,
			decision: &Decision{
				Labels:            map[string]string{"sparkplace.io/compute": "fargate", "spark-role": "driver"},
				Annotations:       map[string]string{"example.com/team": "data"},
				SchedulerName:     "fargate-scheduler",
				PriorityClassName: "spark-executor",
			},
			wantPod: func(p *corev1.Pod) {
				p.Labels["sparkplace.io/compute"] = "fargate"
				p.Annotations = map[string]string{"example.com/team": "data"}
				p.Spec.SchedulerName = "fargate-scheduler"
				p.Spec.PriorityClassName = "spark-executor"
			},
			wantChanged:   []Field{FieldLabels, FieldAnnotations, FieldSchedulerName, FieldPriorityClassName},
			wantRespected: []string{`label spark-role="executor" set on the pod (decision: "driver")`},
		},
		"driver gets a preferred zone and executors a spread over spot pools": {
			pod: executorPod,
			decision: &Decision{
				PreferredNodeAffinity:     []corev1.PreferredSchedulingTerm{zonePreference("us-east-1c")},
				TopologySpreadConstraints: []corev1.TopologySpreadConstraint{poolSpread()},
			},
			wantPod: func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{zonePreference("us-east-1c")}}}
				p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{poolSpread()}
			},
			wantChanged: []Field{FieldAffinity, FieldTopologySpreadConstraints},
		},
		"preferred zone is added beside the user's other preferences": {
			pod: func() *corev1.Pod {
				p := executorPod()
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{archPreference()}}}
				return p
			},
			decision: &Decision{PreferredNodeAffinity: []corev1.PreferredSchedulingTerm{zonePreference("us-east-1c")}},
			wantPod: func(p *corev1.Pod) {
				p.Spec.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(p.Spec.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution, zonePreference("us-east-1c"))
			},
			wantChanged: []Field{FieldAffinity},
		},
		"user's required zone wins over the preferred zone": {
			pod: func() *corev1.Pod {
				p := executorPod()
				p.Spec.Affinity = zoneTerm("us-east-1a")
				return p
			},
			decision:      &Decision{PreferredNodeAffinity: []corev1.PreferredSchedulingTerm{zonePreference("us-east-1c")}},
			wantPod:       func(*corev1.Pod) {},
			wantRespected: []string{"node selection on topology.kubernetes.io/zone set on the pod (decision: preferred node affinity topology.kubernetes.io/zone In [us-east-1c], weight 100)"},
		},
		"user's zone nodeSelector wins over the preferred zone": {
			pod: func() *corev1.Pod {
				p := executorPod()
				p.Spec.NodeSelector = map[string]string{"topology.kubernetes.io/zone": "us-east-1b"}
				return p
			},
			decision:      &Decision{PreferredNodeAffinity: []corev1.PreferredSchedulingTerm{zonePreference("us-east-1c")}},
			wantPod:       func(*corev1.Pod) {},
			wantRespected: []string{"node selection on topology.kubernetes.io/zone set on the pod (decision: preferred node affinity topology.kubernetes.io/zone In [us-east-1c], weight 100)"},
		},
		"user's preferred zone wins over sparkplace's": {
			pod: func() *corev1.Pod {
				p := executorPod()
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{zonePreference("us-east-1a")}}}
				return p
			},
			decision:      &Decision{PreferredNodeAffinity: []corev1.PreferredSchedulingTerm{zonePreference("us-east-1c")}},
			wantPod:       func(*corev1.Pod) {},
			wantRespected: []string{"node selection on topology.kubernetes.io/zone set on the pod (decision: preferred node affinity topology.kubernetes.io/zone In [us-east-1c], weight 100)"},
		},
		"user's spread on the same key is respected": {
			pod: func() *corev1.Pod {
				p := executorPod()
				c := poolSpread()
				c.MaxSkew = 3
				p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{c}
				return p
			},
			decision:      &Decision{TopologySpreadConstraints: []corev1.TopologySpreadConstraint{poolSpread()}},
			wantPod:       func(*corev1.Pod) {},
			wantRespected: []string{"topology spread constraint on node.kubernetes.io/instance-type set on the pod (decision: maxSkew 1, ScheduleAnyway)"},
		},
		"empty decision changes nothing": {
			pod:      executorPod,
			decision: &Decision{},
			wantPod:  func(*corev1.Pod) {},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			pod := tc.pod()
			want := tc.pod()
			tc.wantPod(want)

			res := Apply(pod, tc.decision)
			if diff := cmp.Diff(want, pod); diff != "" {
				t.Errorf("pod (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantChanged, res.Changed); diff != "" {
				t.Errorf("changed fields (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRespected, res.Respected); diff != "" {
				t.Errorf("respected (-want +got):\n%s", diff)
			}

			// Reinvocation: a second application changes nothing and reports the same conflicts.
			again := Apply(pod, tc.decision)
			if diff := cmp.Diff(want, pod); diff != "" {
				t.Errorf("second Apply changed the pod (-want +got):\n%s", diff)
			}
			if len(again.Changed) != 0 {
				t.Errorf("second Apply reported changes %v", again.Changed)
			}
			if diff := cmp.Diff(tc.wantRespected, again.Respected); diff != "" {
				t.Errorf("second Apply respected (-want +got):\n%s", diff)
			}
		})
	}
}

func zonePreference(zone string) corev1.PreferredSchedulingTerm {
	return corev1.PreferredSchedulingTerm{Weight: 100, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
		{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{zone}},
	}}}
}

func archPreference() corev1.PreferredSchedulingTerm {
	return corev1.PreferredSchedulingTerm{Weight: 10, Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
		{Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpIn, Values: []string{"arm64"}},
	}}}
}

func poolSpread() corev1.TopologySpreadConstraint {
	return corev1.TopologySpreadConstraint{
		MaxSkew:           1,
		TopologyKey:       "node.kubernetes.io/instance-type",
		WhenUnsatisfiable: corev1.ScheduleAnyway,
		LabelSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{"spark-app-selector": "spark-8e3b5f0d2c4a4b6e9f1a7c3d5e2b4a6c", "spark-role": "executor"}},
	}
}

func TestAnnotate(t *testing.T) {
	pod := executorPod()
	e := Explanation{Rules: []string{"capacity.executor-spot"}, Bundle: "sha256:abc"}
	if !Annotate(pod, e) {
		t.Fatal("first Annotate reported no change")
	}
	if got, want := pod.Annotations[AnnotationKey], `{"rules":["capacity.executor-spot"],"bundle":"sha256:abc"}`; got != want {
		t.Errorf("annotation = %s, want %s", got, want)
	}
	if Annotate(pod, e) {
		t.Error("second Annotate with the same explanation reported a change")
	}
	if !Annotate(pod, Explanation{Bundle: "sha256:def"}) {
		t.Error("Annotate with a new bundle reported no change")
	}
}
