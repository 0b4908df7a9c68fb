package webhook

import (
	"encoding/json"
	"testing"
)

// TestAppendJSONString: the patch's strings read back as encoding/json writes them, quotes, backslashes,
// control characters and bytes that are not UTF-8 (U+FFFD) included.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and backslash \`, "new\nline\ttab\rreturn", "\x00\x01\x1f\x7f", "<html> & co",
		"ünïcödé ✓ 🚀", "\u2028\u2029", "bad \xff utf-8 \xc3", "truncated \xe2\x9c", "/pv-disks/local/a~b/c",
	} {
		got := appendJSONString([]byte("x"), s)
		if string(got[:1]) != "x" {
			t.Fatalf("%q: the prefix was overwritten", s)
		}
		var read string
		if err := json.Unmarshal(got[1:], &read); err != nil {
			t.Errorf("%q: wrote %s, not a JSON string: %v", s, got[1:], err)
			continue
		}
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var wantRead string
		if err := json.Unmarshal(want, &wantRead); err != nil {
			t.Fatal(err)
		}
		if read != wantRead {
			t.Errorf("%q: reads back as %q, encoding/json's as %q", s, read, wantRead)
		}
	}
}
