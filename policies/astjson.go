package policies

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The policy input and the decision cross between Go and Rego as JSON. OPA's own conversions go through Go
// maps and slices (json.Decoder, then ast.InterfaceToValue; ast.JSON, then json.Marshal): these read and
// write OPA's values directly, in one pass, and are what an evaluation on a cache miss pays for its input
// and its result.

// parseValue reads one JSON document (an input as DecideKeyed encodes it) into a Rego value, as
// ast.ValueFromReader would: numbers stay their JSON text, strings and small integers are OPA's interned ones.
func parseValue(data []byte) (ast.Value, error) {
	p := jsonParser{data: data}
	t, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if p.skipSpace(); p.pos != len(p.data) {
		return nil, p.errorf("data after the value")
	}
	return t.Value, nil
}

// maxJSONDepth bounds the nesting parseValue follows, as encoding/json does (10,000).
const maxJSONDepth = 10000

type jsonParser struct {
	data []byte
	pos  int
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (*ast.Term, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("nested too deeply")
	}
	p.skipSpace()
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return ast.InternedTerm(s), nil
	case c == 't':
		return p.literal("true", ast.InternedTerm(true))
	case c == 'f':
		return p.literal("false", ast.InternedTerm(false))
	case c == 'n':
		return p.literal("null", ast.NullTerm())
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return nil, p.errorf("unexpected %q", c)
	}
}

func (p *jsonParser) literal(text string, t *ast.Term) (*ast.Term, error) {
	if len(p.data)-p.pos < len(text) || string(p.data[p.pos:p.pos+len(text)]) != text {
		return nil, p.errorf("want %s", text)
	}
	p.pos += len(text)
	return t, nil
}

func (p *jsonParser) object(depth int) (*ast.Term, error) {
	p.pos++ // {
	var items [][2]*ast.Term
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return ast.NewTerm(ast.NewObject()), nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("want an object key")
		}
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		if p.skipSpace(); p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("want ':'")
		}
		p.pos++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		items = append(items, [2]*ast.Term{k, v})
		if p.skipSpace(); p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == '}' {
			p.pos++
			return objectTerm(items), nil
		}
		return nil, p.errorf("want ',' or '}'")
	}
}

// objectTerm makes the object of items; of a key given twice the last value counts, as in encoding/json.
func objectTerm(items [][2]*ast.Term) *ast.Term {
	if !hasDuplicateKey(items) {
		return ast.NewTerm(ast.NewObject(items...))
	}
	obj := ast.NewObjectWithCapacity(len(items))
	for _, kv := range items {
		obj.Insert(kv[0], kv[1])
	}
	return ast.NewTerm(obj)
}

func hasDuplicateKey(items [][2]*ast.Term) bool {
	if len(items) <= 16 {
		for i := range items {
			for j := i + 1; j < len(items); j++ {
				if items[i][0].Value.(ast.String) == items[j][0].Value.(ast.String) {
					return true
				}
			}
		}
		return false
	}
	seen := make(map[ast.String]bool, len(items))
	for _, kv := range items {
		k := kv[0].Value.(ast.String)
		if seen[k] {
			return true
		}
		seen[k] = true
	}
	return false
}

func (p *jsonParser) array(depth int) (*ast.Term, error) {
	p.pos++ // [
	var elems []*ast.Term
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return ast.ArrayTerm(), nil
	}
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		elems = append(elems, v)
		if p.skipSpace(); p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == ']' {
			p.pos++
			return ast.ArrayTerm(elems...), nil
		}
		return nil, p.errorf("want ',' or ']'")
	}
}

// key reads an object key: one of the input's own member names is the term inputNames holds for it.
func (p *jsonParser) key() (*ast.Term, error) {
	if end := p.pos + 1 + bytes.IndexByte(p.data[p.pos+1:], '"'); end > p.pos {
		if t, ok := inputNames()[string(p.data[p.pos+1:end])]; ok {
			p.pos = end + 1
			return t, nil
		}
	}
	s, err := p.str()
	if err != nil {
		return nil, err
	}
	return ast.InternedTerm(s), nil
}

