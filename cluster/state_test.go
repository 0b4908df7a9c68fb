package cluster

import (
	"context"
	"errors"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const (
	app       = "spark-9f2c4e6a8b0d4f1e3a5c7e9b1d3f5a7c"
	namespace = "spark-jobs"
	zoneKey   = "topology.kubernetes.io/zone"
)

// podBuilder makes Spark-like pods for the tests.
type podBuilder struct{ pod *corev1.Pod }

func makePod(name, role string) *podBuilder {
	labels := map[string]string{LabelAppID: app}
	if role != "" {
		labels[LabelRole] = role
	}
	return &podBuilder{&corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: namespace, UID: types.UID("uid-" + name), Labels: labels,
	}}}
}

func (b *podBuilder) node(n string) *podBuilder { b.pod.Spec.NodeName = n; return b }

func (b *podBuilder) ownedBy(owner *corev1.Pod) *podBuilder {
	controller := true
	b.pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: owner.Name, UID: owner.UID, Controller: &controller}}
	return b
}

func (b *podBuilder) label(k, v string) *podBuilder { b.pod.Labels[k] = v; return b }

func (b *podBuilder) unschedulable() *podBuilder {
	b.pod.Status.Phase = corev1.PodPending
	b.pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/9 nodes are available"}}
	return b
}

func (b *podBuilder) zonePin(zone string) *podBuilder {
	b.pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: zoneKey, Operator: corev1.NodeSelectorOpIn, Values: []string{zone}}}}},
	}}}
	return b
}

func (b *podBuilder) obj() *corev1.Pod { return b.pod }

func readyNode(name string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.NodeSpec{Taints: taints},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}
}

func TestDriver(t *testing.T) {
	node := readyNode("ip-10-0-42-17.ec2.internal", map[string]string{zoneKey: "us-east-1b"})
	driver := makePod("pi-5c0f4a93b1d2e7f8-driver", RoleDriver).node(node.Name).obj()
	notebook := makePod("jupyter-alice", "").node(node.Name).obj()
	delete(notebook.Labels, LabelAppID)
	cases := map[string]struct {
		pods     []*corev1.Pod
		executor *corev1.Pod
		want     Driver
	}{
		"the driver its ownerReference names": {
			pods:     []*corev1.Pod{driver},
			executor: makePod("pi-exec-1", RoleExecutor).ownedBy(driver).obj(),
			want:     Driver{Name: driver.Name, Role: RoleDriver, NodeName: node.Name},
		},
		"a notebook pod without spark-role that owns it (client mode), read once": {
			pods:     []*corev1.Pod{notebook},
			executor: makePod("pi-exec-1", RoleExecutor).ownedBy(notebook).obj(),
			want:     Driver{Name: notebook.Name, NodeName: node.Name},
		},
		"by spark-app-selector when the owner is gone": {
			pods:     []*corev1.Pod{makePod("renamed-driver", RoleDriver).node(node.Name).obj()},
			executor: makePod("pi-exec-1", RoleExecutor).ownedBy(driver).obj(),
			want:     Driver{Name: "renamed-driver", Role: RoleDriver, NodeName: node.Name},
		},
		"by spark-app-selector without an owner, the bound driver of two": {
			pods:     []*corev1.Pod{makePod("a-driver", RoleDriver).obj(), makePod("b-driver", RoleDriver).node(node.Name).obj()},
			executor: makePod("pi-exec-1", RoleExecutor).obj(),
			want:     Driver{Name: "b-driver", Role: RoleDriver, NodeName: node.Name},
		},
		"driver not yet scheduled": {
			pods:     []*corev1.Pod{makePod(driver.Name, RoleDriver).obj()},
			executor: makePod("pi-exec-1", RoleExecutor).obj(),
			want:     Driver{Name: driver.Name, Role: RoleDriver},
		},
		"the driver of another application is not taken": {
			pods:     []*corev1.Pod{makePod("other-driver", RoleDriver).label(LabelAppID, "spark-00000000000000000000000000000000").node(node.Name).obj()},
			executor: makePod("pi-exec-1", RoleExecutor).obj(),
		},
		"client mode: no driver pod, no owner": {
			pods:     []*corev1.Pod{makePod("pi-exec-2", RoleExecutor).node(node.Name).obj()},
			executor: makePod("pi-exec-1", RoleExecutor).obj(),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			getter := &countingGetter{pods: map[string]*corev1.Pod{}}
			s := NewState(getter)
			for _, p := range tc.pods {
				if IsSparkPod(p) {
					stripped, _ := StripPod(p)
					s.SetPod(stripped.(*corev1.Pod))
				} else {
					getter.pods[p.Name] = p
				}
			}
			for range 3 {
				got, err := s.Driver(context.Background(), namespace, tc.executor)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Fatalf("driver (-want +got):\n%s", diff)
				}
			}
			if getter.calls > 1 {
				t.Errorf("owner pod read %d times for 3 executors, want at most once", getter.calls)
			}
		})
	}
}

