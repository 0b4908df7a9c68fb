package cluster

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/sparkplace/sparkplace/e2e/sparksim"
)

// eksNode is a node as an EKS cluster stores it: well-known and node-group labels, the annotations the
// kubelet and CSI drivers set, addresses, node info, conditions with messages, a list of cached images, and
// the managed fields of the kubelet and the node lifecycle controller.
func eksNode(i int) *corev1.Node {
	name := fmt.Sprintf("ip-10-%d-%d-%d.ec2.internal", i/65536%256, i/256%256, i%256)
	zone := []string{"us-east-1a", "us-east-1b", "us-east-1c"}[i%3]
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("63870448Ki"),
		corev1.ResourcePods: resource.MustParse("234"), corev1.ResourceEphemeralStorage: resource.MustParse("104845292Ki"),
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, UID: types.UID(fmt.Sprintf("0b8e6f0c-1d2e-4f3a-9b8c-%012d", i)), ResourceVersion: strconv.Itoa(1000000 + i),
			CreationTimestamp: metav1.NewTime(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)),
			Labels: map[string]string{
				"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/instance-type": "m5.4xlarge", "beta.kubernetes.io/os": "linux",
				"eks.amazonaws.com/capacityType": "SPOT", "eks.amazonaws.com/nodegroup": "spark-spot-" + zone,
				"eks.amazonaws.com/nodegroup-image": "ami-0c2f3d4e5a6b7c8d9", "eks.amazonaws.com/sourceLaunchTemplateId": "lt-0a1b2c3d4e5f60718",
				"eks.amazonaws.com/sourceLaunchTemplateVersion": "7", "failure-domain.beta.kubernetes.io/region": "us-east-1",
				"failure-domain.beta.kubernetes.io/zone": zone, "k8s.io/cloud-provider-aws": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
				"kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
				"node.kubernetes.io/instance-type": "m5.4xlarge", "topology.ebs.csi.aws.com/zone": zone,
				"topology.k8s.aws/zone-id": "use1-az" + strconv.Itoa(i%3+1), "topology.kubernetes.io/region": "us-east-1",
				"topology.kubernetes.io/zone": zone, "noderole": "spark",
			},
			Annotations: map[string]string{
				"alpha.kubernetes.io/provided-node-ip":                   "10.0.42.17",
				"csi.volume.kubernetes.io/nodeid":                        `{"ebs.csi.aws.com":"i-0a1b2c3d4e5f60718","efs.csi.aws.com":"i-0a1b2c3d4e5f60718"}`,
				"node.alpha.kubernetes.io/ttl":                           "0",
				"volumes.kubernetes.io/controller-managed-attach-detach": "true",
			},
		},
		Spec: corev1.NodeSpec{ProviderID: "aws:///" + zone + "/i-0a1b2c3d4e5f60718", Taints: []corev1.Taint{
			{Key: "noderole", Value: "spark", Effect: corev1.TaintEffectNoSchedule}, {Key: "spot", Value: "true", Effect: corev1.TaintEffectNoSchedule},
		}},
		Status: corev1.NodeStatus{
			Capacity: capacity, Allocatable: capacity.DeepCopy(), Phase: corev1.NodeRunning,
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.42.17"}, {Type: corev1.NodeHostName, Address: name},
				{Type: corev1.NodeInternalDNS, Address: name}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
			NodeInfo: corev1.NodeSystemInfo{MachineID: "ec2a1b2c3d4e5f60718293a4b5c6d7e8", SystemUUID: "ec2a1b2c-3d4e-5f60-7182-93a4b5c6d7e8",
				BootID: "5f607182-93a4-b5c6-d7e8-f90a1b2c3d4e", KernelVersion: "6.1.115-126.197.amzn2023.x86_64", OSImage: "Amazon Linux 2023.6.20241121",
				ContainerRuntimeVersion: "containerd://1.7.23", KubeletVersion: "v1.37.2-eks-a737599", OperatingSystem: "linux", Architecture: "amd64"},
		},
	}
	now := metav1.NewTime(time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC))
	for _, c := range []struct {
		t      corev1.NodeConditionType
		s      corev1.ConditionStatus
		reason string
	}{
		{corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory"}, {corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure"},
		{corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID"}, {corev1.NodeReady, corev1.ConditionTrue, "KubeletReady"},
	} {
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: c.t, Status: c.s, Reason: c.reason,
			Message: "kubelet reports " + c.reason, LastHeartbeatTime: now, LastTransitionTime: now})
	}
	for j := range 30 {
		n.Status.Images = append(n.Status.Images, corev1.ContainerImage{SizeBytes: int64(100000000 + j), Names: []string{
			fmt.Sprintf("602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/image-%d@sha256:%064d", j, j),
			fmt.Sprintf("602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/image-%d:v1.%d.0-eksbuild.1", j, j),
		}})
	}
	raw := make([]byte, 3000) // managed fields of the kubelet, the lifecycle controller and the CSI drivers
	for k := range raw {
		raw[k] = 'f'
	}
	n.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate,
		FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: raw}}}
	return n
}

