package cluster

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/sparkplace/sparkplace/e2e/sparksim"
)

// protoCodecs are the API server's protobuf encoding and client-go's decoding, plain and stripping.
type protoCodecs struct {
	encoder          runtime.Encoder
	plain, stripping runtime.Decoder
}

func protobufCodecs(tb testing.TB) protoCodecs {
	tb.Helper()
	codecs := scheme.Codecs.WithoutConversion()
	info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	if !ok {
		tb.Fatal("no protobuf serializer")
	}
	stripInfo, _ := runtime.SerializerInfoForMediaType(podStripping{codecs}.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	return protoCodecs{
		encoder:   codecs.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion),
		plain:     codecs.DecoderToVersion(info.Serializer, corev1.SchemeGroupVersion),
		stripping: codecs.DecoderToVersion(stripInfo.Serializer, corev1.SchemeGroupVersion),
	}
}

// encode is obj as the API server sends it.
func (c protoCodecs) encode(tb testing.TB, obj runtime.Object) []byte {
	tb.Helper()
	data, err := runtime.Encode(c.encoder, obj)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// decode is data decoded by d.
func decode(tb testing.TB, d runtime.Decoder, data []byte) runtime.Object {
	tb.Helper()
	obj, err := runtime.Decode(d, data)
	if err != nil {
		tb.Fatal(err)
	}
	return obj
}

// decodeBoth encodes obj and decodes it whole and stripped.
func (c protoCodecs) decodeBoth(tb testing.TB, obj runtime.Object) (data []byte, whole, small runtime.Object) {
	tb.Helper()
	data = c.encode(tb, obj)
	return data, decode(tb, c.plain, data), decode(tb, c.stripping, data)
}

// sparkPods are Spark pods in the states the informer sees them: a driver and executors as created, bound,
// running (statuses, conditions, managed fields), terminating, with init containers, sidecars and overhead.
func sparkPods() []*corev1.Pod {
	app := sparksim.NewApp("etl", "spark-jobs").WithLogSidecar()
	driver := app.DriverPod()
	driver.UID = "driver-uid"
	driver.Spec.NodeName = "ip-10-0-1-2.ec2.internal"
	driver.Annotations = map[string]string{"sparkplace.io/placement": `{"rules":["driver.on-demand"]}`}
	driver.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"us-east-1a"}}}}}}}}
	created := app.ExecutorPod(driver, 1)
	created.Spec.Tolerations = []corev1.Toleration{{Key: "spot", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	created.Spec.NodeSelector = map[string]string{"eks.amazonaws.com/capacityType": "SPOT", "noderole": "spark"}
	created.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "node.kubernetes.io/instance-type",
		WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"spark-app-selector": app.ID}}}}
	created.Spec.InitContainers = []corev1.Container{{Name: "chown-local-dirs", Image: "busybox", Command: []string{"sh", "-c", "chown 185 /data"},
		Resources:    corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}},
		VolumeMounts: []corev1.VolumeMount{{Name: "spark-local-dir-1", MountPath: "/data"}}}}
	created.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}
	running := runningExecutor(app, driver, 2, "ip-10-0-3-4.ec2.internal")
	running.Status.Conditions = append(running.Status.Conditions, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue,
		Reason: "Scheduled", Message: "bound"})
	terminating := runningExecutor(app, driver, 3, "ip-10-0-3-5.ec2.internal")
	now := metav1.NewTime(time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC))
	grace := int64(30)
	terminating.DeletionTimestamp, terminating.DeletionGracePeriodSeconds = &now, &grace
	terminating.Finalizers = []string{"example.com/keep"}
	terminating.Status.Phase = corev1.PodFailed
	pending := app.ExecutorPod(driver, 4)
	pending.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled,
		Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/5000 nodes are available: " + string(bytes.Repeat([]byte("x"), 500))}}}
	return []*corev1.Pod{driver, created, running, terminating, pending}
}

// The reflector's watch-list ends at a bookmark carrying metav1.InitialEventsAnnotationKey: without it the
// informer never syncs.
func TestStripPodProtoKeepsTheInitialEventsBookmark(t *testing.T) {
	c := protobufCodecs(t)
	bookmark := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "1234", Annotations: map[string]string{
		metav1.InitialEventsAnnotationKey: "true", "example.com/other": "x",
	}}}
	got := decode(t, c.stripping, c.encode(t, bookmark))
	want := map[string]string{metav1.InitialEventsAnnotationKey: "true"}
	if a := got.(*corev1.Pod).Annotations; !cmp.Equal(a, want) || got.(*corev1.Pod).ResourceVersion != "1234" {
		t.Errorf("bookmark annotations %v, resourceVersion %q; want %v, 1234", a, got.(*corev1.Pod).ResourceVersion, want)
	}
}

// The informer must hold what it held before StripPodProto: StripPod of the pod decoded whole.
func TestStripPodProtoKeepsWhatStripPodKeeps(t *testing.T) {
	c := protobufCodecs(t)
	pods := sparkPods()
	for _, pod := range pods {
		t.Run(pod.Name, func(t *testing.T) {
			data, whole, small := c.decodeBoth(t, pod)
			want, _ := StripPod(whole)
			got, _ := StripPod(small)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("stripped before decoding (-want +got):\n%s", diff)
			}
			if n, m := len(StripPodProto(data)), len(data); n >= m {
				t.Errorf("StripPodProto left %d of %d bytes", n, m)
			}
		})
	}
	t.Run("list", func(t *testing.T) {
		list := &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "42"}}
		for _, p := range pods {
			list.Items = append(list.Items, *p)
		}
		_, whole, small := c.decodeBoth(t, list)
		wl, sl := whole.(*corev1.PodList), small.(*corev1.PodList)
		if sl.ResourceVersion != "42" || len(sl.Items) != len(wl.Items) {
			t.Fatalf("list: resourceVersion %q, %d items; want 42, %d", sl.ResourceVersion, len(sl.Items), len(wl.Items))
		}
		for i := range wl.Items {
			want, _ := StripPod(&wl.Items[i])
			got, _ := StripPod(&sl.Items[i])
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("item %d (-want +got):\n%s", i, diff)
			}
		}
	})
}

func TestStripPodProtoLeavesOtherBytesAlone(t *testing.T) {
	c := protobufCodecs(t)
	node, pod := c.encode(t, eksNode(1)), c.encode(t, sparkPods()[0])
	for name, data := range map[string][]byte{
		"a node":                node,
		"JSON":                  []byte(`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"}}`),
		"a truncated pod":       pod[:len(pod)/2],
		"the protobuf prefix":   pod[:4],
		"a pod with a bad byte": append(append([]byte(nil), pod[:8]...), 0xff, 0xff, 0xff),
	} {
		if got := StripPodProto(data); !bytes.Equal(got, data) {
			t.Errorf("%s: changed (%d bytes to %d)", name, len(data), len(got))
		}
	}
}

// BenchmarkPodDecode decodes a running executor as the informer does, whole or stripped first, and strips it
// (the informer's transform).
func BenchmarkPodDecode(b *testing.B) {
	c := protobufCodecs(b)
	data := c.encode(b, sparkPods()[2])
	for name, decoder := range map[string]runtime.Decoder{"whole": c.plain, "stripped": c.stripping} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				obj, err := runtime.Decode(decoder, data)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := StripPod(obj); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
