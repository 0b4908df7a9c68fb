package submit

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
	"github.com/sparkplace/sparkplace/submit/podtemplate"
)

// Where spark-submit puts the executor pod template (Constants.scala, PodTemplateConfigMapStep): the driver
// reads it from a ConfigMap mounted into its container, and the property points there.
const (
	podTemplateConfigMapSuffix = "-driver-podspec-conf-map"
	podTemplateKey             = "podspec-configmap-key"
	podTemplateVolume          = "pod-template-volume"
	podTemplateMountPath       = "/opt/spark/pod-template"
	podTemplateFileName        = "pod-spec-template.yml"
)

func podTemplateProperty(role string) string { return "spark.kubernetes." + role + ".podTemplateFile" }

// podTemplateRefs are the request's pod template files by role, after spark-submit's property precedence.
func podTemplateRefs(req *StartJobRunRequest) (map[string]string, error) {
	driver, err := validateRequest(req)
	if err != nil {
		return nil, err
	}
	b := &builder{req: req, driver: driver, props: map[string]string{}}
	if err := b.collectProperties(); err != nil {
		return nil, err
	}
	refs := map[string]string{}
	for _, role := range []string{"driver", "executor"} {
		if ref := b.props[podTemplateProperty(role)]; ref != "" {
			refs[role] = ref
		}
	}
	return refs, nil
}

// fetchPodTemplates reads the request's pod templates with the submitter's access: S3 with its AWS
// credentials, configmap:// in namespace with c (the caller's client), files from its template directory.
// Nil when the request names none.
func (s *Submitter) fetchPodTemplates(ctx context.Context, req *StartJobRunRequest, namespace string, c client.Reader) (*v1alpha1.PodTemplates, error) {
	refs, err := podTemplateRefs(req)
	if err != nil || len(refs) == 0 {
		return nil, err
	}
	out := &v1alpha1.PodTemplates{}
	for _, role := range sortedKeys(refs) {
		data, err := s.opts.PodTemplates.Fetch(ctx, refs[role], namespace, c)
		switch {
		case podtemplate.IsInvalid(err):
			return nil, &ValidationError{Message: podTemplateProperty(role) + "=" + refs[role], Err: err}
		case err != nil:
			return nil, fmt.Errorf("%s=%s: %w", podTemplateProperty(role), refs[role], err)
		}
		if role == "driver" {
			out.Driver = string(data)
		} else {
			out.Executor = string(data)
		}
	}
	return out, nil
}

// parsePodTemplates parses the fetched templates of the roles whose property names one; a property without
// a fetched template is refused (the JobRun was not made by a submitter).
func (b *builder) parsePodTemplates() error {
	var fetched v1alpha1.PodTemplates
	if t := b.opts.PodTemplates; t != nil {
		fetched = *t
	}
	for _, role := range []string{"driver", "executor"} {
		content := fetched.Driver
		if role == "executor" {
			content = fetched.Executor
		}
		key := podTemplateProperty(role)
		ref := b.props[key]
		if ref == "" {
			continue
		}
		if content == "" {
			return invalidf("%s=%s: the template was not fetched at submission (submit through sparkplace's API or CLI)", key, ref)
		}
		pod, err := podtemplate.Parse([]byte(content))
		if err != nil {
			return &ValidationError{Message: fmt.Sprintf("%s=%s does not parse as a Pod", key, ref), Err: err}
		}
		if err := b.checkTemplateNames(role, pod); err != nil {
			return &ValidationError{Message: fmt.Sprintf("%s=%s", key, ref), Err: err}
		}
		if b.podTemplates == nil {
			b.podTemplates = map[string]*corev1.Pod{}
		}
		b.podTemplates[role] = pod
		// EMR's templates name Spark's container spark-kubernetes-<role>, and EMR's Spark picks it by that
		// name; open-source Spark takes the first container unless told, so tell it.
		nameKey := "spark.kubernetes." + role + ".podTemplateContainerName"
		for _, c := range pod.Spec.Containers {
			if _, set := b.props[nameKey]; !set && c.Name == "spark-kubernetes-"+role {
				b.props[nameKey] = c.Name
			}
		}
	}
	return nil
}

