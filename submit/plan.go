package submit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Constants of Spark's Kubernetes resource manager (Constants.scala, Config.scala).
const (
	sparkMaster            = "k8s://https://kubernetes.default.svc"
	sparkConfDir           = "/opt/spark/conf"
	sparkPropertiesFile    = "spark.properties"
	sparkConfVolume        = "spark-conf-volume-driver"
	driverContainerName    = "spark-kubernetes-driver"
	defaultDriverPort      = 7078
	defaultBlockManagerPrt = 7079
	defaultUIPort          = 4040
	minOverheadMiB         = 384
	jvmOverheadFactor      = 0.1
	nonJVMOverheadFactor   = 0.4
	pythonRunner           = "org.apache.spark.deploy.PythonRunner"
	rRunner                = "org.apache.spark.deploy.RRunner"
	defaultJobStartTimeout = 15 * time.Minute
)

// Target says where a planned job run goes.
type Target struct {
	// Namespace of the virtual cluster.
	Namespace string
	// VirtualClusterID is the id registered on Namespace ("" in a dry run without a virtual cluster).
	VirtualClusterID string
	// JobRunID is the job run's id ([0-9a-z]+); it names the driver pod spark-<id>-driver, as EMR does.
	JobRunID string
	// ClientToken is stored with the run for idempotency.
	ClientToken string
}

// PlanOptions are the submitter-wide settings a plan depends on.
type PlanOptions struct {
	// Releases resolves releaseLabel to an image.
	Releases ReleaseTable
	// Now is the submission time (spark.app.submitTime, createdAt).
	Now time.Time
	// Random supplies the app id and the default local-dir names. Required.
	Random io.Reader
	// Region and AccountID form the job run's ARN. Default to us-east-1 and 000000000000.
	Region    string
	AccountID string
	// SparkUser is the driver's SPARK_USER (spark-submit uses the submitting OS user). Defaults to "spark".
	SparkUser string
	// CreatedBy is recorded on the job run (EMR: the caller's ARN). Optional.
	CreatedBy string
}

// Plan is every object a job run needs, in creation order, before anything is created.
type Plan struct {
	JobRun    JobRun
	Namespace string
	// Record is the job run's state ConfigMap.
	Record *corev1.ConfigMap
	// ServiceAccount, Role and RoleBinding are nil when the user names the driver's service account.
	ServiceAccount *corev1.ServiceAccount
	Role           *rbacv1.Role
	RoleBinding    *rbacv1.RoleBinding
	DriverPod      *corev1.Pod
	// ConfigMap (the driver's spark.properties) and Service are owned by DriverPod; their owner reference
	// gets the pod's uid once the pod exists.
	ConfigMap *corev1.ConfigMap
	Service   *corev1.Service
	// SparkProperties is what the driver reads from spark.properties.
	SparkProperties map[string]string
	// Warnings are parts of the request sparkplace accepts but does not apply.
	Warnings []string
}

// Objects returns the planned objects in creation order.
func (p *Plan) Objects() []client.Object {
	objs := []client.Object{p.Record}
	if p.ServiceAccount != nil {
		objs = append(objs, p.ServiceAccount, p.Role, p.RoleBinding)
	}
	return append(objs, p.DriverPod, p.ConfigMap, p.Service)
}

// knownClassifications are the classifications EMR on EKS accepts; the value says whether sparkplace
// applies it.
var knownClassifications = map[string]bool{
	"spark-defaults":          true,
	"spark-env":               true,
	"spark-log4j":             true,
	"spark-log4j2":            true,
	"emr-containers-defaults": true,
	"emr-job-submitter":       false,
	"spark-hive-site":         false,
}

var roleARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/(?:[\w+=,.@/-]+/)?([\w+=,.@-]{1,64})$`)

// NewPlan validates req and computes every object of the job run. It creates nothing and has no
// side effects, so a *ValidationError from here means nothing was touched.
func NewPlan(req *StartJobRunRequest, target Target, opts PlanOptions) (*Plan, error) {
	if opts.Random == nil {
		return nil, fmt.Errorf("plan options: Random is required")
	}
	driver, err := validateRequest(req)
	if err != nil {
		return nil, err
	}
	b := &builder{req: req, driver: driver, target: target, opts: opts, props: map[string]string{}}
	if err := b.collectProperties(); err != nil {
		return nil, err
	}
	if err := b.resolve(); err != nil {
		return nil, err
	}
	return b.build()
}

func validateRequest(req *StartJobRunRequest) (*SparkSubmitJobDriver, error) {
	switch {
	case req == nil:
		return nil, invalidf("empty StartJobRun request")
	case req.JobTemplateID != "":
		return nil, invalidf("jobTemplateId: job templates are not supported by this submitter; send the full request")
	case req.JobDriver == nil:
		return nil, invalidf("jobDriver is required")
	case req.JobDriver.SparkSQLJobDriver != nil:
		return nil, invalidf("jobDriver.sparkSqlJobDriver is not supported; use sparkSubmitJobDriver")
	case req.JobDriver.SparkSubmitJobDriver == nil:
		return nil, invalidf("jobDriver.sparkSubmitJobDriver is required")
	case strings.TrimSpace(req.JobDriver.SparkSubmitJobDriver.EntryPoint) == "":
		return nil, invalidf("jobDriver.sparkSubmitJobDriver.entryPoint is required (the application jar, .py or .R file)")
	case req.ExecutionRoleARN == "":
		return nil, invalidf("executionRoleArn is required")
	case !roleARNPattern.MatchString(req.ExecutionRoleARN):
		return nil, invalidf("executionRoleArn %q is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)", req.ExecutionRoleARN)
	case req.ReleaseLabel == "":
		return nil, invalidf("releaseLabel is required")
	case len(req.Name) > 64:
		return nil, invalidf("name is longer than 64 characters")
	}
	return req.JobDriver.SparkSubmitJobDriver, nil
}

// builder carries one plan's intermediate results.
type builder struct {
	req    *StartJobRunRequest
	driver *SparkSubmitJobDriver
	target Target
	opts   PlanOptions

	props     map[string]string // the Spark properties, merged with spark-submit's precedence
	log4j     map[string]string // ConfigMap key (log4j.properties / log4j2.properties) → content
	mainClass string
	resource  string // the application resource as the driver gets it
	kind      string // java, python or r
	release   Release
	timeout   time.Duration
	warnings  []string

	appID          string
	podName        string
	serviceName    string
	configMapName  string
	serviceAccount string
	createRBAC     bool
	driverMiB      int64
	overheadMiB    int64
	overheadFactor float64
}

// collectProperties merges spark-defaults < --conf < dedicated options, as spark-submit merges
// spark-defaults.conf, --conf and --driver-memory & co.
func (b *builder) collectProperties() error {
	if co := b.req.ConfigurationOverrides; co != nil {
		if len(co.MonitoringConfiguration) > 0 && string(co.MonitoringConfiguration) != "null" {
			b.warnings = append(b.warnings, "configurationOverrides.monitoringConfiguration is not applied: driver and executor logs stay in the pods")
		}
		for i, c := range co.ApplicationConfiguration {
			if err := b.applyClassification(fmt.Sprintf("configurationOverrides.applicationConfiguration[%d]", i), c); err != nil {
				return err
			}
		}
	}
	if b.req.RetryPolicyConfiguration != nil && b.req.RetryPolicyConfiguration.MaxAttempts > 1 {
		b.warnings = append(b.warnings, "retryPolicyConfiguration is not applied: a job run is attempted once")
	}
	sub, err := parseSubmitParameters(b.driver.SparkSubmitParameters)
	if err != nil {
		return err
	}
	for _, kv := range sub.conf {
		b.setProperty("--conf", kv.key, kv.value)
	}
	for k, v := range sub.options {
		b.props[k] = v
	}
	b.mainClass = sub.mainClass
	return nil
}

func (b *builder) setProperty(source, key, value string) {
	if !strings.HasPrefix(key, "spark.") {
		// SparkSubmitArguments.ignoreNonSparkProperties: warn and drop.
		b.warnings = append(b.warnings, fmt.Sprintf("%s: ignoring non-Spark config property %q", source, key))
		return
	}
	b.props[key] = value
}

func (b *builder) applyClassification(where string, c Configuration) error {
	applied, known := knownClassifications[c.Classification]
	if !known {
		names := make([]string, 0, len(knownClassifications))
		for n := range knownClassifications {
			names = append(names, n)
		}
		sort.Strings(names)
		return invalidf("%s: unknown classification %q (known: %s)", where, c.Classification, strings.Join(names, ", "))
	}
	if !applied {
		b.warnings = append(b.warnings, fmt.Sprintf("%s: classification %q is accepted but not applied by sparkplace", where, c.Classification))
		return nil
	}
	if c.Classification != "spark-env" && len(c.Configurations) > 0 {
		return invalidf("%s: classification %q takes properties, not nested configurations", where, c.Classification)
	}
	switch c.Classification {
	case "spark-defaults":
		for _, k := range sortedKeys(c.Properties) {
			b.setProperty(where+" spark-defaults", k, c.Properties[k])
		}
	case "spark-env":
		// EMR's shape: {"classification": "spark-env", "configurations": [{"classification": "export",
		// "properties": {"PYSPARK_PYTHON": "python3"}}]}: environment for the driver and the executors.
		if len(c.Properties) > 0 {
			return invalidf("%s: spark-env takes its variables in a nested \"export\" configuration", where)
		}
		for j, nested := range c.Configurations {
			if nested.Classification != "export" {
				return invalidf("%s.configurations[%d]: spark-env only nests the \"export\" classification, not %q", where, j, nested.Classification)
			}
			for _, k := range sortedKeys(nested.Properties) {
				if !validEnvName(k) {
					return invalidf("%s.configurations[%d]: %q is not an environment variable name", where, j, k)
				}
				b.props["spark.kubernetes.driverEnv."+k] = nested.Properties[k]
				b.props["spark.executorEnv."+k] = nested.Properties[k]
			}
		}
	case "spark-log4j", "spark-log4j2":
		file := "log4j.properties"
		if c.Classification == "spark-log4j2" {
			file = "log4j2.properties"
		}
		if b.log4j == nil {
			b.log4j = map[string]string{}
		}
		b.log4j[file] = javaPropertiesBody(c.Properties)
	case "emr-containers-defaults":
		for _, k := range sortedKeys(c.Properties) {
			if k != "job-start-timeout" {
				b.warnings = append(b.warnings, fmt.Sprintf("%s: emr-containers-defaults %q is not applied", where, k))
				continue
			}
			secs, err := strconv.Atoi(c.Properties[k])
			if err != nil || secs <= 0 {
				return invalidf("%s: job-start-timeout %q must be a positive number of seconds", where, c.Properties[k])
			}
			b.timeout = time.Duration(secs) * time.Second
		}
	}
	return nil
}

// resolve decides the application kind, main class, name, image, names and sizes.
func (b *builder) resolve() error {
	entry := strings.TrimSpace(b.driver.EntryPoint)
	switch ext := strings.ToLower(path.Ext(entry)); {
	case ext == ".py":
		b.kind, b.mainClass = "python", pythonRunner
	case ext == ".r":
		b.kind, b.mainClass = "r", rRunner
	default:
		b.kind = "java"
		if b.mainClass == "" {
			return invalidf("sparkSubmitParameters: --class is required for %s (spark-submit cannot read the main class from a remote JAR)", entry)
		}
		// SparkSubmit adds the primary JAR to spark.jars so executors get it.
		b.props["spark.jars"] = joinList(b.props["spark.jars"], entry)
	}
	b.resource = entry

	if b.props["spark.app.name"] == "" {
		switch {
		case b.req.Name != "":
			b.props["spark.app.name"] = b.req.Name
		case b.kind == "java":
			b.props["spark.app.name"] = b.mainClass
		default:
			b.props["spark.app.name"] = path.Base(entry)
		}
	}

	release, relErr := b.opts.Releases.Resolve(b.req.ReleaseLabel)
	image := firstNonEmpty(b.props["spark.kubernetes.driver.container.image"], b.props["spark.kubernetes.container.image"])
	switch {
	case relErr != nil && image == "":
		return relErr
	case relErr != nil:
		b.warnings = append(b.warnings, fmt.Sprintf("releaseLabel %q is not in the release table; using image %s", b.req.ReleaseLabel, image))
	}
	b.release = release
	if image != "" {
		b.release.Image = image
	}
	if b.props["spark.kubernetes.container.image"] == "" {
		b.props["spark.kubernetes.container.image"] = b.release.Image
	}

	for _, key := range []string{"spark.executor.memory", "spark.executor.memoryOverhead", "spark.driver.memoryOverhead"} {
		if v, ok := b.props[key]; ok {
			if _, err := parseMiB(key, v); err != nil {
				return err
			}
		}
	}
	b.driverMiB = 1024
	if v, ok := b.props["spark.driver.memory"]; ok {
		mib, err := parseMiB("spark.driver.memory", v)
		if err != nil {
			return err
		}
		b.driverMiB = mib
	}
	for _, key := range []string{"spark.driver.cores", "spark.executor.cores", "spark.executor.instances", "spark.driver.port", "spark.driver.blockManager.port", "spark.ui.port"} {
		if v, ok := b.props[key]; ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err != nil || n < 0 {
				return invalidf("%s=%q must be a whole number", key, v)
			}
		}
	}
	for _, key := range []string{"spark.kubernetes.driver.request.cores", "spark.kubernetes.driver.limit.cores"} {
		if v, ok := b.props[key]; ok {
			if _, err := resource.ParseQuantity(v); err != nil {
				return invalidf("%s=%q is not a CPU quantity (e.g. 500m, 1, 1.5)", key, v)
			}
		}
	}
	if err := b.resolveOverhead(); err != nil {
		return err
	}

	id := b.target.JobRunID
	appID, err := randomBytes(b.opts.Random, 16)
	if err != nil {
		return err
	}
	b.appID = "spark-" + hex.EncodeToString(appID)
	prefix := "spark-" + id
	b.podName = firstNonEmpty(b.props["spark.kubernetes.driver.pod.name"], prefix+"-driver")
	if errs := validation.IsDNS1123Subdomain(b.podName); len(errs) > 0 {
		return invalidf("driver pod name %q: %s", b.podName, strings.Join(errs, "; "))
	}
	// spark-<19-character id>-driver-svc stays well inside the 63 characters of a Service name.
	b.serviceName = prefix + "-driver-svc"
	b.configMapName = "spark-drv-" + id + "-conf-map"

	if sa := b.props["spark.kubernetes.authenticate.driver.serviceAccountName"]; sa != "" {
		b.serviceAccount = sa
		b.warnings = append(b.warnings, fmt.Sprintf("spark.kubernetes.authenticate.driver.serviceAccountName=%s: the execution role %s is not attached; that service account must already carry it", sa, b.req.ExecutionRoleARN))
	} else {
		b.serviceAccount = serviceAccountName(b.req.ExecutionRoleARN)
		b.createRBAC = true
		b.props["spark.kubernetes.authenticate.driver.serviceAccountName"] = b.serviceAccount
		if b.props["spark.kubernetes.authenticate.executor.serviceAccountName"] == "" {
			// Executors read the same data as the driver, so they get the same role (EMR does the same).
			b.props["spark.kubernetes.authenticate.executor.serviceAccountName"] = b.serviceAccount
		}
	}
	if t := b.props["spark.kubernetes.driver.podTemplateFile"]; t != "" {
		b.warnings = append(b.warnings, fmt.Sprintf("spark.kubernetes.driver.podTemplateFile=%s is not applied to the driver: placement comes from sparkplace's policies", t))
	}
	return nil
}

// resolveOverhead follows BasicDriverFeatureStep: the explicit overhead wins; otherwise
// max(factor × memory, 384 MiB) with factor 0.1, or 0.4 for Python and R unless the user set one.
func (b *builder) resolveOverhead() error {
	factorKey := ""
	for _, k := range []string{"spark.driver.memoryOverheadFactor", "spark.kubernetes.memoryOverheadFactor"} {
		if _, ok := b.props[k]; ok {
			factorKey = k
			break
		}
	}
	switch {
	case factorKey != "":
		f, err := strconv.ParseFloat(strings.TrimSpace(b.props[factorKey]), 64)
		if err != nil || f <= 0 {
			return invalidf("%s=%q must be a positive number", factorKey, b.props[factorKey])
		}
		b.overheadFactor = f
	case b.kind == "java":
		b.overheadFactor = jvmOverheadFactor
	default:
		b.overheadFactor = nonJVMOverheadFactor
	}
	if v, ok := b.props["spark.driver.memoryOverhead"]; ok {
		mib, err := parseMiB("spark.driver.memoryOverhead", v)
		if err != nil {
			return err
		}
		b.overheadMiB = mib
		return nil
	}
	b.overheadMiB = max(int64(b.overheadFactor*float64(b.driverMiB)), minOverheadMiB)
	return nil
}

// serviceAccountName is one service account per (namespace, execution role), like EMR's
// emr-containers-sa-spark-*: IRSA trust policies can then name system:serviceaccount:<ns>:sparkplace-*.
func serviceAccountName(roleARN string) string {
	role := roleARNPattern.FindStringSubmatch(roleARN)[1]
	sum := sha256.Sum256([]byte(roleARN))
	name := strings.Trim(dnsLabelSanitizer.ReplaceAllString(strings.ToLower(role), "-"), "-")
	if len(name) > 40 {
		name = strings.TrimRight(name[:40], "-")
	}
	return "sparkplace-" + name + "-" + hex.EncodeToString(sum[:4])
}

var (
	dnsLabelSanitizer = regexp.MustCompile(`[^a-z0-9-]+`)
	notLabelChar      = regexp.MustCompile(`[^a-z0-9-]`)
	dashes            = regexp.MustCompile(`-+`)
)

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

	labels, err := b.driverLabels()
	if err != nil {
		return nil, err
	}
	annotations, err := b.prefixed("spark.kubernetes.driver.annotation.", validateAnnotationKey)
	if err != nil {
		return nil, err
	}
	for k, v := range annotations {
		annotations[k] = strings.ReplaceAll(strings.ReplaceAll(v, "{{APP_ID}}", b.appID), "{{EXECUTOR_ID}}", "")
	}
	hint, err := sizeHint(b.props)
	if err != nil {
		return nil, err
	}
	for k, v := range hint {
		if _, set := annotations[k]; !set {
			annotations[k] = v
		}
	}
	nodeSelector, err := b.prefixed("spark.kubernetes.node.selector.", validateLabel)
	if err != nil {
		return nil, err
	}
	driverSelector, err := b.prefixed("spark.kubernetes.driver.node.selector.", validateLabel)
	if err != nil {
		return nil, err
	}
	for k, v := range driverSelector {
		nodeSelector[k] = v
	}
	env, err := b.driverEnv()
	if err != nil {
		return nil, err
	}
	volumes, mounts, err := b.driverVolumes()
	if err != nil {
		return nil, err
	}
	localVolumes, localMounts, localDirs, err := b.localDirs(volumes)
	if err != nil {
		return nil, err
	}
	volumes, mounts = append(volumes, localVolumes...), append(mounts, localMounts...)
	if localDirs != "" {
		env = append(env, corev1.EnvVar{Name: "SPARK_LOCAL_DIRS", Value: localDirs})
	}

	driverPort := b.intProp("spark.driver.port", defaultDriverPort)
	blockPort := b.intProp("spark.driver.blockManager.port", defaultBlockManagerPrt)
	uiPort := b.intProp("spark.ui.port", defaultUIPort)

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
		"spark.driver.port":                     strconv.Itoa(driverPort),
		"spark.driver.blockManager.port":        strconv.Itoa(blockPort),
	}
	for k, v := range system {
		b.props[k] = v
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
					{Name: "driver-rpc-port", ContainerPort: int32(driverPort), Protocol: corev1.ProtocolTCP},
					{Name: "blockmanager", ContainerPort: int32(blockPort), Protocol: corev1.ProtocolTCP},
					{Name: "spark-ui", ContainerPort: int32(uiPort), Protocol: corev1.ProtocolTCP},
				},
				Env:          env,
				Resources:    resources,
				VolumeMounts: mounts,
			}},
			Volumes: volumes,
		},
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
			Name: b.serviceName, Namespace: ns, OwnerReferences: owner,
			Labels:      merge(map[string]string{"spark-app-selector": b.appID}, serviceLabels, ownLabels),
			Annotations: nilIfEmpty(serviceAnnotations),
		},
		Spec: corev1.ServiceSpec{
			ClusterIP:      corev1.ClusterIPNone,
			IPFamilyPolicy: ptr(corev1.IPFamilyPolicySingleStack),
			Selector:       labels,
			Ports: []corev1.ServicePort{
				{Name: "driver-rpc-port", Port: int32(driverPort), TargetPort: intstr.FromInt32(int32(driverPort))},
				{Name: "blockmanager", Port: int32(blockPort), TargetPort: intstr.FromInt32(int32(blockPort))},
				{Name: "spark-ui", Port: int32(uiPort), TargetPort: intstr.FromInt32(int32(uiPort))},
			},
		},
	}

	run := JobRun{
		ID:                     id,
		Name:                   b.req.Name,
		VirtualClusterID:       b.target.VirtualClusterID,
		ARN:                    jobRunARN(b.opts.Region, b.opts.AccountID, b.target.VirtualClusterID, id),
		State:                  StatePending,
		ClientToken:            b.target.ClientToken,
		ExecutionRoleARN:       b.req.ExecutionRoleARN,
		ReleaseLabel:           b.req.ReleaseLabel,
		ConfigurationOverrides: b.req.ConfigurationOverrides,
		JobDriver:              b.req.JobDriver,
		CreatedAt:              b.opts.Now.UTC(),
		CreatedBy:              b.opts.CreatedBy,
		Tags:                   b.req.Tags,
	}
	timeout := b.timeout
	if timeout == 0 {
		timeout = defaultJobStartTimeout
	}
	rec, err := newRecordConfigMap(ns, run, map[string]string{
		annotationDriverPod:    b.podName,
		annotationSparkAppID:   b.appID,
		annotationRequestHash:  requestHash(b.req),
		annotationStartTimeout: timeout.String(),
	})
	if err != nil {
		return nil, err
	}
	plan := &Plan{
		JobRun: run, Namespace: ns, Record: rec,
		DriverPod: pod, ConfigMap: configMap, Service: service,
		SparkProperties: b.props, Warnings: b.warnings,
	}
	if b.createRBAC {
		plan.ServiceAccount, plan.Role, plan.RoleBinding = driverRBAC(ns, b.serviceAccount, b.req.ExecutionRoleARN, ownLabels)
	}
	return plan, nil
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

// driverVolumes is MountVolumesFeatureStep for spark.kubernetes.driver.volumes.<type>.<name>.*.
func (b *builder) driverVolumes() ([]corev1.Volume, []corev1.VolumeMount, error) {
	const prefix = "spark.kubernetes.driver.volumes."
	type spec struct{ kind, name string }
	var specs []spec
	seen := map[spec]bool{}
	for _, k := range sortedKeys(b.props) {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		parts := strings.SplitN(rest, ".", 3)
		if len(parts) != 3 {
			return nil, nil, invalidf("%s: expected %s<type>.<name>.(mount|options).<key>", k, prefix)
		}
		s := spec{parts[0], parts[1]}
		if !seen[s] {
			seen[s] = true
			specs = append(specs, s)
		}
	}
	var volumes []corev1.Volume
	var mounts []corev1.VolumeMount
	for _, s := range specs {
		p := prefix + s.kind + "." + s.name + "."
		get := func(k string) string { return b.props[p+k] }
		mountPath := get("mount.path")
		if mountPath == "" {
			return nil, nil, invalidf("%smount.path is required", p)
		}
		vol := corev1.Volume{Name: s.name}
		switch s.kind {
		case "hostPath":
			if get("options.path") == "" {
				return nil, nil, invalidf("%soptions.path is required", p)
			}
			vol.HostPath = &corev1.HostPathVolumeSource{Path: get("options.path")}
			if t := get("options.type"); t != "" {
				vol.HostPath.Type = ptr(corev1.HostPathType(t))
			}
		case "emptyDir":
			vol.EmptyDir = &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMedium(get("options.medium"))}
			if l := get("options.sizeLimit"); l != "" {
				q, err := resource.ParseQuantity(l)
				if err != nil {
					return nil, nil, invalidf("%soptions.sizeLimit=%q is not a quantity", p, l)
				}
				vol.EmptyDir.SizeLimit = &q
			}
		case "persistentVolumeClaim":
			claim := get("options.claimName")
			if claim == "" || strings.EqualFold(claim, "OnDemand") {
				return nil, nil, invalidf("%soptions.claimName must name an existing claim (on-demand claims are not created for the driver)", p)
			}
			vol.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}
		case "nfs":
			if get("options.server") == "" || get("options.path") == "" {
				return nil, nil, invalidf("%soptions.server and options.path are required", p)
			}
			vol.NFS = &corev1.NFSVolumeSource{Server: get("options.server"), Path: get("options.path")}
		default:
			return nil, nil, invalidf("%s: volume type %q is not supported (hostPath, emptyDir, persistentVolumeClaim, nfs)", p, s.kind)
		}
		if errs := validation.IsDNS1123Label(s.name); len(errs) > 0 {
			return nil, nil, invalidf("%s: volume name %q: %s", p, s.name, strings.Join(errs, "; "))
		}
		volumes = append(volumes, vol)
		mounts = append(mounts, corev1.VolumeMount{
			Name: s.name, MountPath: mountPath, SubPath: get("mount.subPath"), ReadOnly: get("mount.readOnly") == "true",
		})
	}
	return volumes, mounts, nil
}

// localDirs is LocalDirsFeatureStep: nothing when a spark-local-dir-* volume is already mounted,
// otherwise one emptyDir per directory of spark.local.dir (default /var/data/spark-<uuid>).
func (b *builder) localDirs(existing []corev1.Volume) ([]corev1.Volume, []corev1.VolumeMount, string, error) {
	for _, v := range existing {
		if strings.HasPrefix(v.Name, "spark-local-dir-") {
			return nil, nil, "", nil
		}
	}
	dirs := splitList(b.props["spark.local.dir"])
	if len(dirs) == 0 {
		raw, err := randomBytes(b.opts.Random, 16)
		if err != nil {
			return nil, nil, "", err
		}
		// Spark uses UUID.randomUUID(): version 4 bits set.
		raw[6] = raw[6]&0x0f | 0x40
		raw[8] = raw[8]&0x3f | 0x80
		u, err := uuid.FromBytes(raw)
		if err != nil {
			return nil, nil, "", fmt.Errorf("local dir name: %w", err)
		}
		dirs = []string{"/var/data/spark-" + u.String()}
	}
	medium := corev1.StorageMediumDefault
	if b.props["spark.kubernetes.local.dirs.tmpfs"] == "true" {
		medium = corev1.StorageMediumMemory
	}
	var volumes []corev1.Volume
	var mounts []corev1.VolumeMount
	for i, d := range dirs {
		name := fmt.Sprintf("spark-local-dir-%d", i+1)
		volumes = append(volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: medium}}})
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: d})
	}
	return volumes, mounts, strings.Join(dirs, ","), nil
}

// driverRBAC is what a driver needs to run its executors: pods, services, configmaps and claims in its
// own namespace. Without it drivers fail with "forbidden" on the first executor.
func driverRBAC(ns, name, roleARN string, labels map[string]string) (*corev1.ServiceAccount, *rbacv1.Role, *rbacv1.RoleBinding) {
	sa := &corev1.ServiceAccount{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns, Labels: merge(labels),
			Annotations: map[string]string{"eks.amazonaws.com/role-arn": roleARN},
		},
	}
	role := &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: merge(labels)},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""},
			Resources: []string{"pods", "services", "configmaps", "persistentvolumeclaims"},
			Verbs:     []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"},
		}},
	}
	binding := &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: merge(labels)},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}},
	}
	return sa, role, binding
}

func jobRunARN(region, account, vc, id string) string {
	return fmt.Sprintf("arn:aws:emr-containers:%s:%s:/virtualclusters/%s/jobruns/%s",
		firstNonEmpty(region, "us-east-1"), firstNonEmpty(account, "000000000000"), vc, id)
}

// prefixed is KubernetesUtils.parsePrefixedKeyValuePairs with validation of each pair.
func (b *builder) prefixed(prefix string, validate func(k, v string) error) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range b.props {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			if err := validate(rest, v); err != nil {
				return nil, &ValidationError{Message: k, Err: err}
			}
			out[rest] = v
		}
	}
	return out, nil
}

func (b *builder) intProp(key string, def int) int {
	if n, err := strconv.Atoi(strings.TrimSpace(b.props[key])); err == nil {
		return n
	}
	return def
}

func validateLabel(k, v string) error {
	if errs := validation.IsQualifiedName(k); len(errs) > 0 {
		return fmt.Errorf("label key %q: %s", k, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
		return fmt.Errorf("label %s value %q: %s", k, v, strings.Join(errs, "; "))
	}
	return nil
}

func validateAnnotationKey(k, _ string) error {
	if errs := validation.IsQualifiedName(strings.ToLower(k)); len(errs) > 0 {
		return fmt.Errorf("annotation key %q: %s", k, strings.Join(errs, "; "))
	}
	return nil
}

var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func validEnvName(s string) bool { return envNamePattern.MatchString(s) }

// requestHash identifies a request so that a reused clientToken with a different body is refused.
func requestHash(req *StartJobRunRequest) string {
	c := *req
	c.ClientToken = ""
	// Marshalling plain strings, maps and slices cannot fail.
	data, _ := json.Marshal(c)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

func javaPropertiesBody(props map[string]string) string {
	var sb strings.Builder
	for _, k := range sortedKeys(props) {
		sb.WriteString(escapeProperty(k, true) + "=" + escapeProperty(props[k], false) + "\n")
	}
	return sb.String()
}

// javaDouble prints a float as Java's Double.toString does for the values used here (0.1, 0.4, 1.0).
func javaDouble(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func randomBytes(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("reading random bytes: %w", err)
	}
	return buf, nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func joinList(list, item string) string {
	if strings.TrimSpace(list) == "" {
		return item
	}
	return list + "," + item
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func ptr[T any](v T) *T { return &v }
