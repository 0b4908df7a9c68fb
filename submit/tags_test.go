package submit

import (
	"context"
	"strings"
	"testing"
)

// TestTagBounds: tags are held to the service model's bounds wherever they are set: on a new virtual
// cluster, job template or job run, and by TagResource.
func TestTagBounds(t *testing.T) {
	many := map[string]string{}
	for i := range 51 {
		many[strings.Repeat("k", i+1)] = "v"
	}
	cases := map[string]struct {
		tags map[string]string
		want string // "" when the tags are within bounds
	}{
		"a 128-character key, a 256-character value, an empty value": {map[string]string{strings.Repeat("k", 128): strings.Repeat("v", 256), "empty": ""}, ""},
		"51 tags":                          {many, "at most 50 tags"},
		"a 129-character key":              {map[string]string{strings.Repeat("k", 129): "v"}, "tag key"},
		"a blank key":                      {map[string]string{" ": "v"}, "tag key"},
		"a 257-character value":            {map[string]string{"team": strings.Repeat("v", 257)}, "longer than 256"},
		"multi-byte characters count once": {map[string]string{"team": strings.Repeat("ü", 256)}, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, s, vc := newCluster(t)
			ctx := context.Background()
			check := func(what string, err error) {
				t.Helper()
				if tc.want == "" && err != nil || tc.want != "" && (!IsValidation(err) || !strings.Contains(err.Error(), tc.want)) {
					t.Errorf("%s: err = %v, want %q", what, err, tc.want)
				}
			}
			check("TagResource", s.TagResource(ctx, vc.ARN, tc.tags))
			req := makeRequest().VC(vc.ID).Obj()
			req.Tags = tc.tags
			_, err := s.StartJobRun(ctx, req)
			check("StartJobRun", err)
		})
	}
}
