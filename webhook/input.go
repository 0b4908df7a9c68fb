package webhook

import (
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/sparkplace/sparkplace/cluster"
	"github.com/sparkplace/sparkplace/placement"
	"github.com/sparkplace/sparkplace/policies"
)

// Spark's pod labels (see Spark's Constants.scala).
const (
	LabelRole   = cluster.LabelRole
	LabelAppID  = cluster.LabelAppID
	LabelApp    = "spark-app-name"
	LabelVer    = "spark-version"
	LabelExecID = "spark-exec-id"

	RoleDriver   = cluster.RoleDriver
	RoleExecutor = cluster.RoleExecutor
)

// sparkRole returns the pod's Spark role, or "" for a pod sparkplace does not place.
func sparkRole(pod *corev1.Pod) string {
	// The constants, not the label's value, which refers to the request's bytes (decodeAdmittedPod): the
	// role names metric series that outlive the request.
	switch pod.Labels[LabelRole] {
	case RoleDriver:
		return RoleDriver
	case RoleExecutor:
		return RoleExecutor
	}
	return ""
}

// policyView reduces the pod to what placement depends on (see policies.Input): every executor of one
// application gets the same view, so they share one cached decision.
func policyView(pod *corev1.Pod) corev1.Pod {
	view := corev1.Pod{}
	view.Namespace = pod.Namespace
	if pod.Name == "" {
		// Only whether the pod will have a name when placed matters (a host directory per pod needs it).
		view.GenerateName = pod.GenerateName
	}
	view.Annotations = pod.Annotations
	if len(pod.Labels) > 0 {
		view.Labels = make(map[string]string, len(pod.Labels))
		for k, v := range pod.Labels {
			if k != LabelExecID {
				view.Labels[k] = v
			}
		}
	}
	spec := &view.Spec
	spec.NodeSelector = pod.Spec.NodeSelector
	spec.Affinity = pod.Spec.Affinity
	spec.Tolerations = pod.Spec.Tolerations
	spec.TopologySpreadConstraints = pod.Spec.TopologySpreadConstraints
	spec.SecurityContext = pod.Spec.SecurityContext
	spec.SchedulerName = pod.Spec.SchedulerName
	spec.PriorityClassName = pod.Spec.PriorityClassName
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, placement.LocalDirVolumePrefix) {
			spec.Volumes = append(spec.Volumes, v)
		}
	}
	spec.Containers = containerViews(pod.Spec.Containers)
	spec.InitContainers = containerViews(pod.Spec.InitContainers)
	return view
}

func containerViews(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{Name: c.Name, Image: c.Image, SecurityContext: c.SecurityContext}
		for _, m := range c.VolumeMounts {
			// Which local dirs a container mounts, not where: Spark mounts each executor's at a path of its own
			// (a fresh /var/data/spark-<uuid> in client mode, the driver's paths shuffled in cluster mode),
			// which would give every executor its own input, and its own cache miss.
			if strings.HasPrefix(m.Name, placement.LocalDirVolumePrefix) {
				out[i].VolumeMounts = append(out[i].VolumeMounts, corev1.VolumeMount{Name: m.Name, ReadOnly: m.ReadOnly})
			}
		}
	}
	return out
}

// buildInput assembles the policy input for a Spark pod.
func buildInput(pod *corev1.Pod, role, operation string, ns policies.Namespace, driver policies.Driver, zone policies.Zone) *policies.Input {
	return &policies.Input{
		Operation: operation,
		Role:      role,
		App: policies.App{
			ID:           pod.Labels[LabelAppID],
			HasID:        pod.Labels[LabelAppID] != "",
			Name:         pod.Labels[LabelApp],
			SparkVersion: pod.Labels[LabelVer],
		},
		Namespace: ns,
		Driver:    driver,
		Zone:      zone,
		Pod:       policyView(pod),
	}
}
