package podtemplate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
)

// Parse reads a pod template: one YAML (or JSON) document holding a Pod, as Spark's
// spark.kubernetes.{driver,executor}.podTemplateFile does. apiVersion and kind may be left out; when given they
// must be v1 and Pod. Unknown and misspelt fields are refused, like any other part of a request. Every error
// says the line it is about.
func Parse(data []byte) (*corev1.Pod, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil, errors.New("the template is empty: expected a Pod")
	case err != nil:
		return nil, syntaxError(err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, fmt.Errorf("line %d: the template holds more than one YAML document: expected one Pod", next.Line)
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: a pod template is a mapping (a Pod), not %s", root.Line, describeNode(root))
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch want := map[string]string{"kind": "Pod", "apiVersion": "v1"}[k.Value]; {
		case want == "":
		case v.Kind != yaml.ScalarNode || v.Value != want:
			return nil, fmt.Errorf("line %d: %s must be %s, not %q", v.Line, k.Value, want, v.Value)
		}
	}
	// Structural problems (duplicate keys, numbers JSON cannot hold) carry their line already.
	if err := writeJSON(&bytes.Buffer{}, root, 0); err != nil {
		return nil, err
	}
	pod, err := decodePod(root)
	if err == nil {
		return pod, nil
	}
	line, err := locate(root)
	return nil, fmt.Errorf("line %d: %w", line, err)
}

// syntaxError keeps the YAML parser's message, which names the line, without its "yaml: " prefix.
func syntaxError(err error) error {
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

// decodePod decodes the YAML tree as Kubernetes decodes a Pod: case-sensitive, unknown and duplicate fields
// refused, with a readable message.
func decodePod(root *yaml.Node) (*corev1.Pod, error) {
	var buf bytes.Buffer
	if err := writeJSON(&buf, root, 0); err != nil {
		return nil, err
	}
	var pod corev1.Pod
	strict, err := kjson.UnmarshalStrict(buf.Bytes(), &pod)
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ):
		article := "a"
		if strings.HasPrefix(typ.Value, "a") || strings.HasPrefix(typ.Value, "o") {
			article = "an"
		}
		return nil, fmt.Errorf("%s must be %s, not %s %s", typ.Field, typ.Type, article, typ.Value)
	case err != nil:
		return nil, err
	case len(strict) > 0:
		var field kjson.FieldError
		if errors.As(strict[0], &field) {
			// The path's list indexes are those of the reduced tree locate decodes, so only the name is kept.
			path := field.FieldPath()
			return nil, errors.New(strings.Replace(strict[0].Error(), path, path[strings.LastIndexAny(path, ".]")+1:], 1))
		}
		return nil, strict[0]
	}
	return &pod, nil
}

// locate finds the line of the first decoding error by narrowing the tree: at each level it keeps only the half
// of the entries that still fails to decode, until one entry is left, then goes into it. Decoding a Pod never
// fails for a missing field, so what remains fails for the reason an entry of the original did. It changes the
// tree and returns the error of what remains (the message then names what the line holds).
func locate(root *yaml.Node) (int, error) {
	node, line := root, root.Line
	for {
		step := 1
		if node.Kind == yaml.MappingNode {
			step = 2
		}
		entries := node.Content
		if node.Kind == yaml.AliasNode || len(entries) == 0 || node.Kind == yaml.ScalarNode {
			break
		}
		// A node that fails even empty is of the wrong kind (a list for a map): the place is the node itself.
		node.Content = nil
		if _, err := decodePod(root); err != nil {
			node.Content = entries
			break
		}
		lo, hi := 0, len(entries)/step
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			node.Content = entries[lo*step : mid*step]
			if _, err := decodePod(root); err != nil {
				hi = mid
			} else {
				lo = mid
			}
		}
		node.Content = entries[lo*step : (lo+1)*step]
		if _, err := decodePod(root); err == nil {
			// The entries fail only together (none does alone): the node itself is the place.
			node.Content = entries
			break
		}
		if step == 2 {
			line, node = node.Content[0].Line, node.Content[1]
		} else {
			node = node.Content[0]
			line = node.Line
		}
	}
	_, err := decodePod(root)
	return line, err
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "an alias"
}

// maxDepth bounds nesting (aliases can make a small document deep); a Pod is far shallower.
const maxDepth = 64

// writeJSON writes the YAML tree as JSON, with YAML 1.2's types (yaml.v3's: "on" and "yes" are strings).
func writeJSON(buf *bytes.Buffer, n *yaml.Node, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("line %d: nested deeper than %d levels", n.Line, maxDepth)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			buf.WriteString("null")
			return nil
		}
		return writeJSON(buf, n.Content[0], depth+1)
	case yaml.AliasNode:
		return writeJSON(buf, n.Alias, depth+1)
	case yaml.MappingNode:
		buf.WriteByte('{')
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if first, dup := seen[k.Value]; dup {
				return fmt.Errorf("line %d: %q is given twice (first on line %d)", k.Line, k.Value, first)
			}
			seen[k.Value] = k.Line
			if i > 0 {
				buf.WriteByte(',')
			}
			key, _ := json.Marshal(n.Content[i].Value) // marshalling a string cannot fail
			buf.Write(key)
			buf.WriteByte(':')
			if err := writeJSON(buf, n.Content[i+1], depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, item, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		return writeScalar(buf, n)
	}
	return nil
}

func writeScalar(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.ShortTag() {
	case "!!null":
		buf.WriteString("null")
		return nil
	case "!!bool", "!!int":
		var v any
		if err := n.Decode(&v); err == nil {
			out, _ := json.Marshal(v) // bools and integers always marshal
			buf.Write(out)
			return nil
		}
	case "!!float":
		var f float64
		if err := n.Decode(&f); err == nil {
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return fmt.Errorf("line %d: %s is not a number JSON can hold", n.Line, n.Value)
			}
			buf.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
			return nil
		}
	}
	out, _ := json.Marshal(n.Value) // marshalling a string cannot fail
	buf.Write(out)
	return nil
}

// SparkContainer is KubernetesUtils.selectSparkContainer: the index of the container Spark builds on, the one
// named name (spark.kubernetes.{driver,executor}.podTemplateContainerName) or else the first; -1 when the
// template has no containers (Spark then starts from an empty one).
func SparkContainer(pod *corev1.Pod, name string) int {
	if len(pod.Spec.Containers) == 0 {
		return -1
	}
	for i, c := range pod.Spec.Containers {
		if name != "" && c.Name == name {
			return i
		}
	}
	return 0
}
