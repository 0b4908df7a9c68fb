package submit

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
	"github.com/sparkplace/sparkplace/submit/podtemplate"
)

// ports are the driver's: RPC, block manager and UI.
type ports struct{ driver, block, ui int }

// build makes the objects, in the order of Spark's KubernetesClientApplication: properties first, then the
// pod that reads them, then the ConfigMap and Service it owns.
func (b *builder) build() (*Plan, error) {
	ns, id := b.target.Namespace, b.target.JobRunID
	ownLabels := map[string]string{LabelJobRunID: id, labelManagedBy: managedBy}
	if b.target.VirtualClusterID != "" {
		ownLabels[LabelVirtualClusterID] = b.target.VirtualClusterID
	}
	// The job's labels travel through Spark conf, so Spark itself puts them on the executors too.
	for _, role := range []string{"driver", "executor"} {
		for k, v := range ownLabels {
			if k != labelManagedBy {
				b.props["spark.kubernetes."+role+".label."+k] = v
			}
		}
	}
	driverProfile := "spark.kubernetes.driver.label." + LabelProfile
	executorProfile := "spark.kubernetes.executor.label." + LabelProfile
	// A job's profile applies to its executors too, unless they name their own (Fargate for executors
	// only is a common split); an executor-only profile leaves the driver on the default placement.
	if b.props[executorProfile] == "" && b.props[driverProfile] != "" {
		b.props[executorProfile] = b.props[driverProfile]
	}

	p := ports{
		driver: b.intProp("spark.driver.port", defaultDriverPort),
		block:  b.intProp("spark.driver.blockManager.port", defaultBlockManagerPrt),
		ui:     b.intProp("spark.ui.port", defaultUIPort),
	}
	pod, confData, err := b.driverPod(p)
	if err != nil {
		return nil, err
	}
	owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: b.podName, Controller: ptr(true)}}
	configMap := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name: b.configMapName, Namespace: ns, OwnerReferences: owner,
			Labels: merge(map[string]string{"spark-app-selector": b.appID}, ownLabels),
		},
		Immutable: ptr(true),
		Data:      confData,
	}
	service, err := b.driverService(pod.Labels, ownLabels, owner, p)
	if err != nil {
		return nil, err
	}
	if template := b.podTemplates["driver"]; template != nil {
		// After the Service: its selector is Spark's driver labels, not the template's.
		pod = podtemplate.Build(template, b.props["spark.kubernetes.driver.podTemplateContainerName"], pod)
	}
	req := *b.req
	req.VirtualClusterID, req.ClientToken = b.target.VirtualClusterID, b.target.ClientToken
	run := &v1alpha1.JobRun{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "JobRun"},
		ObjectMeta: metav1.ObjectMeta{
			Name: id, Namespace: ns, CreationTimestamp: metav1.NewTime(b.opts.Now.UTC()),
			Labels: map[string]string{LabelJobRunID: id, LabelVirtualClusterID: b.target.VirtualClusterID, labelManagedBy: managedBy},
		},
		Spec: v1alpha1.JobRunSpec{Request: req, CreatedBy: b.opts.CreatedBy, Tags: req.Tags, PodTemplates: b.opts.PodTemplates},
	}
	timeout := b.timeout
	if timeout == 0 {
		timeout = defaultJobStartTimeout
	}
	return &Plan{
		JobRun: run, ServiceAccount: b.serviceAccount, CreateServiceAccount: b.ownAccount,
		DriverPod: pod, ConfigMap: configMap, Service: service, StartTimeout: timeout,
		PodTemplateConfigMap: b.executorTemplateConfigMap(owner, ownLabels),
		SparkProperties:      b.props, Warnings: b.warnings,
	}, nil
}

