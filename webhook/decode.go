package webhook

import (
	"fmt"
	"strings"

	gojson "github.com/goccy/go-json"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sparkplace/sparkplace/placement"
)

// admittedPod is the part of an admitted pod that placement reads or patches; decoding only this part skips
// the bulk of a Spark pod (environment, arguments, ports, probes). Every field patchFor can write must be
// decoded here whole (volumes: see admittedVolume): the patch carries these values.
type admittedPod struct {
	Metadata admittedMeta `json:"metadata"`
	Spec     struct {
		NodeSelector      map[string]string                 `json:"nodeSelector"`
		Affinity          *corev1.Affinity                  `json:"affinity"`
		Tolerations       []corev1.Toleration               `json:"tolerations"`
		TopologySpread    []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints"`
		Volumes           []admittedVolume                  `json:"volumes"`
		InitContainers    []corev1.Container                `json:"initContainers"`
		Containers        []containerForPlacement           `json:"containers"`
		SecurityContext   *corev1.PodSecurityContext        `json:"securityContext"`
		SchedulerName     string                            `json:"schedulerName"`
		PriorityClassName string                            `json:"priorityClassName"`
	} `json:"spec"`
}

// admittedMeta is the part of the pod's metadata placement reads or patches (labels, annotations). The
// rest, managedFields above all (the API server writes them before mutating admission: an entry per field
// the client set), is skipped.
type admittedMeta struct {
	Name            string                  `json:"name"`
	GenerateName    string                  `json:"generateName"`
	Namespace       string                  `json:"namespace"`
	UID             types.UID               `json:"uid"`
	Labels          map[string]string       `json:"labels"`
	Annotations     map[string]string       `json:"annotations"`
	OwnerReferences []metav1.OwnerReference `json:"ownerReferences"`
}

// admittedVolume is one volume of the admitted pod. Spark's local-dir volumes, which placement reads and may
// change, are decoded; any other volume (the service-account token's projected volume, config maps) keeps
// only its name: placement never changes it, and the patch never writes it (see patchFor). It is small (a
// corev1.Volume is 256 bytes): the decoder grows the list element by element.
type admittedVolume struct {
	name  string
	local *corev1.Volume // a local dir's, decoded whole
}

func (v *admittedVolume) UnmarshalJSON(data []byte) error {
	var named struct {
		Name string `json:"name"`
	}
	// data is the decoder's copy of the volume's JSON, the volume's own: its strings may refer to it.
	if err := gojson.UnmarshalWithOption(data, &named, gojson.DecodeNoCopyString()); err != nil {
		return err
	}
	v.name = named.Name
	if strings.HasPrefix(named.Name, placement.LocalDirVolumePrefix) {
		v.local = &corev1.Volume{}
		return gojson.UnmarshalWithOption(data, v.local, gojson.DecodeNoCopyString())
	}
	return nil
}

func (v *admittedVolume) volume() corev1.Volume {
	if v.local != nil {
		return *v.local
	}
	return corev1.Volume{Name: v.name}
}

// containerForPlacement is what the policy view keeps of an app container (see policyView).
type containerForPlacement struct {
	Name            string                  `json:"name"`
	Image           string                  `json:"image"`
	SecurityContext *corev1.SecurityContext `json:"securityContext"`
	VolumeMounts    []corev1.VolumeMount    `json:"volumeMounts"`
}

// decodeAdmittedPod decodes raw into a pod holding only the fields of admittedPod; the volumes it did not
// decode appear in the pod by name only.
//
// It uses goccy/go-json (already in the build through OPA) rather than encoding/json: decoding the pod with
// encoding/json alone cost 60-70% of a no-op admission (BenchmarkAdmission), goccy about a quarter of that.
// TestDecodeMatchesEncodingJSON holds the two to the same result on Spark's pods. The decoder reads
// untrusted bytes, so a panic in it is turned into a decoding error.
//
// The pod's strings refer to raw (goccy's DecodeNoCopyString) rather than being copies of their own: a third
// of a cache hit's allocations were the pod's strings. raw is the request's, which nothing writes, and it
// lives as long as one of them: what outlives the request must not keep them (decisions copy their strings,
// see policies.setValue; keys of long-lived maps are copied or built anew: the driver pools here, the memo
// of owner pods in cluster.State). TestPlacingKeepsNoRequestMemory and cluster's
// TestDriverMemoKeepsNoExecutorMemory check what a placement leaves behind.
func decodeAdmittedPod(raw []byte) (pod *corev1.Pod, err error) {
	defer func() {
		if r := recover(); r != nil {
			pod, err = nil, fmt.Errorf("malformed pod JSON: %v", r)
		}
	}()
	var in admittedPod
	if err := gojson.UnmarshalWithOption(raw, &in, gojson.DecodeNoCopyString()); err != nil {
		return nil, err
	}
	return in.pod(), nil
}

func (in *admittedPod) pod() *corev1.Pod {
	m := &in.Metadata
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, GenerateName: m.GenerateName, Namespace: m.Namespace, UID: m.UID,
		Labels: m.Labels, Annotations: m.Annotations, OwnerReferences: m.OwnerReferences,
	}}
	s := &pod.Spec
	s.NodeSelector, s.Affinity, s.Tolerations = in.Spec.NodeSelector, in.Spec.Affinity, in.Spec.Tolerations
	s.TopologySpreadConstraints = in.Spec.TopologySpread
	s.InitContainers, s.SecurityContext = in.Spec.InitContainers, in.Spec.SecurityContext
	s.SchedulerName, s.PriorityClassName = in.Spec.SchedulerName, in.Spec.PriorityClassName
	if in.Spec.Volumes != nil {
		s.Volumes = make([]corev1.Volume, len(in.Spec.Volumes))
		for i := range in.Spec.Volumes {
			s.Volumes[i] = in.Spec.Volumes[i].volume()
		}
	}
	s.Containers = make([]corev1.Container, len(in.Spec.Containers))
	for i, c := range in.Spec.Containers {
		s.Containers[i] = corev1.Container{Name: c.Name, Image: c.Image, SecurityContext: c.SecurityContext, VolumeMounts: c.VolumeMounts}
	}
	return pod
}