func TestDriverOwnerReadFails(t *testing.T) {
	notebook := makePod("jupyter-alice", "").obj()
	s := NewState(&countingGetter{err: errors.New("connection refused")})
	_, err := s.Driver(context.Background(), namespace, makePod("pi-exec-1", RoleExecutor).ownedBy(notebook).obj())
	if err == nil {
		t.Fatal("no error when the owner pod cannot be read")
	}
}

// TestDriverMemoKeepsNoExecutorMemory: the webhook decodes an executor's strings without copying them (they
// refer to its admission request), so the memo of owner pods must keep copies of the owners' UIDs.
func TestDriverMemoKeepsNoExecutorMemory(t *testing.T) {
	notebook := makePod("jupyter-alice", "").node("node-1").obj()
	executor := makePod("pi-exec-1", RoleExecutor).ownedBy(notebook).obj()
	request := []byte(string(executor.OwnerReferences[0].UID)) // the UID as the request's bytes hold it
	executor.OwnerReferences[0].UID = types.UID(unsafe.String(unsafe.SliceData(request), len(request)))
	s := NewState(&countingGetter{pods: map[string]*corev1.Pod{notebook.Name: notebook}})
	if d, err := s.Driver(context.Background(), namespace, executor); err != nil || d.NodeName != "node-1" {
		t.Fatalf("driver %+v, %v: want the notebook pod on node-1", d, err)
	}
	keys := s.ownerNodes.Keys()
	if len(keys) != 1 {
		t.Fatalf("memo holds %d owners, want 1", len(keys))
	}
	if unsafe.StringData(string(keys[0])) == unsafe.SliceData(request) {
		t.Error("the memo's key is the executor's own string: it keeps the executor's request alive")
	}
}

type countingGetter struct {
	pods  map[string]*corev1.Pod
	err   error
	calls int
}

func (g *countingGetter) GetPod(_ context.Context, _, name string) (*corev1.Pod, error) {
	g.calls++
	return g.pods[name], g.err
}

