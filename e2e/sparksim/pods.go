package sparksim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Label keys and values Spark puts on its pods (Constants.scala).
const (
	LabelAppSelector       = "spark-app-selector"
	LabelRole              = "spark-role"
	LabelAppName           = "spark-app-name"
	LabelVersion           = "spark-version"
	LabelExecID            = "spark-exec-id"
	LabelResourceProfileID = "spark-exec-resourceprofile-id"
	RoleDriver             = "driver"
	RoleExecutor           = "executor"

	DriverContainer   = "spark-kubernetes-driver"
	ExecutorContainer = "spark-kubernetes-executor"

	// LabelProfile is sparkplace's profile label; Spark sets it from spark.kubernetes.{driver,executor}.label.*.
	LabelProfile = "sparkplace.io/profile"
)

// App is a Spark application as spark-submit configures it. NewApp fills in Spark's defaults; change fields
// (the Spark conf they stand for is named) before building pods.
type App struct {
	// Name is spark.app.name; the spark-app-name label is its sanitised form.
	Name      string
	Namespace string
	// ID is the application id and spark-app-selector label: "spark-" and 32 hex digits.
	ID string
	// ResourcePrefix names the pods: <prefix>-driver, <prefix>-exec-<id> (spark.kubernetes.executor.podNamePrefix).
	ResourcePrefix string
	// SparkVersion is the spark-version label (Spark >= 3.3); empty leaves the label out, as Spark 3.0-3.2 do.
	SparkVersion string
	// Image is spark.kubernetes.container.image.
	Image     string
	MainClass string
	// Resource is the application jar or file; Arguments follow it.
	Resource  string
	Arguments []string
	// User is SPARK_USER.
	User string
	// DriverCores, ExecutorCores are spark.driver.cores, spark.executor.cores (the CPU requests).
	DriverCores, ExecutorCores int
	// DriverMemoryMiB, ExecutorMemoryMiB are spark.{driver,executor}.memory; the pods request and limit that plus
	// the overhead, max(10%, 384 MiB).
	DriverMemoryMiB, ExecutorMemoryMiB int
	// DriverLabels, ExecutorLabels are spark.kubernetes.{driver,executor}.label.*; annotations likewise.
	DriverLabels, ExecutorLabels           map[string]string
	DriverAnnotations, ExecutorAnnotations map[string]string
	// NodeSelector is spark.kubernetes.node.selector.*; the role-specific ones are merged over it.
	NodeSelector, DriverNodeSelector, ExecutorNodeSelector map[string]string
	// ServiceAccount is spark.kubernetes.authenticate.driver.serviceAccountName; empty uses the namespace's default.
	ServiceAccount string
	// LocalDirsTmpfs is spark.kubernetes.local.dirs.tmpfs (emptyDir medium Memory).
	LocalDirsTmpfs bool
	// ConfigMapSuffix names the conf ConfigMaps, spark-drv-<suffix>-conf-map and spark-exec-<suffix>-conf-map.
	ConfigMapSuffix string
	// ClientMode is --deploy-mode client (notebooks, spark-shell): the driver runs outside any
	// spark-role=driver pod. DriverPodName is then spark.kubernetes.driver.pod.name, the pod the driver JVM
	// runs in (see NotebookPod), which owns the executors; empty: the executors have no owner.
	ClientMode    bool
	DriverPodName string
	// Sidecars are the other containers of a pod template (spark.kubernetes.{driver,executor}.podTemplateFile):
	// Spark appends its own container after them, last.
	Sidecars []corev1.Container
	// ExecutorTemplate is the executor pod template the driver read (see UseExecutorTemplate); the executors
	// are built on it, and ExecutorTemplateContainer (spark.kubernetes.executor.podTemplateContainerName)
	// names Spark's container in it. Sidecars do not apply to executors then.
	ExecutorTemplate          *corev1.Pod
	ExecutorTemplateContainer string
}

// NewApp returns a SparkPi-like application with Spark 3.5's defaults, a fresh application id and resource
// prefix, 1 core and 2 GiB for the driver and each executor.
func NewApp(name, namespace string) *App {
	return &App{
		Name:              name,
		Namespace:         namespace,
		ID:                "spark-" + randomHex(16),
		ResourcePrefix:    sanitize(name, 40) + "-" + randomHex(8),
		SparkVersion:      "3.5.3",
		Image:             "apache/spark:3.5.3",
		MainClass:         "org.apache.spark.examples.SparkPi",
		Resource:          "local:///opt/spark/examples/jars/spark-examples_2.12-3.5.3.jar",
		Arguments:         []string{"1000"},
		User:              "spark",
		DriverCores:       1,
		ExecutorCores:     1,
		DriverMemoryMiB:   2048,
		ExecutorMemoryMiB: 2048,
		ConfigMapSuffix:   randomHex(8),
	}
}

