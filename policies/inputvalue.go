package policies

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
	"github.com/open-policy-agent/opa/v1/ast"
)

// inputValue is the policy input of a cache miss as a Rego value, reduced to the paths the decision can
// depend on for in's role (keyPaths: a decision that depends on nothing else is the same for the reduced
// input), built from the Go values: what parseValue(encodeInput(in)) would give at those paths, without
// writing the whole input as JSON and reading it back (that was two fifths of what a miss paid beyond a
// hit). Values with their own JSON encoding (quantities, times) still go through their JSON.
// TestInputValueMatchesJSON compares the two.
func (kp keyPaths) inputValue(in *Input) (ast.Value, error) {
	paths := kp.paths[in.Role]
	if paths == nil {
		paths = &inputPaths{whole: true}
	}
	t, err := goValue(reflect.ValueOf(in).Elem(), paths)
	if err != nil {
		return nil, err
	}
	return t.Value, nil
}

// errNoGoValue: goValue does not write the value as encoding/json would; the caller takes the JSON way.
var errNoGoValue = errors.New("not converted from its Go value")

// goValue is v at the paths of n as a Rego value, as encoding/json writes it (goccy/go-json writes the
// same: TestInputJSONMatchesEncodingJSON).
func goValue(v reflect.Value, n *inputPaths) (*ast.Term, error) {
	t := v.Type()
	if typeInfoOf(t).ownJSON {
		switch {
		case (t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface) && v.IsNil():
			return ast.InternedNullTerm, nil
		case v.CanAddr():
			v = v.Addr() // encoding/json calls the pointer's methods on an addressable value
		}
		raw, err := gojson.Marshal(v.Interface())
		if err != nil {
			return nil, err
		}
		val, err := parseValue(raw)
		if err != nil {
			return nil, err
		}
		return ast.NewTerm(val), nil
	}
	switch t.Kind() {
	case reflect.String:
		return ast.InternedTerm(validUTF8(v.String())), nil
	case reflect.Bool:
		return ast.InternedTerm(v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return ast.IntNumberTerm(int(v.Int())), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return ast.NewTerm(ast.Number(strconv.FormatUint(v.Uint(), 10))), nil
	case reflect.Pointer:
		if v.IsNil() {
			return ast.InternedNullTerm, nil
		}
		return goValue(v.Elem(), n)
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 { // base64 text
			return nil, errNoGoValue
		}
		if t.Kind() == reflect.Slice && v.IsNil() {
			return ast.InternedNullTerm, nil
		}
		elems := make([]*ast.Term, v.Len())
		for i := range elems {
			var err error
			if elems[i], err = goValue(v.Index(i), wholeValue); err != nil {
				return nil, err
			}
		}
		return ast.ArrayTerm(elems...), nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String || typeInfoOf(t.Key()).ownJSON {
			return nil, errNoGoValue
		}
		if v.IsNil() {
			return ast.InternedNullTerm, nil
		}
		var items [][2]*ast.Term
		add := func(k string, val reflect.Value, n *inputPaths) error {
			vt, err := goValue(val, n)
			if err != nil {
				return err
			}
			items = append(items, [2]*ast.Term{memberName(validUTF8(k)), vt})
			return nil
		}
		if n.whole {
			for it := v.MapRange(); it.Next(); {
				if err := add(it.Key().String(), it.Value(), wholeValue); err != nil {
					return nil, err
				}
			}
		} else {
			for name, c := range n.next {
				if val := v.MapIndex(reflect.ValueOf(name).Convert(t.Key())); val.IsValid() {
					if err := add(name, val, c); err != nil {
						return nil, err
					}
				}
			}
		}
		return objectTerm(items), nil
	case reflect.Struct:
		fields := structMembersOf(t)
		if fields == nil {
			return nil, errNoGoValue
		}
		var items [][2]*ast.Term
		add := func(f *structMember, n *inputPaths) error {
			fv := v.FieldByIndex(f.index)
			if (f.omitEmpty && isEmptyValue(fv)) || (f.omitZero && isZero(fv)) {
				return nil
			}
			vt, err := goValue(fv, n)
			if err != nil {
				return err
			}
			items = append(items, [2]*ast.Term{f.name, vt})
			return nil
		}
		if n.whole {
			for i := range fields.list {
				if err := add(&fields.list[i], wholeValue); err != nil {
					return nil, err
				}
			}
		} else {
			for name, c := range n.next {
				if f := fields.byName[name]; f != nil {
					if err := add(f, c); err != nil {
						return nil, err
					}
				}
			}
		}
		return objectTerm(items), nil
	}
	return nil, errNoGoValue // floats (encoding/json's formatting), channels, functions
}

// wholeValue stands for the whole value at a path.
var wholeValue = &inputPaths{whole: true}

// memberName is the term of an object member's name: the one every input shares when it is one of the
// input's own member names (inputNames).
func memberName(name string) *ast.Term {
	if t, ok := inputNames()[name]; ok {
		return t
	}
	return ast.InternedTerm(name)
}

// validUTF8 is s with every byte that is not part of valid UTF-8 replaced by U+FFFD, as encoding/json writes it.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// isEmptyValue is encoding/json's test for omitempty.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64,
		reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

// isZero is encoding/json's test for omitzero: the value's IsZero method, else the zero value.
func isZero(v reflect.Value) bool {
	if z, ok := v.Interface().(interface{ IsZero() bool }); ok {
		if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
			return true
		}
		return z.IsZero()
	}
	if v.CanAddr() {
		if z, ok := v.Addr().Interface().(interface{ IsZero() bool }); ok {
			return z.IsZero()
		}
	}
	return v.IsZero()
}

// structMembers are the members encoding/json writes for a struct type, in its order.
type structMembers struct {
	list   []structMember
	byName map[string]*structMember
}

type structMember struct {
	name                *ast.Term
	index               []int
	omitEmpty, omitZero bool
}

var structMemberCache sync.Map // reflect.Type -> *structMembers (nil: goValue does not convert it)

// structMembersOf is t's members (jsonFields) with their omitempty and omitzero options; nil for a type
// jsonFields does not resolve or with a ",string" option.
func structMembersOf(t reflect.Type) *structMembers {
	if m, ok := structMemberCache.Load(t); ok {
		return m.(*structMembers)
	}
	fields, ok := jsonFields(t)
	var m *structMembers
	if ok {
		m = &structMembers{byName: map[string]*structMember{}}
		for name, f := range fields {
			_, opts, _ := strings.Cut(t.FieldByIndex(f.index).Tag.Get("json"), ",")
			opts = "," + opts + ","
			if strings.Contains(opts, ",string,") {
				m = nil
				break
			}
			m.list = append(m.list, structMember{name: memberName(name), index: f.index, omitEmpty: strings.Contains(opts, ",omitempty,"), omitZero: strings.Contains(opts, ",omitzero,")})
		}
		if m != nil {
			for i := range m.list {
				m.byName[string(m.list[i].name.Value.(ast.String))] = &m.list[i]
			}
		}
	}
	structMemberCache.Store(t, m)
	return m
}
