package webhook

import (
	"encoding/json"
	"testing"

	gojson "github.com/goccy/go-json"
	"github.com/google/go-cmp/cmp"
)

// TestDecodeMatchesEncodingJSON holds the fast decoder to encoding/json's result on every fixture.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, fixture := range fixtures {
		t.Run(fixture, func(t *testing.T) {
			raw, err := json.Marshal(readFixture(t, fixture))
			if err != nil {
				t.Fatal(err)
			}
			var want, got admittedPod
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if err := gojson.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(admittedVolume{})); diff != "" {
				t.Errorf("(-encoding/json +goccy):\n%s", diff)
			}
		})
	}
}