// driverPod is the driver pod and its spark.properties (and log4j) files, with the submission's own
// properties added as spark-submit adds them.
func (b *builder) driverPod(p ports) (*corev1.Pod, map[string]string, error) {
	ns := b.target.Namespace
	labels, err := b.driverLabels()
	if err != nil {
		return nil, nil, err
	}
	annotations, err := b.prefixed("spark.kubernetes.driver.annotation.", validateAnnotationKey)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range annotations {
		annotations[k] = strings.ReplaceAll(strings.ReplaceAll(v, "{{APP_ID}}", b.appID), "{{EXECUTOR_ID}}", "")
	}
	hint, err := sizeHint(b.props)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range hint {
		if _, set := annotations[k]; !set {
			annotations[k] = v
		}
	}
	nodeSelector, err := b.prefixed("spark.kubernetes.node.selector.", validateLabel)
	if err != nil {
		return nil, nil, err
	}
	driverSelector, err := b.prefixed("spark.kubernetes.driver.node.selector.", validateLabel)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range driverSelector {
		nodeSelector[k] = v
	}
	env, err := b.driverEnv()
	if err != nil {
		return nil, nil, err
	}
	volumes, mounts, err := b.driverVolumes()
	if err != nil {
		return nil, nil, err
	}
	localVolumes, localMounts, localDirs, err := b.localDirs(volumes)
	if err != nil {
		return nil, nil, err
	}
	volumes, mounts = append(volumes, localVolumes...), append(mounts, localMounts...)
	if localDirs != "" {
		env = append(env, corev1.EnvVar{Name: "SPARK_LOCAL_DIRS", Value: localDirs})
	}

	// What the submission adds on top of the user's properties (Client, BasicDriverFeatureStep,
	// DriverServiceFeatureStep, DriverCommandFeatureStep).
	system := map[string]string{
		"spark.master":                          sparkMaster,
		"spark.submit.deployMode":               "cluster",
		"spark.kubernetes.namespace":            ns,
		"spark.app.id":                          b.appID,
		"spark.app.submitTime":                  strconv.FormatInt(b.opts.Now.UnixMilli(), 10),
		"spark.kubernetes.driver.pod.name":      b.podName,
		"spark.kubernetes.submitInDriver":       "true",
		"spark.kubernetes.memoryOverheadFactor": javaDouble(b.overheadFactor),
		"spark.kubernetes.resource.type":        b.kind,
		"spark.driver.host":                     b.serviceName + "." + ns + ".svc",
		"spark.driver.port":                     strconv.Itoa(p.driver),
		"spark.driver.blockManager.port":        strconv.Itoa(p.block),
	}
	for k, v := range system {
		b.props[k] = v
	}
	if v, m := b.executorTemplateVolume(); v != nil {
		volumes, mounts = append(volumes, *v), append(mounts, *m)
	}

	cpuRequest := firstNonEmpty(b.props["spark.kubernetes.driver.request.cores"], strings.TrimSpace(b.props["spark.driver.cores"]), "1")
	memory := resource.MustParse(strconv.FormatInt(b.driverMiB+b.overheadMiB, 10) + "Mi")
	resources := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuRequest), corev1.ResourceMemory: memory},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: memory},
	}
	if limit := b.props["spark.kubernetes.driver.limit.cores"]; limit != "" {
		resources.Limits[corev1.ResourceCPU] = resource.MustParse(limit)
	}

	args := []string{"driver", "--properties-file", sparkConfDir + "/" + sparkPropertiesFile, "--class", b.mainClass, b.resource}
	args = append(args, b.driver.EntryPointArguments...)

	confData := map[string]string{
		sparkPropertiesFile: javaProperties("Java properties built from Kubernetes config map with name: "+b.configMapName, b.opts.Now, b.props),
	}
	for k, v := range b.log4j {
		confData[k] = v
	}
	items := make([]corev1.KeyToPath, 0, len(confData))
	for _, k := range sortedKeys(confData) {
		items = append(items, corev1.KeyToPath{Key: k, Path: k, Mode: ptr(int32(0o644))})
	}
	env = append(env, corev1.EnvVar{Name: "SPARK_CONF_DIR", Value: sparkConfDir})
	volumes = append(volumes, corev1.Volume{Name: sparkConfVolume, VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: b.configMapName}, Items: items},
	}})
	mounts = append(mounts, corev1.VolumeMount{Name: sparkConfVolume, MountPath: sparkConfDir})

	var pullSecrets []corev1.LocalObjectReference
	for _, s := range splitList(b.props["spark.kubernetes.container.image.pullSecrets"]) {
		pullSecrets = append(pullSecrets, corev1.LocalObjectReference{Name: s})
	}
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: b.podName, Namespace: ns, Labels: labels, Annotations: nilIfEmpty(annotations),
		},
		Spec: corev1.PodSpec{
			RestartPolicy:      corev1.RestartPolicyNever,
			ServiceAccountName: b.serviceAccount,
			NodeSelector:       nilIfEmpty(nodeSelector),
			ImagePullSecrets:   pullSecrets,
			SchedulerName:      firstNonEmpty(b.props["spark.kubernetes.driver.scheduler.name"], b.props["spark.kubernetes.scheduler.name"]),
			Containers: []corev1.Container{{
				Name:            driverContainerName,
				Image:           b.release.Image,
				ImagePullPolicy: corev1.PullPolicy(firstNonEmpty(b.props["spark.kubernetes.container.image.pullPolicy"], string(corev1.PullIfNotPresent))),
				Args:            args,
				Ports: []corev1.ContainerPort{
					{Name: "driver-rpc-port", ContainerPort: int32(p.driver), Protocol: corev1.ProtocolTCP},
					{Name: "blockmanager", ContainerPort: int32(p.block), Protocol: corev1.ProtocolTCP},
					{Name: "spark-ui", ContainerPort: int32(p.ui), Protocol: corev1.ProtocolTCP},
				},
				Env:          env,
				Resources:    resources,
				VolumeMounts: mounts,
			}},
			Volumes: volumes,
		},
	}
	return pod, confData, nil
}

