package cluster

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
)

// NewPodInformer returns the informer of Spark pods (SparkPodSelector), stripped by StripPod. It asks the API
// server for protobuf, and drops the bulk StripPod would drop (StripPodProto) from each pod's bytes before
// they are decoded: an informer decodes every event of every Spark pod whole, then the transform throws most
// of it away, and that decoding was half of what the webhook allocated per executor create.
func NewPodInformer(cfg *rest.Config) (toolscache.SharedIndexInformer, error) {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &corev1.SchemeGroupVersion
	c.APIPath = "/api"
	c.ContentType = runtime.ContentTypeProtobuf
	c.AcceptContentTypes = runtime.ContentTypeProtobuf
	c.NegotiatedSerializer = podStripping{scheme.Codecs.WithoutConversion()}
	client, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("pod informer client: %w", err)
	}
	selector := SparkPodSelector().String()
	lw := toolscache.NewFilteredListWatchFromClient(client, "pods", metav1.NamespaceAll, func(o *metav1.ListOptions) {
		o.LabelSelector = selector
	})
	informer := toolscache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, toolscache.Indexers{})
	if err := informer.SetTransform(StripPod); err != nil {
		return nil, err
	}
	return informer, nil
}

// podStripping is a NegotiatedSerializer whose protobuf decoder strips pods (StripPodProto) before decoding
// them; everything else is its embedded serializer's.
type podStripping struct{ runtime.NegotiatedSerializer }

func (s podStripping) SupportedMediaTypes() []runtime.SerializerInfo {
	infos := slices.Clone(s.NegotiatedSerializer.SupportedMediaTypes())
	for i := range infos {
		if infos[i].MediaType == runtime.ContentTypeProtobuf {
			infos[i].Serializer = podStripper{infos[i].Serializer}
		}
	}
	return infos
}

type podStripper struct{ runtime.Serializer }

func (p podStripper) Decode(data []byte, gvk *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	return p.Serializer.Decode(StripPodProto(data), gvk, into)
}

// protoPrefix starts every protobuf-encoded Kubernetes object (apimachinery's protobuf serializer).
var protoPrefix = []byte{0x6b, 0x38, 0x73, 0x00}

// Field numbers (k8s.io/api/core/v1 and apimachinery generated.proto) that StripPodProto reads.
const (
	unknownTypeMeta, unknownRaw = 1, 2 // runtime.Unknown
	typeMetaKind                = 2    // runtime.TypeMeta
	entryKey                    = 1    // a map entry
)

// shape says what StripPodProto does with the fields of a message: it drops those in drop and those keep
// turns down, and rewrites those in nested by their own shape; it copies the others as they are, so that
// whatever StripPod reads (now or later) is decoded. The dropped fields are large (a Spark pod's environment,
// arguments, mounts, managed fields) and StripPod drops them anyway.
type shape struct {
	drop   map[protowire.Number]bool
	keep   map[protowire.Number]func(v []byte) bool
	nested map[protowire.Number]*shape
}

var (
	containerShape = &shape{
		// image, command, args, workingDir, ports, envFrom, env, volumeMounts, volumeDevices, liveness,
		// readiness and startup probes, lifecycle, terminationMessagePath, securityContext
		drop: fields(2, 3, 4, 5, 6, 19, 7, 9, 21, 10, 11, 22, 12, 13, 15),
	}
	podShape = &shape{nested: map[protowire.Number]*shape{
		// metadata: managedFields; of the annotations, only the API machinery's are kept
		1: {drop: fields(17), keep: map[protowire.Number]func([]byte) bool{12: machineryAnnotation}},
		// spec: volumes, ephemeralContainers, imagePullSecrets, hostAliases, dnsConfig, readinessGates; the
		// containers and init containers are stripped
		2: {drop: fields(1, 34, 15, 23, 26, 28), nested: map[protowire.Number]*shape{2: containerShape, 20: containerShape}},
		// status: message, hostIPs, podIPs, init, app and ephemeral container statuses, resource claim
		// statuses, volume health
		3: {drop: fields(3, 16, 12, 10, 8, 13, 15, 22)},
	}}
	podListShape = &shape{nested: map[protowire.Number]*shape{2: podShape}} // items
)

func fields(ns ...protowire.Number) map[protowire.Number]bool {
	m := make(map[protowire.Number]bool, len(ns))
	for _, n := range ns {
		m[n] = true
	}
	return m
}

