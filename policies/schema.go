package policies

import (
	"embed"
	"fmt"
	"path"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

// schemas are the JSON schemas of the input (schemas/input.json, schema.input in METADATA) and of
// data.sparkplace.config (schemas/config.json, schema.config), as `opa check -s policies/schemas` reads them.
// The bundle's package METADATA binds them, so the compiler type-checks every input and config path.
//
//go:embed schemas/*.json
var schemaFiles embed.FS

const schemaDir = "schemas"

// loadSchemas returns the schema set the compiler checks with: schema.<file name without .json>.
func loadSchemas() (*ast.SchemaSet, error) {
	entries, err := schemaFiles.ReadDir(schemaDir)
	if err != nil {
		return nil, fmt.Errorf("reading schemas: %w", err)
	}
	ss := ast.NewSchemaSet()
	for _, e := range entries {
		raw, err := schemaFiles.ReadFile(path.Join(schemaDir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading schemas: %w", err)
		}
		var schema any
		if err := util.UnmarshalJSON(raw, &schema); err != nil {
			return nil, fmt.Errorf("schema %s: %w", e.Name(), err)
		}
		name := strings.TrimSuffix(e.Name(), ".json")
		ss.Put(ast.SchemaRootRef.Append(ast.StringTerm(name)), schema)
		if name == "input" {
			// The input schema also applies where no METADATA names it (a policy-dir module in a package of its
			// own, or a replacement decision.rego without the package METADATA), as with `opa check -s input.json`.
			ss.Put(ast.SchemaRootRef, schema)
		}
	}
	return ss, nil
}
