package policies

import corev1 "k8s.io/api/core/v1"

// Input is the document a policy sees as `input`. The webhook and `sparkplace policy eval` build it the same way.
//
// Pod is the admitted pod reduced to what placement depends on, so that every executor of one application
// yields the same input (and so the same, cached, decision): labels without spark-exec-id, annotations,
// nodeSelector, affinity, tolerations, topologySpreadConstraints, pod securityContext, schedulerName,
// priorityClassName, the spark-local-dir-* volumes, generateName when the pod has no name, and per container
// (init containers too) its name, image, securityContext and its mounts of those volumes, without their mount
// paths (in client mode Spark gives every executor its own /var/data/spark-<uuid>). Per-pod values (name,
// env, service-account token volumes, those paths) are left out, and so are resources, which the admission
// path does not decode.
type Input struct {
	// Operation is the admission operation, "CREATE".
	Operation string `json:"operation"`
	// Role is the pod's spark-role label: "driver" or "executor".
	Role      string    `json:"role"`
	App       App       `json:"app"`
	Namespace Namespace `json:"namespace"`
	Driver    Driver    `json:"driver"`
	// Zone is what the cluster says about the zone an executor should run in; empty for drivers.
	Zone Zone       `json:"zone"`
	Pod  corev1.Pod `json:"pod"`
	// ZoneChoice is the zone the capacity index chose for a driver; nil for executors and when none was
	// chosen. It holds no numbers, so drivers with the same choice share a cached decision.
	ZoneChoice *ZoneChoice `json:"zoneChoice,omitempty"`
}

// ZoneChoice is a driver's zone as the capacity index chose it.
type ZoneChoice struct {
	Zone string `json:"zone"`
	// Reason is capacity, hint, weight or round-robin (see package zonecapacity).
	Reason string `json:"reason"`
}

// App identifies the Spark application from its pod labels.
type App struct {
	// ID is the spark-app-selector label, e.g. spark-0123456789abcdef0123456789abcdef.
	ID string `json:"id"`
	// HasID is true when ID is not empty. A rule that only needs to know whether the pod names its
	// application (to select the application's pods with matchLabelKeys, see placement.Decision) reads this,
	// not ID: a decision that reads ID is cached per application, one that does not is shared by the
	// executors of every application of one shape.
	HasID bool `json:"hasID"`
	// Name is the spark-app-name label (Spark >= 3.3); empty before.
	Name string `json:"name,omitempty"`
	// SparkVersion is the spark-version label (Spark >= 3.3); empty before.
	SparkVersion string `json:"sparkVersion,omitempty"`
}

// Namespace is the pod's namespace with its labels (a namespace may set the default profile).
type Namespace struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	// PodSecurity is the value of its pod-security.kubernetes.io/enforce label (PodSecurityLabel), the Pod
	// Security level the API server holds its pods to; empty when unlabelled (config podSecurity.defaultEnforce).
	PodSecurity string `json:"podSecurity,omitempty"`
}

// PodSecurityLabel is the namespace label that sets the Pod Security level the API server enforces.
const PodSecurityLabel = "pod-security.kubernetes.io/enforce"

// Driver describes an executor's driver as the cluster state knows it. For a driver pod it is empty.
type Driver struct {
	// Found is true when the driver pod was found: the pod the executor's ownerReference names (a Spark
	// driver, or a notebook pod a client-mode driver runs in), else the driver with its spark-app-selector.
	Found bool   `json:"found"`
	Name  string `json:"name,omitempty"`
	// Role is "driver" for a Spark driver pod, "" for another pod (client mode).
	Role string `json:"role,omitempty"`
	// NodeName is the node the driver is bound to; empty while it is unscheduled.
	NodeName string `json:"nodeName,omitempty"`
	// Scheduled is true when NodeName is not empty. A rule that only needs to know whether the driver is
	// bound reads this, not NodeName (or Name), so that executors whose drivers run on different nodes of one
	// zone share a cached decision.
	Scheduled bool `json:"scheduled"`
	// Zone is the node's label named by config zone.topologyKey; empty when the node or the label is unknown.
	Zone string `json:"zone,omitempty"`
}

// Zone is what the cluster says about the zone an executor should run in.
type Zone struct {
	// Value is the zone the executor should follow: its driver's (Source "driver"), or in client mode
	// without a driver pod the zone where the application's executors already run (Source "executors").
	// Empty when neither is known.
	Value  string `json:"value,omitempty"`
	Source string `json:"source,omitempty"`
	// Unschedulable is true when no schedulable node could take the pod with the required zone term the
	// policy asked for (set on the second evaluation, after the webhook checked the first decision).
	Unschedulable bool `json:"unschedulable,omitempty"`
	// Relaxed names why the application's zone pin is relaxed: "capacity" once its executors waited on the
	// pin longer than config zone.bound. Empty when it is not.
	Relaxed string `json:"relaxed,omitempty"`
}