// runningExecutor is a Spark 3.5 executor as the API server stores it once it runs.
func runningExecutor(app *sparksim.App, driver *corev1.Pod, id int, node string) *corev1.Pod {
	p := app.ExecutorPod(driver, id)
	p.UID = types.UID(fmt.Sprintf("6d1f0c2a-3b4e-4f5a-8b6c-%012d", id))
	p.ResourceVersion = strconv.Itoa(2000000 + id)
	p.Spec.NodeName = node
	now := metav1.NewTime(time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC))
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, HostIP: "10.0.42.17", PodIP: "10.0.43.9", StartTime: &now,
		QOSClass: corev1.PodQOSBurstable, PodIPs: []corev1.PodIP{{IP: "10.0.43.9"}}}
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: sparksim.ExecutorContainer, Ready: true, Image: app.Image,
		ImageID: "docker.io/apache/spark@sha256:" + fmt.Sprintf("%064d", 1), ContainerID: "containerd://" + fmt.Sprintf("%064d", id),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}
	raw := make([]byte, 2500) // managed fields of the driver (fabric8) and the kubelet
	for k := range raw {
		raw[k] = 'f'
	}
	p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "fabric8-kubernetes-client", Operation: metav1.ManagedFieldsOperationUpdate,
		FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: raw}}}
	return p
}

// decoded returns obj as an informer gets it: decoded from the API server's protobuf, so that every string
// is its own copy (the fixtures share their constant strings).
func decoded[T any, P interface {
	*T
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}](obj P) P {
	b, err := obj.Marshal()
	if err != nil {
		panic(err)
	}
	out := P(new(T))
	if err := out.Unmarshal(b); err != nil {
		panic(err)
	}
	return out
}

// cacheMemory builds what the webhook caches for pods Spark executors and nodes nodes: the informer stores
// (client-go indexers: the pod informer's without an index, controller-runtime's node cache with its
// namespace index) holding the objects as the transform
// leaves them, and the State index over the same objects. It returns the heap the caches hold, in bytes,
// with the transforms (strip) or without (the objects as the API server sends them).
func cacheMemory(pods, nodes int, strip bool) uint64 {
	app := sparksim.NewApp("etl", "spark-jobs")
	driver := app.DriverPod()
	driver.UID = "driver-uid"
	transformPod, transformNode := StripPod, StripNode
	if !strip {
		transformPod, transformNode = func(o any) (any, error) { return o, nil }, func(o any) (any, error) { return o, nil }
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	indexers := toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc}
	podStore := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{}) // NewPodInformer's
	nodeStore := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, indexers)
	state := NewState(nil)
	for i := range nodes {
		o, _ := transformNode(decoded(eksNode(i)))
		_ = nodeStore.Add(o)
		if n, ok := o.(*Node); ok {
			state.SetStrippedNode(n)
		} else {
			state.SetNode(o.(*corev1.Node))
		}
	}
	for i := range pods {
		o, _ := transformPod(decoded(runningExecutor(app, driver, i+1, fmt.Sprintf("ip-10-0-%d-%d.ec2.internal", i/256%256, i%256))))
		_ = podStore.Add(o)
		state.SetPod(o.(*corev1.Pod))
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(podStore)
	runtime.KeepAlive(nodeStore)
	runtime.KeepAlive(state)
	return after.HeapAlloc - before.HeapAlloc
}

// BenchmarkCacheMemory reports the heap of the webhook's caches for 1,000 Spark pods and 5,000 nodes, with
// the transforms and without (make bench-cache):
//
//	go test ./cluster -run '^$' -bench CacheMemory -benchtime 1x
func BenchmarkCacheMemory(b *testing.B) {
	for b.Loop() {
		b.ReportMetric(float64(cacheMemory(1000, 5000, true))/(1<<20), "MiB-stripped")
		b.ReportMetric(float64(cacheMemory(1000, 5000, false))/(1<<20), "MiB-unstripped")
	}
}

// TestCacheMemoryRuns keeps the measurement working at a small scale; it asserts no figure.
func TestCacheMemoryRuns(t *testing.T) {
	if cacheMemory(10, 50, true) == 0 {
		t.Log("no heap growth measured")
	}
}
