package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/sparkplace/sparkplace/cluster"
)

// ErrBadInput marks input `policy eval` cannot use: unreadable YAML/JSON, an object that is not a pod, a pod
// sparkplace does not place, an unsupported object in --objects.
var ErrBadInput = errors.New("bad input")

func badInput(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadInput, fmt.Sprintf(format, args...))
}

// DecodePod reads one pod from YAML or JSON. name labels the source in errors.
func DecodePod(name string, data []byte) (*corev1.Pod, error) {
	docs, err := splitDocuments(name, data)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, badInput("%s: want one pod, found %d documents", name, len(docs))
	}
	obj, err := decodeObject(name, docs[0])
	if err != nil {
		return nil, err
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, badInput("%s: is a %s, not a Pod", name, obj.GetObjectKind().GroupVersionKind().Kind)
	}
	return pod, nil
}

// ObjectsState reads the cluster state of --objects: Nodes, Pods, Namespaces and DaemonSets (their requests
// count against free capacity), as YAML documents or a v1 List, through the filters and transforms of the
// webhook's informer caches (see cluster.FromObjects).
func ObjectsState(name string, data []byte) (*cluster.State, error) {
	docs, err := splitDocuments(name, data)
	if err != nil {
		return nil, err
	}
	var (
		pods       []*corev1.Pod
		nodes      []*corev1.Node
		namespaces []*corev1.Namespace
		daemonSets []*appsv1.DaemonSet
	)
	for i, doc := range docs {
		obj, err := decodeObject(fmt.Sprintf("%s (document %d)", name, i+1), doc)
		if err != nil {
			return nil, err
		}
		items := []runtime.Object{obj}
		if list, ok := obj.(*corev1.List); ok {
			items = items[:0]
			for j, raw := range list.Items {
				item, err := decodeObject(fmt.Sprintf("%s (document %d, item %d)", name, i+1, j+1), raw.Raw)
				if err != nil {
					return nil, err
				}
				items = append(items, item)
			}
		}
		for _, item := range items {
			switch o := item.(type) {
			case *corev1.Node:
				nodes = append(nodes, o)
			case *corev1.Pod:
				pods = append(pods, o)
			case *corev1.Namespace:
				namespaces = append(namespaces, o)
			case *appsv1.DaemonSet:
				daemonSets = append(daemonSets, o)
			default:
				return nil, badInput("%s: unsupported %s (want Node, Pod, Namespace or DaemonSet)", name, item.GetObjectKind().GroupVersionKind().Kind)
			}
		}
	}
	state := cluster.FromObjects(pods, nodes, namespaces)
	for _, ds := range daemonSets {
		state.SetDaemonSet(ds)
	}
	return state, nil
}

// EmptyCluster is the cluster state of `policy eval` without --objects: no pods, nodes or namespaces.
func EmptyCluster() *cluster.State { return cluster.NewState(nil) }

func splitDocuments(name string, data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var docs [][]byte
	for {
		var raw json.RawMessage
		if err := r.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, badInput("%s: %v", name, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
			continue
		}
		docs = append(docs, raw)
	}
	if len(docs) == 0 {
		return nil, badInput("%s: no object", name)
	}
	return docs, nil
}

