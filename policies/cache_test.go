package policies

import (
	"encoding/json"
	"testing"

	gojson "github.com/goccy/go-json"
)

// TestInputJSONMatchesEncodingJSON: the cache key and Rego's input are goccy/go-json's encoding of the
// input; it must be byte for byte encoding/json's, so equal inputs keep equal keys and Rego sees the same.
func TestInputJSONMatchesEncodingJSON(t *testing.T) {
	for name, in := range map[string]*Input{
		"nvme executor": benchInput(),
		"driver":        makeInput("driver").profile("fargate").obj(),
	} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := gojson.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("goccy/go-json:\n%s\nencoding/json:\n%s", got, want)
			}
		})
	}
}