func TestExecutorsZone(t *testing.T) {
	nodes := []*corev1.Node{
		readyNode("a1", map[string]string{zoneKey: "us-east-1a"}), readyNode("b1", map[string]string{zoneKey: "us-east-1b"}),
		readyNode("bare", nil),
	}
	cases := map[string]struct {
		pods []*corev1.Pod
		want string
	}{
		"none bound":           {pods: []*corev1.Pod{makePod("e1", RoleExecutor).obj()}},
		"where most run":       {pods: []*corev1.Pod{makePod("e1", RoleExecutor).node("a1").obj(), makePod("e2", RoleExecutor).node("b1").obj(), makePod("e3", RoleExecutor).node("b1").obj()}, want: "us-east-1b"},
		"a tie: first by name": {pods: []*corev1.Pod{makePod("e1", RoleExecutor).node("b1").obj(), makePod("e2", RoleExecutor).node("a1").obj()}, want: "us-east-1a"},
		"nodes without zone":   {pods: []*corev1.Pod{makePod("e1", RoleExecutor).node("bare").obj()}},
		"other apps ignored":   {pods: []*corev1.Pod{makePod("e1", RoleExecutor).label(LabelAppID, "spark-other").node("a1").obj()}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := FromObjects(tc.pods, nodes, nil)
			if got := s.ExecutorsZone(namespace, app, zoneKey); got != tc.want {
				t.Errorf("ExecutorsZone = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSchedulable(t *testing.T) {
	spotTaint := corev1.Taint{Key: "spot", Value: "true", Effect: corev1.TaintEffectNoSchedule}
	spot := map[string]string{zoneKey: "us-east-1c", "capacity": "SPOT"}
	cordoned := readyNode("cordoned", spot, spotTaint)
	cordoned.Spec.Unschedulable = true
	notReady := readyNode("not-ready", spot, spotTaint)
	notReady.Status.Conditions[0].Status = corev1.ConditionFalse
	tolerates := []corev1.Toleration{{Key: "spot", Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule}}
	pinned := func(zone string) *corev1.Pod {
		p := makePod("e", RoleExecutor).zonePin(zone).obj()
		p.Spec.NodeSelector = map[string]string{"capacity": "SPOT"}
		p.Spec.Tolerations = tolerates
		return p
	}
	cases := map[string]struct {
		nodes []*corev1.Node
		pod   *corev1.Pod
		want  bool
	}{
		"a ready spot node in the zone": {nodes: []*corev1.Node{readyNode("n", spot, spotTaint)}, pod: pinned("us-east-1c"), want: true},
		"only cordoned and not-ready":   {nodes: []*corev1.Node{cordoned, notReady}, pod: pinned("us-east-1c")},
		"taint not tolerated": {nodes: []*corev1.Node{readyNode("n", spot, corev1.Taint{Key: "gpu", Effect: corev1.TaintEffectNoSchedule})},
			pod: pinned("us-east-1c")},
		"another zone":           {nodes: []*corev1.Node{readyNode("n", spot, spotTaint)}, pod: pinned("us-east-1a")},
		"selector not met":       {nodes: []*corev1.Node{readyNode("n", map[string]string{zoneKey: "us-east-1c"}, spotTaint)}, pod: pinned("us-east-1c")},
		"pod affinity, no label": {nodes: []*corev1.Node{readyNode("n", nil)}, pod: &corev1.Pod{Spec: corev1.PodSpec{Affinity: &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{TopologyKey: zoneKey}}}}}}},
		"pod affinity, labelled": {nodes: []*corev1.Node{readyNode("n", spot)}, pod: &corev1.Pod{Spec: corev1.PodSpec{Affinity: &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{TopologyKey: zoneKey}}}}}}, want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := FromObjects(nil, tc.nodes, nil)
			if got := s.Schedulable(tc.pod); got != tc.want {
				t.Errorf("Schedulable = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSchedulableFollowsNodes checks that a remembered answer is dropped when a node changes.
func TestSchedulableFollowsNodes(t *testing.T) {
	node := readyNode("n", map[string]string{zoneKey: "us-east-1c"})
	s := FromObjects(nil, []*corev1.Node{node}, nil)
	pod := makePod("e", RoleExecutor).zonePin("us-east-1c").obj()
	if !s.Schedulable(pod) {
		t.Fatal("not schedulable on a ready node in its zone")
	}
	cordoned := node.DeepCopy()
	cordoned.Spec.Unschedulable = true
	s.SetNode(cordoned)
	if s.Schedulable(pod) {
		t.Error("still schedulable after its only node was cordoned")
	}
	s.SetNode(node)
	if !s.Schedulable(pod) {
		t.Error("not schedulable after the node was uncordoned")
	}
}

func TestPendingExecutorsAndRelaxed(t *testing.T) {
	s := FromObjects([]*corev1.Pod{
		makePod("pinned", RoleExecutor).zonePin("us-east-1c").unschedulable().obj(),
		makePod("loose", RoleExecutor).unschedulable().obj(),
		makePod("bound", RoleExecutor).node("n").obj(),
		makePod("driver", RoleDriver).unschedulable().obj(),
	}, nil, nil)
	got := s.PendingExecutors(zoneKey)
	want := []PendingExecutor{
		{Namespace: namespace, Name: "loose", App: app, UID: "uid-loose"},
		{Namespace: namespace, Name: "pinned", App: app, UID: "uid-pinned", Pinned: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pending executors (-want +got):\n%s", diff)
	}

	if r := s.Relaxed(namespace, app); r != "" {
		t.Fatalf("relaxed %q before anything relaxed it", r)
	}
	stripped, _ := StripPod(makePod("pinned", RoleExecutor).label(LabelZoneRelaxed, "capacity").obj())
	s.SetPod(stripped.(*corev1.Pod))
	for _, name := range []string{"pinned", "loose", "bound", "driver"} {
		s.DeletePod(namespace, name)
	}
	if r := s.Relaxed(namespace, app); r != "capacity" {
		t.Errorf("relaxed %q after the label was seen and the pods deleted, want capacity until forgotten", r)
	}
	s.ForgetRelaxed(-1)
	if r := s.Relaxed(namespace, app); r != "" {
		t.Errorf("relaxed %q after ForgetRelaxed of an application without pods", r)
	}
}

// TestStripPod checks what a cached Spark pod keeps.
func TestStripPod(t *testing.T) {
	pod := makePod("e", RoleExecutor).zonePin("us-east-1a").unschedulable().node("n").obj()
	pod.Annotations = map[string]string{"big": "value"}
	pod.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-scheduler"}}
	pod.Spec.Containers = []corev1.Container{{Name: "spark-kubernetes-executor", Image: "apache/spark:3.5.3", Args: []string{"executor"},
		Env:       []corev1.EnvVar{{Name: "SPARK_USER", Value: "spark"}},
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: *mustQuantity("1")}}}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "spark-local-dir-1"}}
	got, _ := StripPod(pod)
	p := got.(*corev1.Pod)
	if p.Annotations != nil || p.ManagedFields != nil || p.Spec.Volumes != nil || p.Spec.Containers[0].Env != nil || p.Spec.Containers[0].Image != "" {
		t.Errorf("stripped pod keeps what placement does not read: %+v", p)
	}
	if p.Status.Conditions[0].Message != "" {
		t.Errorf("condition message kept: %q", p.Status.Conditions[0].Message)
	}
	if p.Spec.NodeName != "n" || p.Spec.Affinity == nil || p.Spec.Containers[0].Resources.Requests.Cpu().String() != "1" || p.Labels[LabelAppID] != app {
		t.Errorf("stripped pod lost what placement reads: %+v", p)
	}
}

func mustQuantity(s string) *resource.Quantity {
	q := resource.MustParse(s)
	return &q
}
