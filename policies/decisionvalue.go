package policies

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// setValue sets dst from the Rego value v as goccy/go-json's strict decoding (decodeDecisionJSON) sets it
// from v's JSON (appendJSON), without writing and reading that JSON: on a cache miss that round trip cost
// about a fifth of the evaluation (a quarter with the nvme profile's init container). It reports false for
// anything it does not take exactly as the JSON path does (a member name that matches a field only
// case-insensitively or no field, a null, invalid UTF-8, a number the field cannot hold, a type decoded from
// text or with a custom decoding other than json.Unmarshaler); the caller then takes the JSON path, which
// decides and words the error. TestDecisionValueMatchesJSON compares the two.
func setValue(v ast.Value, dst reflect.Value) bool {
	t := dst.Type()
	info := typeInfoOf(t)
	switch {
	case info.unmarshaler:
		raw, err := appendJSON(nil, v)
		return err == nil && dst.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(raw) == nil
	case info.text:
		return false
	}
	switch t.Kind() {
	case reflect.String:
		s, ok := v.(ast.String)
		if !ok || !utf8.ValidString(string(s)) {
			return false
		}
		// A copy: the decision is cached, and the input's strings may refer to the admission request's bytes
		// (see webhook.decodeAdmittedPod), which a cached decision must not keep alive.
		dst.SetString(strings.Clone(string(s)))
	case reflect.Bool:
		b, ok := v.(ast.Boolean)
		if !ok {
			return false
		}
		dst.SetBool(bool(b))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(ast.Number)
		if !ok {
			return false
		}
		i, err := strconv.ParseInt(string(n), 10, t.Bits())
		if err != nil {
			return false
		}
		dst.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(ast.Number)
		if !ok {
			return false
		}
		u, err := strconv.ParseUint(string(n), 10, t.Bits())
		if err != nil {
			return false
		}
		dst.SetUint(u)
	case reflect.Pointer:
		if _, null := v.(ast.Null); null {
			return false
		}
		p := reflect.New(t.Elem())
		if !setValue(v, p.Elem()) {
			return false
		}
		dst.Set(p)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 { // base64 text
			return false
		}
		var elems []*ast.Term
		switch x := v.(type) {
		case *ast.Array:
			elems = make([]*ast.Term, x.Len())
			for i := range elems {
				elems[i] = x.Elem(i)
			}
		case ast.Set:
			elems = x.Slice() // sorted: the order appendJSON writes a set in
		default:
			return false
		}
		s := reflect.MakeSlice(t, len(elems), len(elems))
		for i, e := range elems {
			if !setValue(e.Value, s.Index(i)) {
				return false
			}
		}
		dst.Set(s)
	case reflect.Map:
		obj, ok := v.(ast.Object)
		if !ok || t.Key().Kind() != reflect.String || typeInfoOf(t.Key()).text {
			return false
		}
		m := reflect.MakeMapWithSize(t, obj.Len())
		ok = !obj.Until(func(k, val *ast.Term) bool {
			s, isString := k.Value.(ast.String)
			if !isString || !utf8.ValidString(string(s)) {
				return true
			}
			e := reflect.New(t.Elem()).Elem()
			if !setValue(val.Value, e) {
				return true
			}
			m.SetMapIndex(reflect.ValueOf(strings.Clone(string(s))).Convert(t.Key()), e)
			return false
		})
		if !ok {
			return false
		}
		dst.Set(m)
	case reflect.Struct:
		obj, ok := v.(ast.Object)
		members := structMembersOf(t)
		if !ok || members == nil {
			return false
		}
		return !obj.Until(func(k, val *ast.Term) bool {
			s, isString := k.Value.(ast.String)
			if !isString {
				return true
			}
			m := members.byName[string(s)]
			if m == nil {
				return true
			}
			return !setValue(val.Value, dst.FieldByIndex(m.index)) // no embedded pointers: jsonFields
		})
	default: // floats (a number's text the JSON path may round otherwise), interfaces, arrays, ...
		return false
	}
	return true
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// typeInfo is what setValue and goValue need to know of a type: whether *T implements json.Unmarshaler, or
// encoding.TextUnmarshaler, and whether T writes its own JSON (hasOwnJSON). Asking reflect each time was a
// third of goValue's cost.
type typeInfo struct{ unmarshaler, text, ownJSON bool }

// typeInfos caches typeInfoOf.
var typeInfos sync.Map // reflect.Type -> *typeInfo

func typeInfoOf(t reflect.Type) *typeInfo {
	if info, ok := typeInfos.Load(t); ok {
		return info.(*typeInfo)
	}
	p := reflect.PointerTo(t)
	info := &typeInfo{unmarshaler: p.Implements(jsonUnmarshaler), text: p.Implements(textUnmarshaler), ownJSON: hasOwnJSON(t)}
	typeInfos.Store(t, info)
	return info
}
