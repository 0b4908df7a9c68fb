package placement

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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
	d.LocalDirs = &LocalDirs{Type: LocalDirsHostPath, Path: "/pv-disks/local", Volumes: []string{"spark-local-dir-1"}}
	d.InitContainers = []corev1.Container{{
		Name:         "sparkplace-chown-local-dirs",
		Image:        "busybox:1.37.0",
		Command:      []string{"sh", "-c", "script", "sparkplace-local-dirs", "/sparkplace/local-dirs", "185:185", "spark-local-dir-1"},
		Env:          []corev1.EnvVar{{Name: "POD_UID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.uid"}}}},
		VolumeMounts: []corev1.VolumeMount{{Name: LocalDirsVolume, MountPath: "/sparkplace/local-dirs"}},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr(int64(0)),
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"CHOWN"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}}
	return d
}

// withLocalDirs replaces the executor's local dirs with these volumes, each mounted by Spark's container.
func withLocalDirs(volumes ...corev1.Volume) func() *corev1.Pod {
	return func() *corev1.Pod {
		p := executorPod()
		p.Spec.Volumes = append(volumes, p.Spec.Volumes[1:]...)
		c := &p.Spec.Containers[0]
		c.VolumeMounts = c.VolumeMounts[1:]
		for i, v := range volumes {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: v.Name, MountPath: "/var/data/spark-" + string(rune('a'+i))})
		}
		return p
	}
}

func emptyDirVolume(name string, medium corev1.StorageMedium, limit string) corev1.Volume {
	v := corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: medium}}}
	if limit != "" {
		v.EmptyDir.SizeLimit = ptr(resource.MustParse(limit))
	}
	return v
}

func hostPathVolume(name, path string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: ptr(corev1.HostPathDirectoryOrCreate)}}}
}

// ephemeralSource is a generic ephemeral volume as Apply makes it.
func ephemeralSource(storageClass, size string) corev1.VolumeSource {
	return corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr(storageClass),
			VolumeMode:       ptr(corev1.PersistentVolumeFilesystem),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}}}
}