// WithProfile sets the sparkplace.io/profile label on the driver and the executors, as
// --conf spark.kubernetes.{driver,executor}.label.sparkplace.io/profile=NAME does.
func (a *App) WithProfile(profile string) *App {
	a.DriverLabels = withEntry(a.DriverLabels, LabelProfile, profile)
	a.ExecutorLabels = withEntry(a.ExecutorLabels, LabelProfile, profile)
	return a
}

// WithDriverZone pins the driver to a zone, as
// --conf spark.kubernetes.driver.node.selector.topology.kubernetes.io/zone=ZONE does.
func (a *App) WithDriverZone(zone string) *App {
	a.DriverNodeSelector = withEntry(a.DriverNodeSelector, "topology.kubernetes.io/zone", zone)
	return a
}

// InClientMode makes the app a client-mode one (a notebook's): no driver pod; the executors are owned by
// the pod named notebook (see NotebookPod), or by nothing when it is empty.
func (a *App) InClientMode(notebook string) *App {
	a.ClientMode, a.DriverPodName = true, notebook
	return a
}

// WithLogSidecar adds a pod-template sidecar before Spark's container, as a platform's template often does:
// a log shipper running as its own user that reads Spark's first local dir.
func (a *App) WithLogSidecar() *App {
	uid := int64(10001)
	a.Sidecars = append(a.Sidecars, corev1.Container{
		Name:            "log-shipper",
		Image:           "fluent/fluent-bit:3.2.4",
		ImagePullPolicy: corev1.PullIfNotPresent,
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
		}},
		SecurityContext: &corev1.SecurityContext{RunAsUser: &uid},
		VolumeMounts:    []corev1.VolumeMount{{Name: "spark-local-dir-1", MountPath: "/spark-local", ReadOnly: true}},
	})
	return a
}

// NotebookPod is the pod a client-mode driver runs in (a Jupyter server), named App.DriverPodName: no Spark
// labels, so the webhook does not place it; it lands wherever nodeSelector says.
func (a *App) NotebookPod(nodeSelector map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: a.DriverPodName, Namespace: a.Namespace, Labels: map[string]string{
			"app.kubernetes.io/name": "jupyter", "app.kubernetes.io/component": "notebook",
		}},
		Spec: corev1.PodSpec{
			NodeSelector: nodeSelector,
			Containers: []corev1.Container{{
				Name: "notebook", Image: "quay.io/jupyter/pyspark-notebook:spark-3.5.3",
				Ports:     []corev1.ContainerPort{{Name: "notebook", ContainerPort: 8888}, {Name: "spark-driver", ContainerPort: 7078}},
				Resources: sparkResources(1, withOverhead(a.DriverMemoryMiB)),
			}},
		},
	}
}

// SparkContainer returns Spark's own container of a pod: spark-kubernetes-driver or -executor, else the
// last one (Spark appends its container after a template's).
func SparkContainer(p *corev1.Pod) *corev1.Container {
	for i := range p.Spec.Containers {
		if n := p.Spec.Containers[i].Name; n == DriverContainer || n == ExecutorContainer {
			return &p.Spec.Containers[i]
		}
	}
	if len(p.Spec.Containers) == 0 {
		return nil
	}
	return &p.Spec.Containers[len(p.Spec.Containers)-1]
}

// DriverName is the driver pod's name.
func (a *App) DriverName() string { return a.ResourcePrefix + "-driver" }

// ExecutorName is the name of executor id.
func (a *App) ExecutorName(id int) string { return a.ResourcePrefix + "-exec-" + strconv.Itoa(id) }

// DriverServiceName is the headless Service spark-submit creates for the driver; executors dial it.
func (a *App) DriverServiceName() string { return a.ResourcePrefix + "-driver-svc" }

func (a *App) baseLabels(role string) map[string]string {
	l := map[string]string{LabelAppSelector: a.ID, LabelRole: role}
	if a.SparkVersion != "" {
		l[LabelAppName] = sanitize(a.Name, 63)
		l[LabelVersion] = a.SparkVersion
	}
	return l
}

