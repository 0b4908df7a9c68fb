package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/sparkplace/sparkplace/placement"
	"github.com/sparkplace/sparkplace/policies"
)

// TestInputGivesOPATheWebhooksDecision proves `policy eval -o input` prints the input the webhook decides on:
// for every Spark fixture under every profile, OPA's own CLI (`opa eval -b policies/bundle -i input.json`, the
// opa that `make opa` builds) gives the decision the webhook's code path made, and the input is valid against
// policies/schemas/input.json.
func TestInputGivesOPATheWebhooksDecision(t *testing.T) {
	opa, err := filepath.Abs(filepath.Join("..", "bin", "opa"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(opa); err != nil {
		t.Fatalf("%v: run make opa first", err)
	}
	schema, err := os.ReadFile(filepath.Join("..", "policies", "schemas", "input.json"))
	if err != nil {
		t.Fatal(err)
	}
	placer := newTestPlacer(t, policies.Options{CacheSize: -1})
	for _, fixture := range fixtures {
		for _, profile := range profiles {
			t.Run(fmt.Sprintf("%s/%s", fixture, profile), func(t *testing.T) {
				var input bytes.Buffer
				out, err := Evaluate(context.Background(), placer, withProfile(readFixture(t, fixture), profile), OutputInput, &input)
				if err != nil {
					t.Fatal(err)
				}
				checkMatchesSchema(t, input.Bytes(), schema)
				file := filepath.Join(t.TempDir(), "input.json")
				if err := os.WriteFile(file, input.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(opa, "eval", "-b", filepath.Join("..", "policies", "bundle"), "-i", file, "-f", "raw", "data.sparkplace.placement.decision")
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				raw, err := cmd.Output()
				if err != nil {
					t.Fatalf("opa eval: %v\n%s", err, stderr.String())
				}
				dec := json.NewDecoder(bytes.NewReader(raw))
				dec.DisallowUnknownFields()
				var got placement.Decision
				if err := dec.Decode(&got); err != nil {
					t.Fatalf("opa's decision %s: %v", raw, err)
				}
				if diff := cmp.Diff(out.Decision, &got); diff != "" {
					t.Errorf("opa eval's decision differs from the webhook's (-webhook +opa):\n%s", diff)
				}
			})
		}
	}
}

// checkMatchesSchema validates a policy input against the input schema with OPA's json.match_schema.
func checkMatchesSchema(t *testing.T, input, schema []byte) {
	t.Helper()
	var doc, s any
	if err := json.Unmarshal(input, &doc); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(schema, &s); err != nil {
		t.Fatal(err)
	}
	rs, err := rego.New(
		rego.Query("[ok, errors] := json.match_schema(input.doc, input.schema)"),
		rego.Input(map[string]any{"doc": doc, "schema": s}),
	).Eval(context.Background())
	if err != nil || len(rs) != 1 {
		t.Fatalf("json.match_schema: %v %v", rs, err)
	}
	if ok := rs[0].Bindings["ok"]; ok != true {
		t.Errorf("the input does not match policies/schemas/input.json (regenerate it: go test ./policies -run TestSchemasAreCurrent -update; a new pod field goes into podViewFields): %v", rs[0].Bindings["errors"])
	}
}
