package webhook

import (
	"fmt"
	"strings"

	gojson "github.com/goccy/go-json"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sparkplace/sparkplace/placement"
)

// admittedPod is the part of an admitted pod that placement reads or patches; decoding only this part skips
// the bulk of a Spark pod (environment, arguments, ports, probes). Every field patchFor can write must be
// decoded here whole (volumes: see admittedVolume): the patch carries these values.
type admittedPod struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
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

// admittedVolume is one volume of the admitted pod. Spark's local-dir volumes, which placement reads and may
// change, are decoded; any other volume (the service-account token's projected volume, config maps) keeps
// only its name and its JSON, which a volumes patch writes back as it came.
type admittedVolume struct {
	volume corev1.Volume
	json   gojson.RawMessage
}

func (v *admittedVolume) UnmarshalJSON(data []byte) error {
	var named struct {
		Name string `json:"name"`
	}
	if err := gojson.Unmarshal(data, &named); err != nil {
		return err
	}
	if strings.HasPrefix(named.Name, placement.LocalDirVolumePrefix) {
		return gojson.Unmarshal(data, &v.volume)
	}
	v.volume.Name = named.Name
	v.json = append(gojson.RawMessage(nil), data...)
	return nil
}

// containerForPlacement is what the policy view keeps of an app container (see policyView).
type containerForPlacement struct {
	Name            string                  `json:"name"`
	Image           string                  `json:"image"`
	SecurityContext *corev1.SecurityContext `json:"securityContext"`
	VolumeMounts    []corev1.VolumeMount    `json:"volumeMounts"`
}

// keptVolumes maps the names of the volumes decodeAdmittedPod did not decode to their JSON.
type keptVolumes map[string]gojson.RawMessage

// decodeAdmittedPod decodes raw into a pod holding only the fields of admittedPod; the volumes it did not
// decode appear in the pod by name only, and their JSON is returned for the patch.
//
// It uses goccy/go-json (already in the build through OPA) rather than encoding/json: decoding the pod with
// encoding/json alone cost 60-70% of a no-op admission (BenchmarkAdmission), goccy about a quarter of that.
// TestDecodeMatchesEncodingJSON holds the two to the same result on Spark's pods. The decoder reads
// untrusted bytes, so a panic in it is turned into a decoding error.
func decodeAdmittedPod(raw []byte) (pod *corev1.Pod, kept keptVolumes, err error) {
	defer func() {
		if r := recover(); r != nil {
			pod, kept, err = nil, nil, fmt.Errorf("malformed pod JSON: %v", r)
		}
	}()
	var in admittedPod
	if err := gojson.Unmarshal(raw, &in); err != nil {
		return nil, nil, err
	}
	pod, kept = in.pod()
	return pod, kept, nil
}

func (in *admittedPod) pod() (*corev1.Pod, keptVolumes) {
	pod := &corev1.Pod{ObjectMeta: in.Metadata}
	s := &pod.Spec
	s.NodeSelector, s.Affinity, s.Tolerations = in.Spec.NodeSelector, in.Spec.Affinity, in.Spec.Tolerations
	s.TopologySpreadConstraints = in.Spec.TopologySpread
	s.InitContainers, s.SecurityContext = in.Spec.InitContainers, in.Spec.SecurityContext
	s.SchedulerName, s.PriorityClassName = in.Spec.SchedulerName, in.Spec.PriorityClassName
	var kept keptVolumes
	s.Volumes = make([]corev1.Volume, len(in.Spec.Volumes))
	for i, v := range in.Spec.Volumes {
		s.Volumes[i] = v.volume
		if v.json != nil {
			if kept == nil {
				kept = keptVolumes{}
			}
			kept[v.volume.Name] = v.json
		}
	}
	s.Containers = make([]corev1.Container, len(in.Spec.Containers))
	for i, c := range in.Spec.Containers {
		s.Containers[i] = corev1.Container{Name: c.Name, Image: c.Image, SecurityContext: c.SecurityContext, VolumeMounts: c.VolumeMounts}
	}
	return pod, kept
}