// DriverPod is the pod spark-submit creates in cluster mode.
func (a *App) DriverPod() *corev1.Pod {
	labels := withDefaults(a.DriverLabels, a.baseLabels(RoleDriver))
	localDir := "/var/data/spark-" + uuid()
	memory := withOverhead(a.DriverMemoryMiB)
	args := append([]string{"driver", "--properties-file", "/opt/spark/conf/spark.properties",
		"--class", a.MainClass, a.Resource}, a.Arguments...)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: a.DriverName(), Namespace: a.Namespace, Labels: labels, Annotations: copyMap(a.DriverAnnotations),
		},
		Spec: corev1.PodSpec{
			RestartPolicy:      corev1.RestartPolicyNever,
			ServiceAccountName: a.ServiceAccount,
			NodeSelector:       withDefaults(a.DriverNodeSelector, a.NodeSelector),
			Containers: append(a.sidecars(), corev1.Container{
				Name:            DriverContainer,
				Image:           a.Image,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Args:            args,
				Ports: []corev1.ContainerPort{
					{Name: "driver-rpc-port", ContainerPort: 7078, Protocol: corev1.ProtocolTCP},
					{Name: "blockmanager", ContainerPort: 7079, Protocol: corev1.ProtocolTCP},
					{Name: "spark-ui", ContainerPort: 4040, Protocol: corev1.ProtocolTCP},
				},
				Env: []corev1.EnvVar{
					{Name: "SPARK_USER", Value: a.User},
					{Name: "SPARK_APPLICATION_ID", Value: a.ID},
					{Name: "SPARK_DRIVER_BIND_ADDRESS", ValueFrom: fieldRef("status.podIP")},
					{Name: "SPARK_LOCAL_DIRS", Value: localDir},
					{Name: "SPARK_CONF_DIR", Value: "/opt/spark/conf"},
				},
				Resources: sparkResources(a.DriverCores, memory),
				VolumeMounts: []corev1.VolumeMount{
					{Name: "spark-local-dir-1", MountPath: localDir},
					{Name: "spark-conf-volume-driver", MountPath: "/opt/spark/conf"},
				},
			}),
			Volumes: []corev1.Volume{
				a.localDirVolume(),
				confVolume("spark-conf-volume-driver", "spark-drv-"+a.ConfigMapSuffix+"-conf-map"),
			},
		},
	}
}