func decodeObject(name string, doc []byte) (runtime.Object, error) {
	obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
	if err != nil {
		if gvk != nil && gvk.Kind != "" {
			return nil, badInput("%s: %s %s is not supported here: %v", name, gvk.GroupVersion(), gvk.Kind, err)
		}
		return nil, badInput("%s: %v", name, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(*gvk)
	return obj, nil
}

// OutputFormat is the -o of `policy eval`.
type OutputFormat string

const (
	OutputYAML    OutputFormat = "yaml"    // the placed pod
	OutputJSON    OutputFormat = "json"    // the placed pod
	OutputPatch   OutputFormat = "patch"   // the JSON patch the webhook would answer with
	OutputExplain OutputFormat = "explain" // rules, decision and what was respected, for people
	// OutputInput is the policy input exactly as the webhook builds it (the one its decision came from, when
	// the policy was asked twice): feed it to `opa eval -i`, or paste it into a _test.rego as a fixture.
	OutputInput OutputFormat = "input"
)

// Evaluate places pod as the webhook would and writes the result in format. A denial is not an error: the
// caller reads it from the Outcome.
func Evaluate(ctx context.Context, p *Placer, pod *corev1.Pod, format OutputFormat, w io.Writer) (*Outcome, error) {
	ns := pod.Namespace
	if ns == "" {
		ns = "default"
	}
	before := shapeOf(pod)
	out, err := p.Place(ctx, pod, ns, "CREATE")
	if errors.Is(err, ErrNotSpark) {
		return nil, badInput("pod %s: %v; the webhook admits it unchanged", pod.Name, err)
	}
	if format == OutputInput && out != nil && out.Input != nil {
		// The input is printed also when the policy fails on it: that is when an author wants it most.
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if werr := enc.Encode(out.Input); werr != nil {
			return out, werr
		}
		return out, err
	}
	if err != nil {
		return out, err
	}
	switch format {
	case OutputYAML, "":
		raw, err := yaml.Marshal(pod)
		if err != nil {
			return out, err
		}
		_, err = w.Write(raw)
		return out, err
	case OutputJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return out, enc.Encode(pod)
	case OutputPatch:
		patch, err := patchFor(pod, out.Decision, out.Changed, before, nil)
		if err != nil {
			return out, err
		}
		var b bytes.Buffer
		if err := json.Indent(&b, patch, "", "  "); err != nil {
			return out, err
		}
		b.WriteByte('\n')
		_, err = w.Write(b.Bytes())
		return out, err
	case OutputExplain:
		return out, explain(w, pod, out)
	}
	return out, badInput("unknown output format %q (want yaml, json, patch, explain or input)", format)
}

func explain(w io.Writer, pod *corev1.Pod, out *Outcome) error {
	var b strings.Builder
	fmt.Fprintf(&b, "pod:       %s/%s (spark-role=%s, app %s)\n", pod.Namespace, pod.Name, out.Role, out.Input.App.ID)
	if out.Role == RoleExecutor {
		d := out.Input.Driver
		switch {
		case !d.Found:
			b.WriteString("driver:    not found\n")
		case d.Zone == "":
			fmt.Fprintf(&b, "driver:    %s (node %q, zone unknown)\n", d.Name, d.NodeName)
		default:
			fmt.Fprintf(&b, "driver:    %s on node %s in zone %s\n", d.Name, d.NodeName, d.Zone)
		}
		z := out.Input.Zone
		switch {
		case z.Value != "":
			fmt.Fprintf(&b, "zone:      %s (from the %s)", z.Value, z.Source)
		default:
			b.WriteString("zone:      not known")
		}
		if z.Relaxed != "" {
			fmt.Fprintf(&b, ", pin relaxed (%s)", z.Relaxed)
		}
		if z.Unschedulable {
			b.WriteString(", no schedulable node can take the pod there")
		}
		b.WriteString("\n")
	}
	if out.Denied() {
		fmt.Fprintf(&b, "result:    DENIED\n")
		for _, reason := range out.Decision.Deny {
			fmt.Fprintf(&b, "  - %s\n", reason)
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "result:    allowed, %d field(s) changed\n", len(out.Changed))
	b.WriteString("rules:\n")
	for _, r := range out.Decision.Rules {
		fmt.Fprintf(&b, "  - %s\n", r)
	}
	if len(out.Decision.Notes) > 0 {
		b.WriteString("notes:\n")
		for _, n := range out.Decision.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	if len(out.Respected) > 0 {
		b.WriteString("respected (set on the pod, left alone):\n")
		for _, r := range out.Respected {
			fmt.Fprintf(&b, "  - %s\n", r)
		}
	}
	decision, err := yaml.Marshal(out.Decision)
	if err != nil {
		return err
	}
	b.WriteString("decision:\n")
	for _, line := range strings.Split(strings.TrimRight(string(decision), "\n"), "\n") {
		fmt.Fprintf(&b, "  %s\n", line)
	}
	_, err = io.WriteString(w, b.String())
	return err
}
