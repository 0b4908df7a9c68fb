package submit

import (
	"bytes"
	"fmt"

	"sigs.k8s.io/yaml"
)

// RequestFlags are `aws emr-containers start-job-run`'s options as raw strings: the JSON-valued ones
// (--job-driver, --configuration-overrides) are decoded here, so the CLI layer only parses flags.
type RequestFlags struct {
	VirtualClusterID       string
	Name                   string
	ExecutionRoleARN       string
	ReleaseLabel           string
	JobDriver              string
	ConfigurationOverrides string
	ClientToken            string
}

// Apply sets every non-empty flag on req, overriding what a --job-run body said.
func (f RequestFlags) Apply(req *StartJobRunRequest) error {
	for _, kv := range []struct {
		dst *string
		v   string
	}{
		{&req.VirtualClusterID, f.VirtualClusterID}, {&req.Name, f.Name}, {&req.ExecutionRoleARN, f.ExecutionRoleARN},
		{&req.ReleaseLabel, f.ReleaseLabel}, {&req.ClientToken, f.ClientToken},
	} {
		if kv.v != "" {
			*kv.dst = kv.v
		}
	}
	if f.JobDriver != "" {
		d, err := DecodeJobDriver(f.JobDriver)
		if err != nil {
			return err
		}
		req.JobDriver = d
	}
	if f.ConfigurationOverrides != "" {
		c, err := DecodeConfigurationOverrides(f.ConfigurationOverrides)
		if err != nil {
			return err
		}
		req.ConfigurationOverrides = c
	}
	return nil
}

// YAML renders the planned objects as a multi-document YAML stream, in creation order.
func (p *Plan) YAML() ([]byte, error) {
	var buf bytes.Buffer
	for i, obj := range p.Objects() {
		data, err := yaml.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("rendering %s: %w", obj.GetName(), err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(data)
	}
	return buf.Bytes(), nil
}
