package policies

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
)

func TestParseValueReadsWhatOPAReads(t *testing.T) {
	fixture, err := os.ReadFile("testdata/nvme-path.json")
	if err != nil {
		t.Fatal(err)
	}
	input, err := json.Marshal(benchInput())
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"fixture":             string(fixture),
		"policy input":        string(input),
		"escaped member name": `{"spec": {"contain\u0065rs": [{"name": "a"}], "a\"b": 1}}`,
		"empty containers":    `{"a": {}, "b": [], "c": [{}], "d": [[]]}`,
		"scalars":             `[true, false, null, 0, -1, 185, 3.5, 1e3, -2.5E-3, 12345678901234567890123]`,
		"escapes":             `{"q\"uote": "tab\there \\ back\/slash \u00e9 \ud83d\ude00 \n"}`,
		"unicode":             `{"ключ": "zone 東京", "emoji": "🚀"}`,
		"whitespace":          " \t\n{ \"a\" : [ 1 , 2 ] ,\r\n \"b\":null } \n",
		"duplicate keys":      `{"a": 1, "a": 2}`,
		"invalid utf-8":       "{\"a\": \"x\xffy\"}",
		"deep":                strings.Repeat("[", 100) + strings.Repeat("]", 100),
		"top-level string":    `"spark"`,
		"interned and not":    `["executor", "spark-local-dir-1", "CREATE", 1, 100000]`,
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := ast.ValueFromReader(strings.NewReader(doc))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseValue([]byte(doc))
			if err != nil {
				t.Fatalf("parseValue: %v", err)
			}
			if got.Compare(want) != 0 {
				t.Errorf("parseValue = %v\nOPA reads    %v", got, want)
			}
		})
	}
}

func TestParseValueRejectsBadJSON(t *testing.T) {
	for _, doc := range []string{``, `{`, `{"a" 1}`, `{"a": 1,}`, `[1 2]`, `{"a": tru}`, `"open`, `{"a": 1} x`, `-`, `01`, `{a: 1}`, "\"a\x01\"", `[1e999999999]`} {
		if v, err := parseValue([]byte(doc)); err == nil {
			t.Errorf("parseValue(%q) = %v, want an error", doc, v)
		}
	}
}

func TestAppendJSONWritesWhatOPAWrites(t *testing.T) {
	cases := map[string]string{
		"decision":        `{"nodeSelector": {"noderole": "spark"}, "rules": {"b", "a"}, "localDirs": null, "initContainers": [{"command": ["sh", "-c", "printf '%s\\n' \"$POD_UID\" > .uid"]}]}`,
		"numbers":         `[0, -1, 3.5, 1e3, 12345678901234567890123]`,
		"strings":         "[\"tab\\there\", \"<html> & co\", \"\\u0001\", \"é 東京 🚀\", \"\\u2028\"]",
		"sets":            `{{"key": "spot"}, {"key": "noderole"}}`,
		"non-string keys": `{1: "one", ["a"]: "list", {"k": "v"}: "object", true: "yes"}`,
		"empty":           `[{}, [], set()]`,
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			v := ast.MustParseTerm(src).Value
			native, err := ast.JSON(v)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(native)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendJSON(nil, v)
			if err != nil {
				t.Fatalf("appendJSON: %v", err)
			}
			if diff := cmp.Diff(decodeAny(t, want), decodeAny(t, got)); diff != "" {
				t.Errorf("appendJSON differs from OPA's JSON (-OPA +appendJSON):\n%s\nwrote %s", diff, got)
			}
		})
	}
}

func TestAppendJSONRejectsUnevaluatedValues(t *testing.T) {
	if _, err := appendJSON(nil, ast.MustParseTerm(`{"a": x}`).Value); err == nil {
		t.Error("appendJSON of a variable succeeded, want an error")
	}
}

func TestDecodeDecisionIsStrictAtEveryDepth(t *testing.T) {
	cases := map[string]struct{ value, wantErr string }{
		"top level":     {`{"hostNetwork": true}`, `unknown field "hostNetwork"`},
		"in a list":     {`{"tolerations": [{"key": "spot", "efect": "NoSchedule"}]}`, `unknown field "efect"`},
		"not an object": {`["nodeSelector"]`, "want an object, got a list"},
		"a set":         {`{"rules"}`, "want an object, got a list"},
		"wrong type":    {`{"nodeSelector": {"noderole": 1}}`, "nodeSelector"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := decodeDecision(ast.MustParseTerm(tc.value).Value)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("decodeDecision(%s) error = %v, want it to contain %q", tc.value, err, tc.wantErr)
			}
		})
	}
}

func decodeAny(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	return v
}
