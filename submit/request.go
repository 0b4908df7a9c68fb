package submit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sparkplace/sparkplace/jobs/api/v1alpha1"
)

// The request types are the API types' (a JobRun's spec holds the request as sent).
type (
	StartJobRunRequest       = v1alpha1.JobRunRequest
	JobDriver                = v1alpha1.JobDriver
	SparkSubmitJobDriver     = v1alpha1.SparkSubmitJobDriver
	SparkSQLJobDriver        = v1alpha1.SparkSQLJobDriver
	ConfigurationOverrides   = v1alpha1.ConfigurationOverrides
	Configuration            = v1alpha1.Configuration
	MonitoringConfiguration  = v1alpha1.MonitoringConfiguration
	RetryPolicyConfiguration = v1alpha1.RetryPolicyConfiguration
)

// StartJobRunResponse is what StartJobRun returns and what `sparkplace submit` prints.
type StartJobRunResponse struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	ARN              string `json:"arn"`
	VirtualClusterID string `json:"virtualClusterId"`
}

// DecodeStartJobRun reads a StartJobRun body. Unknown fields are refused so that a misspelt key
// ("sparkSubmitParams") fails loudly instead of being dropped; syntax errors carry the line and column.
func DecodeStartJobRun(r io.Reader) (*StartJobRunRequest, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading StartJobRun request: %w", err)
	}
	var req StartJobRunRequest
	if err := decodeStrict(data, &req); err != nil {
		return nil, &ValidationError{Message: "invalid StartJobRun request", Err: err}
	}
	return &req, nil
}

// DecodeJobDriver parses the --job-driver flag value.
func DecodeJobDriver(s string) (*JobDriver, error) {
	var d JobDriver
	if err := decodeStrict([]byte(s), &d); err != nil {
		return nil, &ValidationError{Message: "invalid --job-driver", Err: err}
	}
	return &d, nil
}

// DecodeConfigurationOverrides parses the --configuration-overrides flag value.
func DecodeConfigurationOverrides(s string) (*ConfigurationOverrides, error) {
	var c ConfigurationOverrides
	if err := decodeStrict([]byte(s), &c); err != nil {
		return nil, &ValidationError{Message: "invalid --configuration-overrides", Err: err}
	}
	return &c, nil
}

func decodeStrict(data []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return describeJSONError(data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		line, col := position(data, dec.InputOffset())
		return fmt.Errorf("line %d, column %d: unexpected data after the JSON object", line, col)
	}
	return nil
}

// describeJSONError adds the line and column to encoding/json's errors, which only know a byte offset,
// and explains the one mistake EMR's own published examples make: properties written as a list of pairs.
func describeJSONError(data []byte, err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		line, col := position(data, syntax.Offset-1)
		msg := fmt.Sprintf("line %d, column %d: %v", line, col, syntax)
		if strings.Contains(syntax.Error(), "after array element") {
			msg += ` (a JSON list holds values, not "key": "value" pairs; write "properties" as an object: {"key": "value"})`
		}
		return errors.New(msg)
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		return fmt.Errorf("line %d, column %d: %s must be %s, not a JSON %s", line, col, fieldName(typ), jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.EOF):
		return errors.New("empty input: expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("unexpected end of input: the JSON is cut short")
	default:
		return err
	}
}

func fieldName(typ *json.UnmarshalTypeError) string {
	if typ.Field == "" {
		return "the value"
	}
	return fmt.Sprintf("%q", typ.Field)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "a list"
	case "int", "int64", "float64":
		return "a number"
	case "bool":
		return "a boolean"
	default:
		return goKind
	}
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	if offset < 0 {
		offset = 0
	}
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}
