package policies

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var update = flag.Bool("update", false, "rewrite policies/schemas/*.json from input.go and the bundle's config defaults")

// TestSchemasAreCurrent fails when schemas/input.json or schemas/config.json no longer match what they are
// generated from: the Input type (field doc comments become descriptions) with the pod reduced to
// podViewFields, and the config defaults (their YAML comments become descriptions). Regenerate with
// `go test ./policies -run TestSchemasAreCurrent -update`.
func TestSchemasAreCurrent(t *testing.T) {
	input, err := inputSchema()
	if err != nil {
		t.Fatal(err)
	}
	config, err := configSchema()
	if err != nil {
		t.Fatal(err)
	}
	for name, schema := range map[string]map[string]any{"input.json": input, "config.json": config} {
		want, err := json.MarshalIndent(schema, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, '\n')
		file := filepath.Join(schemaDir, name)
		if *update {
			if err := os.WriteFile(file, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date: run go test ./policies -run TestSchemasAreCurrent -update", file)
		}
	}
}

// podViewFields are the pod fields in the policy input (webhook.policyView builds the pod with exactly these):
// JSON names per struct, keyed by Go type. Other fields of these types are absent from the input. status and
// resources are always {} (encoding/json writes a struct field even when it is empty): their schema has no
// properties, so a policy reading them is a type error rather than a rule that never fires.
var podViewFields = map[reflect.Type][]string{
	reflect.TypeFor[corev1.Pod]():        {"metadata", "spec", "status"},
	reflect.TypeFor[metav1.ObjectMeta](): {"namespace", "generateName", "labels", "annotations"},
	reflect.TypeFor[corev1.PodSpec](): {"nodeSelector", "affinity", "tolerations", "topologySpreadConstraints",
		"securityContext", "schedulerName", "priorityClassName", "volumes", "containers", "initContainers"},
	reflect.TypeFor[corev1.Container]():            {"name", "image", "securityContext", "volumeMounts", "resources"},
	reflect.TypeFor[corev1.PodStatus]():            {},
	reflect.TypeFor[corev1.ResourceRequirements](): {},
}

// inputSchema is the JSON schema of Input: sparkplace's own types inline with their doc comments, the
// Kubernetes types they hold as definitions.
func inputSchema() (map[string]any, error) {
	docs, err := fieldDocs("input.go")
	if err != nil {
		return nil, err
	}
	g := &schemaGen{docs: docs, defs: map[string]any{}}
	s := g.schema(reflect.TypeFor[Input]())
	s["$schema"] = "http://json-schema.org/draft-07/schema#"
	s["title"] = "sparkplace policy input"
	s["description"] = "input of data.sparkplace.placement.decision, as the webhook and `sparkplace policy eval -o input` build it. Generated from policies/input.go: do not edit."
	s["definitions"] = g.defs
	return s, nil
}

type schemaGen struct {
	docs map[string]string // "Type.Field" -> doc comment, for sparkplace's own types
	defs map[string]any
}

var (
	quantityType    = reflect.TypeFor[resource.Quantity]()
	intOrStringType = reflect.TypeFor[intstr.IntOrString]()
	timeType        = reflect.TypeFor[metav1.Time]()
	ownPkg          = reflect.TypeFor[Input]().PkgPath()
)

func (g *schemaGen) schema(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case quantityType, intOrStringType:
		return map[string]any{"anyOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	case timeType:
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string"}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		if t.PkgPath() == ownPkg {
			return g.object(t)
		}
		name := strings.NewReplacer("k8s.io/api/", "io.k8s.api.", "k8s.io/apimachinery/pkg/apis/", "io.k8s.apimachinery.pkg.apis.", "/", ".").Replace(t.PkgPath()) + "." + t.Name()
		if _, done := g.defs[name]; !done {
			g.defs[name] = nil // a placeholder, so a recursive type refers to itself
			g.defs[name] = g.object(t)
		}
		return map[string]any{"$ref": "#/definitions/" + name}
	}
	return map[string]any{} // interface{}: anything
}