// sparkVolumes are the volumes Spark's feature steps add to a pod, which a template's containers may mount:
// local dirs, the conf and template ConfigMaps, Hadoop's and Kerberos' files.
var sparkVolumes = []string{"pod-template-volume", "hadoop-properties", "krb5-file", "kerberos-keytab", "hadoop-secret"}

// checkTemplateNames refuses what the API server would refuse in every pod built on the template, so that a
// run is refused now instead of its driver (or its executors, created again and again) failing later:
// container and volume names that are not DNS labels or repeat, and mounts of a volume nobody adds.
func (b *builder) checkTemplateNames(role string, pod *corev1.Pod) error {
	containers := append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...)
	seen := map[string]bool{}
	for _, c := range containers {
		if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 && c.Name != "" {
			return fmt.Errorf("container name %q: %s", c.Name, strings.Join(errs, "; "))
		}
		if seen[c.Name] && c.Name != "" {
			return fmt.Errorf("two containers are named %s", c.Name)
		}
		seen[c.Name] = true
	}
	volumes := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		if errs := validation.IsDNS1123Label(v.Name); len(errs) > 0 {
			return fmt.Errorf("volume name %q: %s", v.Name, strings.Join(errs, "; "))
		}
		if volumes[v.Name] {
			return fmt.Errorf("two volumes are named %s", v.Name)
		}
		volumes[v.Name] = true
	}
	added := func(name string) bool {
		if strings.HasPrefix(name, "spark-") || slices.Contains(sparkVolumes, name) {
			return true
		}
		for k := range b.props {
			rest, ok := strings.CutPrefix(k, "spark.kubernetes."+role+".volumes.")
			if parts := strings.SplitN(rest, ".", 3); ok && len(parts) == 3 && parts[1] == name {
				return true
			}
			if secret, ok := strings.CutPrefix(k, "spark.kubernetes."+role+".secrets."); ok && secret+"-volume" == name {
				return true
			}
		}
		return false
	}
	for _, c := range containers {
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] && !added(m.Name) {
				return fmt.Errorf("container %s mounts volume %s, which neither the template nor Spark defines", c.Name, m.Name)
			}
		}
	}
	return nil
}

// checkPodTemplatePolicy holds a role's template to the virtual cluster's policy as the properties are held:
// its other containers' images, its volumes' types and its service account. Spark's own container gets the
// run's image, so its image in the template does not matter.
func (b *builder) checkPodTemplatePolicy(role string, p *v1alpha1.VirtualClusterPolicy, releaseImage string, allowedVolumes []string) error {
	pod := b.podTemplates[role]
	if pod == nil {
		return nil
	}
	key := podTemplateProperty(role)
	spark := podtemplate.SparkContainer(pod, b.props["spark.kubernetes."+role+".podTemplateContainerName"])
	var containers []corev1.Container
	for i, c := range pod.Spec.Containers {
		if i != spark {
			containers = append(containers, c)
		}
	}
	for _, c := range append(pod.Spec.InitContainers, containers...) {
		switch {
		case len(p.AllowedImages) == 0 && c.Image != releaseImage:
			return refused("allowedImages", "%s: container %s's image %s: this virtual cluster allows only the image of releaseLabel %s (%s)", key, c.Name, c.Image, b.req.ReleaseLabel, firstNonEmpty(releaseImage, "none"))
		case len(p.AllowedImages) > 0 && !matchesAny(p.AllowedImages, c.Image):
			return refused("allowedImages", "%s: container %s's image %s matches none of %v", key, c.Name, c.Image, p.AllowedImages)
		}
	}
	for _, v := range pod.Spec.Volumes {
		if kind := volumeType(v.VolumeSource); !slices.Contains(allowedVolumes, kind) {
			return refused("allowedVolumeTypes", "%s: volume %s of type %s is not allowed (allowed: %v)", key, v.Name, kind, allowedVolumes)
		}
	}
	for _, sa := range []string{pod.Spec.ServiceAccountName, pod.Spec.DeprecatedServiceAccount} {
		if sa != "" && !(b.ownAccount && sa == b.serviceAccount) && !slices.Contains(p.AllowedServiceAccounts, sa) {
			return refused("allowedServiceAccounts", "%s: serviceAccountName %s: runs use the virtual cluster's service account for their execution role; allowed besides it: %v", key, sa, p.AllowedServiceAccounts)
		}
	}
	return nil
}

