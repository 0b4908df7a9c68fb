package policies

import (
	"encoding"
	"encoding/json"
	"reflect"
	"sort"
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
		dst.SetString(string(s))
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
			m.SetMapIndex(reflect.ValueOf(string(s)).Convert(t.Key()), e)
			return false
		})
		if !ok {
			return false
		}
		dst.Set(m)
	case reflect.Struct:
		obj, ok := v.(ast.Object)
		fields := info.fields
		if !ok || fields == nil {
			return false
		}
		return !obj.Until(func(k, val *ast.Term) bool {
			s, isString := k.Value.(ast.String)
			if !isString {
				return true
			}
			path, known := fields[string(s)]
			if !known {
				return true
			}
			f := dst
			for _, i := range path {
				if f.Kind() == reflect.Pointer {
					if f.IsNil() {
						f.Set(reflect.New(f.Type().Elem()))
					}
					f = f.Elem()
				}
				f = f.Field(i)
			}
			return !setValue(val.Value, f)
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

// typeInfo is what setValue needs to know of a type.
type typeInfo struct {
	// unmarshaler: *T implements json.Unmarshaler; text: *T implements encoding.TextUnmarshaler.
	unmarshaler, text bool
	// fields of a struct type (fieldsOf).
	fields map[string][]int
}

// typeInfos caches typeInfoOf.
var typeInfos sync.Map // reflect.Type -> *typeInfo

func typeInfoOf(t reflect.Type) *typeInfo {
	if info, ok := typeInfos.Load(t); ok {
		return info.(*typeInfo)
	}
	p := reflect.PointerTo(t)
	info := &typeInfo{unmarshaler: p.Implements(jsonUnmarshaler), text: p.Implements(textUnmarshaler)}
	if t.Kind() == reflect.Struct {
		info.fields = fieldsOf(t)
	}
	typeInfos.Store(t, info)
	return info
}

// fieldsOf maps the JSON member names of struct type t to the index paths of their fields, promoted fields of
// embedded structs included, as encoding/json names them; nil when t has what setValue does not follow (the
// ",string" option, a name two fields of one depth share).
func fieldsOf(t reflect.Type) map[string][]int {
	type field struct {
		name  string
		path  []int
		depth int
	}
	var all []field
	supported := true
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if strings.Contains(","+opts+",", ",string,") {
				supported = false
			}
			path := append(append([]int(nil), prefix...), i)
			if sf.Anonymous && name == "" {
				et := sf.Type
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if et.Kind() == reflect.Struct {
					walk(et, path)
					continue
				}
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			all = append(all, field{name: name, path: path, depth: len(path)})
		}
	}
	walk(t, nil)
	sort.SliceStable(all, func(i, j int) bool { return all[i].depth < all[j].depth })
	fields := map[string][]int{}
	depth := map[string]int{}
	for _, f := range all {
		if d, seen := depth[f.name]; seen {
			if d == f.depth {
				supported = false
			}
			continue
		}
		fields[f.name], depth[f.name] = f.path, f.depth
	}
	if !supported {
		return nil
	}
	return fields
}
