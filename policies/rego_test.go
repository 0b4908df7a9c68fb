package policies

import (
	"bytes"
	"context"
	"testing"
)

// TestRegoUnitTests runs the embedded bundle's *_test.rego, so `go test` fails when a Rego test fails.
func TestRegoUnitTests(t *testing.T) {
	var out bytes.Buffer
	rep, err := RunTests(context.Background(), TestOptions{}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("RunTests: %v", err)
	}
	if !rep.OK() || rep.Passed == 0 {
		t.Errorf("Rego tests: %+v", rep)
	}
}