// object is a struct's schema: its JSON fields (embedded inline structs flattened), closed to others so that a
// typo in a policy's input path is a type error.
func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	g.fields(t, props)
	return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
}

func (g *schemaGen) fields(t reflect.Type, props map[string]any) {
	only, reduced := podViewFields[t]
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && name == "" {
			if f.Type.Kind() == reflect.Struct {
				g.fields(f.Type, props)
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		if reduced && !slices.Contains(only, name) {
			continue
		}
		s := g.schema(f.Type)
		if doc := g.docs[t.Name()+"."+f.Name]; doc != "" {
			s = withDescription(s, doc)
		}
		props[name] = s
	}
}

func withDescription(s map[string]any, doc string) map[string]any {
	if _, ref := s["$ref"]; ref {
		// Siblings of $ref are ignored by draft-07 readers: wrap it.
		return map[string]any{"description": doc, "allOf": []any{s}}
	}
	s["description"] = doc
	return s
}

// fieldDocs reads the doc comments of the struct fields declared in a file of this package.
func fieldDocs(file string) (map[string]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	docs := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, field := range st.Fields.List {
			doc := strings.Join(strings.Fields(field.Doc.Text()), " ")
			for _, name := range field.Names {
				docs[ts.Name.Name+"."+name.Name] = doc
			}
		}
		return false
	})
	return docs, nil
}

// configSchema is the JSON schema of data.sparkplace.config, inferred from the defaults as mergeConfig reads
// them: objects are closed (only the default keys), except the free-form maps (replacedConfigMaps and presets),
// which take any key; lists take items shaped like the first default item. Comments above a key describe it.
func configSchema() (map[string]any, error) {
	raw, err := embedded.ReadFile(defaultConfigPath)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	s, err := yamlSchema(doc.Content[0], nil)
	if err != nil {
		return nil, err
	}
	s["$schema"] = "http://json-schema.org/draft-07/schema#"
	s["title"] = "data.sparkplace.config"
	s["description"] = "sparkplace's policy parameters: the defaults in policies/bundle/sparkplace/config/data.yaml with the --config file merged over them. Generated from data.yaml: do not edit."
	return s, nil
}

func yamlSchema(n *yaml.Node, at []string) (map[string]any, error) {
	switch n.Kind {
	case yaml.MappingNode:
		where := strings.Join(at, ".")
		props := map[string]any{}
		var open map[string]any
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			s, err := yamlSchema(v, append(slices.Clone(at), k.Value))
			if err != nil {
				return nil, err
			}
			if open == nil {
				open = s
			}
			if c := strings.TrimSpace(strings.TrimLeft(strings.ReplaceAll(k.HeadComment, "\n#", " "), "# ")); c != "" {
				s["description"] = strings.Join(strings.Fields(c), " ")
			}
			props[k.Value] = s
		}
		switch {
		case where == openConfigMap:
			// New presets take the shape of the default ones.
			open = maps.Clone(open)
			delete(open, "description")
			return map[string]any{"type": "object", "properties": props, "additionalProperties": open}, nil
		case slices.Contains(replacedConfigMaps, where), where == customConfigKey:
			return map[string]any{"type": "object", "additionalProperties": true}, nil
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}, nil
	case yaml.SequenceNode:
		items := map[string]any{}
		if len(n.Content) > 0 {
			var err error
			if items, err = yamlSchema(n.Content[0], at); err != nil {
				return nil, err
			}
			if items["type"] == "object" {
				items["additionalProperties"] = true // list items are not merged, so not checked key by key
			}
		}
		return map[string]any{"type": "array", "items": items}, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return map[string]any{"type": "string"}, nil
		case "!!int":
			return map[string]any{"type": "integer"}, nil
		case "!!float":
			return map[string]any{"type": "number"}, nil
		case "!!bool":
			return map[string]any{"type": "boolean"}, nil
		}
	}
	return nil, fmt.Errorf("config %s: no schema for YAML %v %s", strings.Join(at, "."), n.Kind, n.Tag)
}
