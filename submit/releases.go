package submit

import (
	"fmt"
	"io"

	"sigs.k8s.io/yaml"
)

// LoadReleaseTable reads a release table from YAML or JSON, for example
//
//	region: eu-west-1
//	entries:
//	  spark-3.5.3: {image: registry.acme.io/spark:3.5.3-acme1, sparkVersion: 3.5.3}
//
// Unknown keys are refused so a misspelt "entires" does not silently fall back to the defaults.
func LoadReleaseTable(r io.Reader) (ReleaseTable, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return ReleaseTable{}, fmt.Errorf("reading release table: %w", err)
	}
	var t ReleaseTable
	if err := yaml.UnmarshalStrict(data, &t); err != nil {
		return ReleaseTable{}, &ValidationError{Message: "invalid release table", Err: err}
	}
	for label, r := range t.Entries {
		if r.Image == "" {
			return ReleaseTable{}, invalidf("release table: %s has no image", label)
		}
	}
	return t, nil
}