// ExecutorPod is executor id as the driver's ExecutorPodsAllocator creates it, owned by driver (which must
// have been read back from the API server: the owner reference needs its UID); nil for a client-mode
// driver that runs in no pod. Resource profile 0.
func (a *App) ExecutorPod(driver *corev1.Pod, id int) *corev1.Pod {
	labels := withDefaults(a.ExecutorLabels, a.baseLabels(RoleExecutor))
	labels[LabelExecID] = strconv.Itoa(id)
	labels[LabelResourceProfileID] = "0"
	name := a.ExecutorName(id)
	localDir := "/var/data/spark-" + uuid()
	memory := withOverhead(a.ExecutorMemoryMiB)
	controller := true
	driverHost := a.DriverServiceName() + "." + a.Namespace + ".svc"
	var owners []metav1.OwnerReference
	if driver != nil {
		owners = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: driver.Name, UID: driver.UID, Controller: &controller}}
		if a.ClientMode { // spark.driver.host: the pod's IP
			driverHost = driver.Status.PodIP
		}
	} else if a.ClientMode {
		driverHost = "10.0.0.1" // the notebook host outside the cluster
	}
	driverURL := fmt.Sprintf("spark://CoarseGrainedScheduler@%s:7078", driverHost)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: a.Namespace, Labels: labels, Annotations: copyMap(a.ExecutorAnnotations),
			OwnerReferences: owners,
		},
		Spec: corev1.PodSpec{
			Hostname:           sanitize(name, 63),
			RestartPolicy:      corev1.RestartPolicyNever,
			ServiceAccountName: a.ServiceAccount,
			NodeSelector:       withDefaults(a.ExecutorNodeSelector, a.NodeSelector),
			Containers: append(a.sidecars(), corev1.Container{
				Name:            ExecutorContainer,
				Image:           a.Image,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Args:            []string{"executor"},
				Ports:           []corev1.ContainerPort{{Name: "blockmanager", ContainerPort: 7079, Protocol: corev1.ProtocolTCP}},
				Env: []corev1.EnvVar{
					{Name: "SPARK_USER", Value: a.User},
					{Name: "SPARK_DRIVER_URL", Value: driverURL},
					{Name: "SPARK_EXECUTOR_CORES", Value: strconv.Itoa(a.ExecutorCores)},
					{Name: "SPARK_EXECUTOR_MEMORY", Value: strconv.Itoa(a.ExecutorMemoryMiB) + "m"},
					{Name: "SPARK_APPLICATION_ID", Value: a.ID},
					{Name: "SPARK_CONF_DIR", Value: "/opt/spark/conf"},
					{Name: "SPARK_EXECUTOR_ID", Value: strconv.Itoa(id)},
					{Name: "SPARK_RESOURCE_PROFILE_ID", Value: "0"},
					{Name: "SPARK_EXECUTOR_POD_IP", ValueFrom: fieldRef("status.podIP")},
					{Name: "SPARK_EXECUTOR_POD_NAME", ValueFrom: fieldRef("metadata.name")},
					{Name: "SPARK_JAVA_OPT_0", Value: "-Dspark.driver.port=7078"},
					{Name: "SPARK_LOCAL_DIRS", Value: localDir},
				},
				Resources: sparkResources(a.ExecutorCores, memory),
				VolumeMounts: []corev1.VolumeMount{
					{Name: "spark-local-dir-1", MountPath: localDir},
					{Name: "spark-conf-volume-exec", MountPath: "/opt/spark/conf"},
				},
			}),
			Volumes: []corev1.Volume{
				a.localDirVolume(),
				confVolume("spark-conf-volume-exec", "spark-exec-"+a.ConfigMapSuffix+"-conf-map"),
			},
		},
	}
	if a.ExecutorTemplate != nil {
		pod.Spec.Containers = pod.Spec.Containers[len(pod.Spec.Containers)-1:]
		return a.onTemplate(pod)
	}
	return pod
}

// sidecars are a copy of the template's other containers, which come before Spark's.
func (a *App) sidecars() []corev1.Container {
	out := make([]corev1.Container, len(a.Sidecars), len(a.Sidecars)+1)
	for i := range a.Sidecars {
		a.Sidecars[i].DeepCopyInto(&out[i])
	}
	return out
}

// localDirVolume is Spark's default scratch space: one emptyDir, spark-local-dir-1.
func (a *App) localDirVolume() corev1.Volume {
	src := &corev1.EmptyDirVolumeSource{}
	if a.LocalDirsTmpfs {
		src.Medium = corev1.StorageMediumMemory
	}
	return corev1.Volume{Name: "spark-local-dir-1", VolumeSource: corev1.VolumeSource{EmptyDir: src}}
}

func confVolume(name, configMap string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: configMap},
		Items:                []corev1.KeyToPath{{Key: "spark.properties", Path: "spark.properties"}},
	}}}
}

func fieldRef(path string) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}
}

// withOverhead is Spark's pod memory: memory + max(10% of it, 384 MiB).
func withOverhead(mib int) resource.Quantity {
	return resource.MustParse(strconv.Itoa(mib+max(mib/10, 384)) + "Mi")
}

var invalidLabelChars = regexp.MustCompile(`[^a-z0-9.-]+`)

// sanitize lowercases s, replaces what a label value or DNS label may not hold with '-', and trims it to n
// characters without leading or trailing separators (Spark's app-name label sanitisation).
func sanitize(s string, n int) string {
	s = invalidLabelChars.ReplaceAllString(strings.ToLower(s), "-")
	if len(s) > n {
		s = s[:n]
	}
	return strings.Trim(s, "-.")
}

// withDefaults returns user entries over defaults, in a new map; nil when both are empty.
func withDefaults(user, defaults map[string]string) map[string]string {
	if len(user) == 0 && len(defaults) == 0 {
		return nil
	}
	out := copyMap(defaults)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, user)
	return out
}

func withEntry(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func randomHex(bytes int) string {
	b := make([]byte, bytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

func uuid() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// sparkResources is what Spark requests for a driver or executor container: its cores, and memory (with
// overhead) as both request and limit.
func sparkResources(cores int, memory resource.Quantity) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: *resource.NewQuantity(int64(cores), resource.DecimalSI), corev1.ResourceMemory: memory},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: memory},
	}
}