// podDirVolume is the volume of the executor's own directory under /pv-disks/local.
func podDirVolume() corev1.Volume {
	return hostPathVolume(LocalDirsVolume, "/pv-disks/local/spark-jobs/pi-4f1a2b8c9d0e1f20-exec-1")
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
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: appSelector, Operator: metav1.LabelSelectorOpNotIn, Values: []string{testApp}}},
		}
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
		"nvme executor gets a host directory of its own per local dir, names and mounts kept, and the init container first": {
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
				p.Spec.Volumes[0] = hostPathVolume("spark-local-dir-1", "/pv-disks/local/spark-jobs/pi-4f1a2b8c9d0e1f20-exec-1/spark-local-dir-1")
				p.Spec.Volumes = append(p.Spec.Volumes, podDirVolume())
				p.Spec.InitContainers = append(d.InitContainers, p.Spec.InitContainers...)
			},
			wantChanged: []Field{FieldNodeSelector, FieldTolerations, FieldAffinity, FieldVolumes, FieldInitContainers},
		},
		"two local dirs get two host paths": {
			pod:      withLocalDirs(emptyDirVolume("spark-local-dir-1", "", ""), emptyDirVolume("spark-local-dir-2", "", "")),
			decision: &Decision{LocalDirs: &LocalDirs{Type: LocalDirsHostPath, Path: "/pv-disks/local", Volumes: []string{"spark-local-dir-1", "spark-local-dir-2"}}},
			wantPod: func(p *corev1.Pod) {
				p.Spec.Volumes[0] = hostPathVolume("spark-local-dir-1", "/pv-disks/local/spark-jobs/pi-4f1a2b8c9d0e1f20-exec-1/spark-local-dir-1")
				p.Spec.Volumes[1] = hostPathVolume("spark-local-dir-2", "/pv-disks/local/spark-jobs/pi-4f1a2b8c9d0e1f20-exec-1/spark-local-dir-2")
				p.Spec.Volumes = append(p.Spec.Volumes, podDirVolume())
			},
			wantChanged: []Field{FieldVolumes},
		},
		"tmpfs and size-limited local dirs are left alone, and the annotation says so": {
			pod:      withLocalDirs(emptyDirVolume("spark-local-dir-1", corev1.StorageMediumMemory, ""), emptyDirVolume("spark-local-dir-2", "", "20Gi")),
			decision: &Decision{LocalDirs: &LocalDirs{Type: LocalDirsHostPath, Path: "/pv-disks/local"}},
			wantPod:  func(*corev1.Pod) {},
			wantRespected: []string{
				"volume spark-local-dir-1 is tmpfs (emptyDir medium Memory), asked for on purpose: left alone",
				"volume spark-local-dir-2 is an emptyDir with sizeLimit 20Gi, asked for on purpose: left alone",
			},
		},
		"a local dir listed by a policy but no longer Spark's emptyDir is not moved": {
			pod:      withLocalDirs(emptyDirVolume("spark-local-dir-1", corev1.StorageMediumMemory, "")),
			decision: nvmeDecision(),
			wantPod: func(p *corev1.Pod) {
				d := nvmeDecision()
				p.Spec.NodeSelector, p.Spec.Tolerations, p.Spec.Affinity = d.NodeSelector, d.Tolerations, zoneTerm("us-east-1b")
			},
			wantChanged:   []Field{FieldNodeSelector, FieldTolerations, FieldAffinity},
			wantRespected: []string{"volume spark-local-dir-1 is tmpfs (emptyDir medium Memory), asked for on purpose (decision: hostPath): left alone", "init container sparkplace-chown-local-dirs not added: the pod has no volume sparkplace-local-dirs"},
		},
		"ephemeral local dirs on a StorageClass, owned through fsGroup": {
			pod: withLocalDirs(emptyDirVolume("spark-local-dir-1", "", "")),
			decision: &Decision{LocalDirs: &LocalDirs{
				Type: LocalDirsEphemeral, Volumes: []string{"spark-local-dir-1"}, StorageClassName: "local-nvme", Size: "100Gi", FSGroup: ptr(int64(185)),
			}},
			wantPod: func(p *corev1.Pod) {
				p.Spec.Volumes[0].VolumeSource = ephemeralSource("local-nvme", "100Gi")
				p.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr(int64(185))}
			},
			wantChanged: []Field{FieldVolumes, FieldSecurityContext},
		},
		"the pod's own fsGroup is respected": {
			pod: func() *corev1.Pod {
				p := executorPod()
				p.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr(int64(65534))}
				return p
			},
			decision: &Decision{LocalDirs: &LocalDirs{
				Type: LocalDirsEphemeral, Volumes: []string{"spark-local-dir-1"}, StorageClassName: "local-nvme", Size: "1Gi", FSGroup: ptr(int64(185)),
			}},
			wantPod: func(p *corev1.Pod) {
				p.Spec.Volumes[0].VolumeSource = ephemeralSource("local-nvme", "1Gi")
			},
			wantChanged:   []Field{FieldVolumes},
			wantRespected: []string{"fsGroup 65534 set on the pod (decision: 185)"},
		},
		"a pod named only at creation (generateName) cannot get a host directory of its own": {
			pod: func() *corev1.Pod {
				p := executorPod()
				p.GenerateName, p.Name = "pi-exec-", ""
				return p
			},
			decision:      &Decision{LocalDirs: nvmeDecision().LocalDirs},
			wantPod:       func(*corev1.Pod) {},
			wantRespected: []string{"the pod has no name at admission (generateName), so it cannot get a host directory of its own: local dirs left alone"},
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
		"user's hostPath and PVC local dirs (seed NVMe example) are respected": {
			pod: withLocalDirs(
				corev1.Volume{Name: "spark-local-dir-1", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/pv-disks/local/blockmgr-victim"}}},
				corev1.Volume{Name: "spark-local-dir-2", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "scratch"}}},
			),
			decision: &Decision{LocalDirs: &LocalDirs{Type: LocalDirsHostPath, Path: "/pv-disks/local"}},
			wantPod:  func(*corev1.Pod) {},
			wantRespected: []string{
				"volume spark-local-dir-1 is the user's hostPath /pv-disks/local/blockmgr-victim: left alone",
				"volume spark-local-dir-2 is the user's PersistentVolumeClaim scratch: left alone",
			},
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
		// matchLabelKeys and mismatchLabelKeys (see labelkeys.go): the explicit selector the pod's labels give,
		// the pod carrying what a decision naming the app id would have given it; no term with a key the pod
		// does not carry.
		"key present: pod affinity to the pod's own application's driver": {
			pod:      executorPod,
			decision: &Decision{PodAffinity: []corev1.PodAffinityTerm{appDriverTerm()}},
			wantPod: func(p *corev1.Pod) {
				p.Spec.Affinity = requiredAffinity(corev1.PodAffinityTerm{
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{appSelector: testApp, "spark-role": "driver"}},
					TopologyKey:   "topology.kubernetes.io/zone",
				})
			},
			wantChanged: []Field{FieldAffinity},
		},
		"key present: preferred pod affinity and pool spread over the application's pods": {
			pod: executorPod,
			decision: &Decision{
				PreferredPodAffinity:      []corev1.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: appDriverTerm()}},
				TopologySpreadConstraints: []corev1.TopologySpreadConstraint{appPoolSpread()},
			},
			wantPod: func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
					Weight: 100,
					PodAffinityTerm: corev1.PodAffinityTerm{
						LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{appSelector: testApp, "spark-role": "driver"}},
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
			decision: &Decision{PodAffinity: []corev1.PodAffinityTerm{{
				LabelSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{"spark-role": "driver"}},
				MismatchLabelKeys: []string{appSelector},
				TopologyKey:       "topology.kubernetes.io/zone",
			}}},
			wantPod: func(p *corev1.Pod) {
				p.Spec.Affinity = requiredAffinity(corev1.PodAffinityTerm{LabelSelector: otherApp(), TopologyKey: "topology.kubernetes.io/zone"})
			},
			wantChanged: []Field{FieldAffinity},
		},
		"key absent: no term, never one widened to every application's driver": {
			pod: noAppLabel,
			decision: &Decision{
				PodAffinity:               []corev1.PodAffinityTerm{appDriverTerm()},
				PreferredPodAffinity:      []corev1.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: appDriverTerm()}},
				TopologySpreadConstraints: []corev1.TopologySpreadConstraint{appPoolSpread()},
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
			}(),
			wantPod:       func(*corev1.Pod) {},
			wantRespected: []string{"pod affinity with topologyKey topology.kubernetes.io/zone not added: the pod has no label spark-app-selector (mismatchLabelKeys)"},
		},
		"key already in matchLabels with the pod's value (guardrails refuse it; Apply stays exact)": {
			pod: executorPod,
			decision: func() *Decision {
				c := appPoolSpread()
				c.LabelSelector.MatchLabels[appSelector] = testApp
				return &Decision{TopologySpreadConstraints: []corev1.TopologySpreadConstraint{c}}
			}(),
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
			}(),
			wantPod:       func(*corev1.Pod) {},
			wantRespected: []string{"pod affinity with topologyKey topology.kubernetes.io/zone not added: the selector's spark-app-selector=spark-00000000000000000000000000000000 is not the pod's spark-app-selector=spark-8e3b5f0d2c4a4b6e9f1a7c3d5e2b4a6c (matchLabelKeys)"},
		},
		"the resolved term is already on the pod (a reinvoked admission)": {
			pod: func() *corev1.Pod {
				p := executorPod()
				p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{poolSpread()}
				return p
			},
			decision: &Decision{TopologySpreadConstraints: []corev1.TopologySpreadConstraint{appPoolSpread()}},
			wantPod:  func(*corev1.Pod) {},
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

			decision, err := json.Marshal(tc.decision)
			if err != nil {
				t.Fatal(err)
			}
			res := Apply(pod, tc.decision)
			if diff := cmp.Diff(want, pod); diff != "" {
				t.Errorf("pod (-want +got):\n%s", diff)
			}
			// The decision is cached and shared by other pods: Apply leaves it as it was.
			if after, _ := json.Marshal(tc.decision); string(after) != string(decision) {
				t.Errorf("Apply changed the decision:\n%s\nbecame\n%s", decision, after)
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

const (
	appSelector = "spark-app-selector"
	// testApp is executorPod's application.
	testApp = "spark-8e3b5f0d2c4a4b6e9f1a7c3d5e2b4a6c"
)

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