// StripPodProto returns a protobuf-encoded Pod or PodList (apimachinery's envelope: the prefix and a
// runtime.Unknown) without the fields StripPod drops, re-encoded in one allocation; anything else, and bytes
// it cannot parse, as they are (the decoder then reports what is wrong with them).
func StripPodProto(data []byte) []byte {
	body, ok := bytes.CutPrefix(data, protoPrefix)
	if !ok {
		return data
	}
	kind, err := unknownKind(body)
	if err != nil {
		return data
	}
	var s *shape
	switch string(kind) {
	case "Pod":
		s = podShape
	case "PodList":
		s = podListShape
	default:
		return data
	}
	envelope := &shape{nested: map[protowire.Number]*shape{unknownRaw: s}}
	sizes := make([]int, 0, 32)
	n, err := envelope.size(body, &sizes)
	if err != nil {
		return data
	}
	out := append(make([]byte, 0, len(protoPrefix)+n), protoPrefix...)
	return envelope.write(out, body, sizes, new(int))
}

// unknownKind reads the kind of a runtime.Unknown.
func unknownKind(b []byte) (kind []byte, err error) {
	err = each(b, func(n protowire.Number, _, v []byte, delimited bool) error {
		if !delimited || n != unknownTypeMeta {
			return nil
		}
		return each(v, func(n protowire.Number, _, v []byte, delimited bool) error {
			if delimited && n == typeMetaKind {
				kind = v
			}
			return nil
		})
	})
	return kind, err
}

// machineryAnnotation reports whether an annotation (a map entry) is the API machinery's own, under k8s.io/ or
// kubernetes.io/: the reflector reads the end of a watch's initial events from the annotation of a bookmark
// (metav1.InitialEventsAnnotationKey). The others (sparkplace's explanation, Spark's, users') are dropped.
func machineryAnnotation(entry []byte) bool {
	var key string
	_ = each(entry, func(n protowire.Number, _, v []byte, delimited bool) error {
		if delimited && n == entryKey {
			key = string(v)
		}
		return nil
	})
	return strings.HasPrefix(key, "k8s.io/") || strings.HasPrefix(key, "kubernetes.io/")
}

// size is the length of message b once stripped to s. It appends the length of each rewritten message in it
// to sizes, in the order write reaches them (a message's before those inside it).
func (s *shape) size(b []byte, sizes *[]int) (int, error) {
	total := 0
	err := each(b, func(n protowire.Number, field, v []byte, delimited bool) error {
		switch {
		case s.drop[n]:
		case !delimited:
			total += len(field)
		case s.keep[n] != nil && !s.keep[n](v):
		case s.nested[n] != nil:
			i := len(*sizes)
			*sizes = append(*sizes, 0)
			m, err := s.nested[n].size(v, sizes)
			if err != nil {
				return err
			}
			(*sizes)[i] = m
			total += protowire.SizeTag(n) + protowire.SizeBytes(m)
		default:
			total += len(field)
		}
		return nil
	})
	return total, err
}

// write appends message b stripped to s to dst, taking the lengths of the rewritten messages from sizes
// (from *next on), as size measured them.
func (s *shape) write(dst, b []byte, sizes []int, next *int) []byte {
	_ = each(b, func(n protowire.Number, field, v []byte, delimited bool) error {
		switch {
		case s.drop[n]:
		case !delimited:
			dst = append(dst, field...)
		case s.keep[n] != nil && !s.keep[n](v):
		case s.nested[n] != nil:
			m := sizes[*next]
			*next++
			dst = protowire.AppendTag(dst, n, protowire.BytesType)
			dst = protowire.AppendVarint(dst, uint64(m))
			dst = s.nested[n].write(dst, v, sizes, next)
		default:
			dst = append(dst, field...)
		}
		return nil
	})
	return dst
}

// each calls f with each field of message b: its number, its encoding (tag and value), and, for a
// length-delimited field, its value.
func each(b []byte, f func(n protowire.Number, field, v []byte, delimited bool) error) error {
	for len(b) > 0 {
		n, typ, tagLen := protowire.ConsumeTag(b)
		if tagLen < 0 {
			return protowire.ParseError(tagLen)
		}
		valueLen := protowire.ConsumeFieldValue(n, typ, b[tagLen:])
		if valueLen < 0 {
			return protowire.ParseError(valueLen)
		}
		field := b[:tagLen+valueLen]
		b = b[tagLen+valueLen:]
		var v []byte
		if typ == protowire.BytesType {
			v, _ = protowire.ConsumeBytes(field[tagLen:])
		}
		if err := f(n, field, v, typ == protowire.BytesType); err != nil {
			return err
		}
	}
	return nil
}