// volumeType is the name of a volume's source field (emptyDir, hostPath, configMap, ...).
func volumeType(src corev1.VolumeSource) string {
	data, err := json.Marshal(src)
	if err != nil {
		return "unknown"
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || len(fields) != 1 {
		return "unknown"
	}
	keys := make([]string, 0, 1)
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys[0]
}

// executorTemplateConfigMap is PodTemplateConfigMapStep's ConfigMap: the executor template as written,
// owned by the driver pod like the driver's other objects. Nil without an executor template.
func (b *builder) executorTemplateConfigMap(owner []metav1.OwnerReference, labels map[string]string) *corev1.ConfigMap {
	if b.podTemplates["executor"] == nil {
		return nil
	}
	return &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name: b.podTemplateConfigMapName, Namespace: b.target.Namespace, OwnerReferences: owner,
			Labels: merge(map[string]string{"spark-app-selector": b.appID}, labels),
		},
		Immutable: ptr(true),
		Data:      map[string]string{podTemplateKey: b.opts.PodTemplates.Executor},
	}
}

// executorTemplateVolume is PodTemplateConfigMapStep's volume and mount on the driver, and the property
// that points the driver at the mounted file.
func (b *builder) executorTemplateVolume() (*corev1.Volume, *corev1.VolumeMount) {
	if b.podTemplates["executor"] == nil {
		return nil, nil
	}
	b.props[podTemplateProperty("executor")] = podTemplateMountPath + "/" + podTemplateFileName
	return &corev1.Volume{Name: podTemplateVolume, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: b.podTemplateConfigMapName},
			Items:                []corev1.KeyToPath{{Key: podTemplateKey, Path: podTemplateFileName}},
		}}},
		&corev1.VolumeMount{Name: podTemplateVolume, MountPath: podTemplateMountPath}
}

// checkPodSecurity refuses templates that the Pod Security level the namespace enforces (its
// pod-security.kubernetes.io/enforce label) refuses in every pod built on them, whatever Spark adds:
// baseline's (and so restricted's) host namespaces, privileged containers and host ports. A refused
// executor would be created again and again by its driver. Other Pod Security rules are left to admission.
// Without the label, or when the namespace cannot be read, nothing is checked here.
func (s *Submitter) checkPodSecurity(ctx context.Context, namespace string, templates *v1alpha1.PodTemplates) error {
	if templates == nil || s.opts.Directory == nil {
		return nil
	}
	var ns corev1.Namespace
	if err := s.opts.Directory.Get(ctx, client.ObjectKey{Name: namespace}, &ns); err != nil {
		return nil
	}
	level := ns.Labels["pod-security.kubernetes.io/enforce"]
	if level != "baseline" && level != "restricted" {
		return nil
	}
	for _, role := range []string{"driver", "executor"} {
		content := templates.Driver
		if role == "executor" {
			content = templates.Executor
		}
		pod, err := podtemplate.Parse([]byte(content))
		if content == "" || err != nil {
			continue // NewPlan has refused what does not parse
		}
		if why := baselineViolation(pod); why != "" {
			return invalidf("%s: namespace %s enforces Pod Security %q, which forbids %s", podTemplateProperty(role), namespace, level, why)
		}
	}
	return nil
}

// baselineViolation names the first thing in pod that Pod Security's baseline level forbids among host
// namespaces, privileged containers and host ports; "" when there is none.
func baselineViolation(pod *corev1.Pod) string {
	spec := pod.Spec
	switch {
	case spec.HostNetwork:
		return "hostNetwork"
	case spec.HostPID:
		return "hostPID"
	case spec.HostIPC:
		return "hostIPC"
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if sc := c.SecurityContext; sc != nil && sc.Privileged != nil && *sc.Privileged {
			return "the privileged container " + c.Name
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				return fmt.Sprintf("host port %d of container %s", p.HostPort, c.Name)
			}
		}
	}
	return ""
}
