package policies

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/sparkplace/sparkplace/placement"
)

// defaultGuardrails documents every key; Options.GuardrailsFile overrides them key by key.
//
//go:embed guardrails.yaml
var defaultGuardrails []byte

// guardrailsSource is the guardrails in effect and their canonical JSON (part of the version's hash: two
// files that say the same, comments aside, give the same hash, so replicas and the annotation agree).
type guardrailsSource struct {
	guardrails placement.Guardrails
	canonical  []byte
}

// loadGuardrails reads the defaults and, when file is set, that file over them. Guardrails that would not hold
// (a hostPath prefix of "/", a capability beyond Pod Security baseline) are an error naming the field.
func loadGuardrails(file string) (guardrailsSource, error) {
	g, err := decodeGuardrails("policies/guardrails.yaml", defaultGuardrails, placement.Guardrails{})
	if err != nil {
		return guardrailsSource{}, err
	}
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return guardrailsSource{}, fmt.Errorf("reading guardrails: %w", err)
		}
		if g, err = decodeGuardrails(file, raw, g); err != nil {
			return guardrailsSource{}, err
		}
	}
	canonical, err := json.Marshal(g)
	if err != nil {
		return guardrailsSource{}, fmt.Errorf("guardrails: %w", err)
	}
	return guardrailsSource{guardrails: g, canonical: canonical}, nil
}

// decodeGuardrails decodes a YAML or JSON object strictly over base (a key present replaces base's) and checks
// the result.
func decodeGuardrails(name string, raw []byte, base placement.Guardrails) (placement.Guardrails, error) {
	j, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return base, fmt.Errorf("guardrails %s: %w", name, err)
	}
	if !bytes.Equal(bytes.TrimSpace(j), []byte("null")) { // an empty file changes nothing
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&base); err != nil {
			return base, fmt.Errorf("guardrails %s: %w", name, err)
		}
	}
	if err := base.Check(); err != nil {
		return base, fmt.Errorf("guardrails %s: %w", name, err)
	}
	return base, nil
}