// inputNames are the member names the policy input's JSON can have (the json names of Input's fields, down
// through the pod's types), each as one term that every input shares: most appear in every input, many of
// them several times, and a term per occurrence would be most of what reading an input allocates.
var inputNames = sync.OnceValue(func() map[string]*ast.Term {
	names := map[string]*ast.Term{}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" && !f.Anonymous {
				name = f.Name
			}
			// A name with a quote or a backslash is never written bare: key reads it the long way.
			if name != "" && !strings.ContainsAny(name, `"\`) && utf8.ValidString(name) {
				names[name] = ast.InternedTerm(name)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Input]())
	return names
})

// str reads a string; one with escapes or invalid UTF-8 (rare in a pod) is left to encoding/json.
func (p *jsonParser) str() (string, error) {
	start := p.pos
	p.pos++ // "
	escaped := false
	for p.pos < len(p.data) {
		switch c := p.data[p.pos]; {
		case c == '"':
			p.pos++
			if body := p.data[start+1 : p.pos-1]; !escaped && utf8.Valid(body) {
				return string(body), nil
			}
			var s string
			if err := json.Unmarshal(p.data[start:p.pos], &s); err != nil {
				return "", p.errorf("%v", err)
			}
			return s, nil
		case c == '\\':
			escaped = true
			p.pos += 2
		case c < 0x20:
			return "", p.errorf("control character in a string")
		default:
			p.pos++
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonParser) number() (*ast.Term, error) {
	start := p.pos
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if (c < '0' || c > '9') && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
			break
		}
		p.pos++
	}
	text := string(p.data[start:p.pos])
	if !json.Valid(p.data[start:p.pos]) {
		return nil, p.errorf("bad number %q", text)
	}
	if t := ast.InternedIntNumberTermFromString(text); t != nil {
		return t, nil
	}
	n, err := ast.NumberChecked(text)
	if err != nil {
		return nil, p.errorf("%v", err)
	}
	return ast.NewTerm(n), nil
}

// appendJSON appends v as JSON, as OPA's ast.JSON and then encoding/json would write it (sets as arrays,
// non-string object keys as their JSON text), but without the Go maps in between.
func appendJSON(buf []byte, v ast.Value) ([]byte, error) {
	switch v := v.(type) {
	case ast.Null:
		return append(buf, "null"...), nil
	case ast.Boolean:
		if v {
			return append(buf, "true"...), nil
		}
		return append(buf, "false"...), nil
	case ast.Number:
		return append(buf, v...), nil
	case ast.String:
		return appendJSONString(buf, string(v)), nil
	case *ast.Array:
		buf = append(buf, '[')
		for i := range v.Len() {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = appendJSON(buf, v.Elem(i).Value); err != nil {
				return nil, err
			}
		}
		return append(buf, ']'), nil
	case ast.Set:
		buf = append(buf, '[')
		first := true
		err := v.Iter(func(t *ast.Term) error {
			if !first {
				buf = append(buf, ',')
			}
			first = false
			var err error
			buf, err = appendJSON(buf, t.Value)
			return err
		})
		if err != nil {
			return nil, err
		}
		return append(buf, ']'), nil
	case ast.Object:
		buf = append(buf, '{')
		first := true
		err := v.Iter(func(k, val *ast.Term) error {
			if !first {
				buf = append(buf, ',')
			}
			first = false
			if s, ok := k.Value.(ast.String); ok {
				buf = appendJSONString(buf, string(s))
			} else {
				key, err := appendJSON(nil, k.Value)
				if err != nil {
					return err
				}
				buf = appendJSONString(buf, string(key))
			}
			buf = append(buf, ':')
			var err error
			buf, err = appendJSON(buf, val.Value)
			return err
		})
		if err != nil {
			return nil, err
		}
		return append(buf, '}'), nil
	default:
		return nil, errors.New(ast.TypeName(v) + " requires evaluation")
	}
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does (invalid UTF-8 becomes U+FFFD); the decoder reads back
// the same string either way.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf = append(buf, '\\', c)
			case c < 0x20:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				buf = append(buf, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, `\ufffd`...)
		} else {
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return append(buf, '"')
}