// driverService is DriverServiceFeatureStep's headless Service, through which executors reach the driver.
func (b *builder) driverService(selector, ownLabels map[string]string, owner []metav1.OwnerReference, p ports) (*corev1.Service, error) {
	serviceLabels, err := b.prefixed("spark.kubernetes.driver.service.label.", validateLabel)
	if err != nil {
		return nil, err
	}
	serviceAnnotations, err := b.prefixed("spark.kubernetes.driver.service.annotation.", validateAnnotationKey)
	if err != nil {
		return nil, err
	}
	service := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name: b.serviceName, Namespace: b.target.Namespace, OwnerReferences: owner,
			Labels:      merge(map[string]string{"spark-app-selector": b.appID}, serviceLabels, ownLabels),
			Annotations: nilIfEmpty(serviceAnnotations),
		},
		Spec: corev1.ServiceSpec{
			ClusterIP:      corev1.ClusterIPNone,
			IPFamilyPolicy: ptr(corev1.IPFamilyPolicySingleStack),
			Selector:       selector,
			Ports: []corev1.ServicePort{
				{Name: "driver-rpc-port", Port: int32(p.driver), TargetPort: intstr.FromInt32(int32(p.driver))},
				{Name: "blockmanager", Port: int32(p.block), TargetPort: intstr.FromInt32(int32(p.block))},
				{Name: "spark-ui", Port: int32(p.ui), TargetPort: intstr.FromInt32(int32(p.ui))},
			},
		},
	}
	return service, nil
}

// driverLabels follows KubernetesDriverConf.labels: user labels plus Spark's, which users may not set.
func (b *builder) driverLabels() (map[string]string, error) {
	labels, err := b.prefixed("spark.kubernetes.driver.label.", validateLabel)
	if err != nil {
		return nil, err
	}
	preset := map[string]string{"spark-app-selector": b.appID, "spark-role": "driver"}
	if sparkAtLeast(b.release.SparkVersion, 3, 3) {
		preset["spark-app-name"] = appNameLabel(b.props["spark.app.name"])
		if b.release.SparkVersion != "" {
			preset["spark-version"] = b.release.SparkVersion
		}
	}
	for k, v := range preset {
		if _, taken := labels[k]; taken {
			return nil, invalidf("spark.kubernetes.driver.label.%s: label %s is reserved for Spark's bookkeeping", k, k)
		}
		labels[k] = v
	}
	for k, v := range labels {
		if err := validateLabel(k, v); err != nil {
			return nil, err
		}
	}
	return labels, nil
}

// appNameLabel is KubernetesConf.getAppNameLabel, plus trimming the dashes a label value may not
// start or end with (Spark leaves them and the API server would refuse the pod).
func appNameLabel(name string) string {
	s := strings.ToLower(strings.TrimSpace(name))
	s = notLabelChar.ReplaceAllString(s, "-")
	s = dashes.ReplaceAllString(s, "-")
	if len(s) > validation.LabelValueMaxLength {
		s = s[:validation.LabelValueMaxLength]
	}
	return strings.Trim(s, "-")
}

// driverEnv is BasicDriverFeatureStep's order: SPARK_USER, SPARK_APPLICATION_ID, spark.kubernetes.driverEnv.*,
// SPARK_DRIVER_BIND_ADDRESS, then DriverCommandFeatureStep's Python variables.
func (b *builder) driverEnv() ([]corev1.EnvVar, error) {
	env := []corev1.EnvVar{
		{Name: "SPARK_USER", Value: firstNonEmpty(b.opts.SparkUser, "spark")},
		{Name: "SPARK_APPLICATION_ID", Value: b.appID},
	}
	custom, err := b.prefixed("spark.kubernetes.driverEnv.", func(k, _ string) error {
		if !validEnvName(k) {
			return invalidf("spark.kubernetes.driverEnv.%s: %q is not an environment variable name", k, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, k := range sortedKeys(custom) {
		env = append(env, corev1.EnvVar{Name: k, Value: custom[k]})
	}
	env = append(env, corev1.EnvVar{Name: "SPARK_DRIVER_BIND_ADDRESS", ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.podIP"},
	}})
	if b.kind == "python" {
		if py := b.props["spark.pyspark.python"]; py != "" {
			env = append(env, corev1.EnvVar{Name: "PYSPARK_PYTHON", Value: py})
		}
		if py := firstNonEmpty(b.props["spark.pyspark.driver.python"], b.props["spark.pyspark.python"]); py != "" {
			env = append(env, corev1.EnvVar{Name: "PYSPARK_DRIVER_PYTHON", Value: py})
		}
	}
	return env, nil
}
