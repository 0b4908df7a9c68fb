package podtemplate

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
)

// Build is the pod Spark's feature steps make on a template (KubernetesUtils.loadPodFromTemplate, then
// BasicDriverFeatureStep or BasicExecutorFeatureStep): built is the pod Spark makes without one, whose last
// container is Spark's. The result keeps the template's metadata and spec and adds built's: labels and
// annotations (built's win), name, namespace and owners, restart policy, hostname, node selector entries,
// image pull secrets, scheduler and volumes; the template's service account is kept when it names one.
// Spark's container is the template's container named containerName (else its first), built on with built's
// image, pull policy, arguments, ports, environment, mounts and resources, and appended after the template's
// other containers.
func Build(template *corev1.Pod, containerName string, built *corev1.Pod) *corev1.Pod {
	pod := template.DeepCopy()
	pod.TypeMeta = built.TypeMeta
	pod.Name, pod.Namespace, pod.OwnerReferences = built.Name, built.Namespace, built.OwnerReferences
	pod.Labels = union(pod.Labels, built.Labels)
	pod.Annotations = union(pod.Annotations, built.Annotations)
	spec, from := &pod.Spec, &built.Spec
	spec.RestartPolicy = from.RestartPolicy
	if from.Hostname != "" {
		spec.Hostname = from.Hostname
	}
	if spec.ServiceAccountName == "" && spec.DeprecatedServiceAccount == "" {
		spec.ServiceAccountName = from.ServiceAccountName
	}
	if from.SchedulerName != "" {
		spec.SchedulerName = from.SchedulerName
	}
	spec.NodeSelector = union(spec.NodeSelector, from.NodeSelector)
	spec.ImagePullSecrets = append(spec.ImagePullSecrets, from.ImagePullSecrets...)
	spec.Volumes = append(spec.Volumes, from.Volumes...)

	ours := from.Containers[len(from.Containers)-1]
	var spark corev1.Container
	if i := SparkContainer(pod, containerName); i >= 0 {
		spark = spec.Containers[i]
		spec.Containers = append(spec.Containers[:i:i], spec.Containers[i+1:]...)
	}
	if spark.Name == "" {
		spark.Name = ours.Name
	}
	spark.Image, spark.ImagePullPolicy, spark.Args = ours.Image, ours.ImagePullPolicy, ours.Args
	spark.Ports = append(spark.Ports, ours.Ports...)
	spark.Env = append(spark.Env, ours.Env...)
	spark.VolumeMounts = append(spark.VolumeMounts, ours.VolumeMounts...)
	spark.Resources.Requests = union(spark.Resources.Requests, ours.Resources.Requests)
	spark.Resources.Limits = union(spark.Resources.Limits, ours.Resources.Limits)
	spec.Containers = append(spec.Containers, spark)
	return pod
}

// union is a new map of a's entries with b's over them; nil when both are empty.
func union[K comparable, V any](a, b map[K]V) map[K]V {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	out := make(map[K]V, len(a)+len(b))
	maps.Copy(out, a)
	maps.Copy(out, b)
	return out
}
