package policies

import (
	"cmp"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unsafe"

	gojson "github.com/goccy/go-json"
)

// keyPlan writes the values of an input that a set of input paths names (see keyPaths.keyOf), reading the
// Go structs directly: the input's JSON is not written on a cache hit. A plan is compiled once per bundle
// version and role from the paths and the Go type of the input.
//
// What it writes is an injective encoding of the Go values at those paths: values are length-prefixed or of
// fixed size, a nil pointer, slice or map and an absent map member each have their own marker. As the
// input's JSON is a function of its Go values, two inputs that get the same bytes have the same JSON at
// every path the policy can read, so the same decision. (The converse need not hold: a nil and an empty
// list are told apart although both are absent from JSON under omitempty; that only costs a cache miss.)
type keyPlan struct {
	op keyOp
	// fields are the struct's members to write (opStruct), by their index path (through embedded structs).
	fields []keyField
	// members are the map members to write (opMembers), by name, with their keys as the map's key type.
	members []keyMember
	// elem is the plan of a pointer's target, a list's or a map's elements.
	elem *keyPlan
}

type keyField struct {
	index []int
	// offset is the field's offset in the struct, through the embedded structs of index (never pointers:
	// see jsonFields), and typ its type: an addressable struct's fields are read at their address, without
	// a reflect.Value per field (see writeDirect).
	offset uintptr
	typ    reflect.Type
	plan   *keyPlan
}

// newKeyField is the field at index in struct type t, written by plan.
func newKeyField(t reflect.Type, index []int, plan *keyPlan) keyField {
	f := keyField{index: index, plan: plan}
	for _, i := range index {
		sf := t.Field(i)
		f.offset += sf.Offset
		t = sf.Type
	}
	f.typ = t
	return f
}

type keyMember struct {
	key  reflect.Value
	plan *keyPlan
}

type keyOp uint8

const (
	// opJSON writes the value's JSON (goccy/go-json), length-prefixed: values with their own JSON encoding
	// (quantities, times), interfaces, and kinds the others do not cover.
	opJSON keyOp = iota
	opString
	opBool
	opInt
	opUint
	opFloat
	opPointer
	opStruct
	opList
	// opMap writes every member of a map with string keys, by sorted key.
	opMap
	// opMembers writes only the named members of a map with string keys (each present or absent).
	opMembers
)

// compileKeyPlan is the plan for values of type t read at the paths of n.
func compileKeyPlan(t reflect.Type, n *inputPaths) *keyPlan {
	c := &keyCompiler{whole: map[reflect.Type]*keyPlan{}}
	return c.paths(t, n)
}

type keyCompiler struct {
	// whole holds the plans of whole values by type (types may be recursive).
	whole map[reflect.Type]*keyPlan
}

// paths plans the members of a value of type t that n names; below a member that n marks whole (or where
// JSON has no members to choose from: lists, scalars, custom encodings) the whole value.
func (c *keyCompiler) paths(t reflect.Type, n *inputPaths) *keyPlan {
	if n.whole || hasOwnJSON(t) {
		return c.wholeValue(t)
	}
	names := make([]string, 0, len(n.next))
	for name := range n.next {
		names = append(names, name)
	}
	slices.Sort(names)
	switch t.Kind() {
	case reflect.Pointer:
		return &keyPlan{op: opPointer, elem: c.paths(t.Elem(), n)}
	case reflect.Struct:
		fields, ok := jsonFields(t)
		if !ok {
			return c.wholeValue(t)
		}
		p := &keyPlan{op: opStruct}
		for _, name := range names {
			// A name the type's JSON never has is absent from every input: nothing to write.
			if f, ok := fields[name]; ok {
				p.fields = append(p.fields, newKeyField(t, f.index, c.paths(f.typ, n.next[name])))
			}
		}
		return p
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return c.wholeValue(t)
		}
		p := &keyPlan{op: opMembers}
		for _, name := range names {
			p.members = append(p.members, keyMember{key: reflect.ValueOf(name).Convert(t.Key()), plan: c.paths(t.Elem(), n.next[name])})
		}
		return p
	}
	return c.wholeValue(t)
}

// wholeValue plans a whole value of type t.
func (c *keyCompiler) wholeValue(t reflect.Type) *keyPlan {
	if p, ok := c.whole[t]; ok {
		return p
	}
	p := &keyPlan{}
	c.whole[t] = p
	if hasOwnJSON(t) {
		return p // opJSON
	}
	switch t.Kind() {
	case reflect.String:
		p.op = opString
	case reflect.Bool:
		p.op = opBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		p.op = opInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		p.op = opUint
	case reflect.Float32, reflect.Float64:
		p.op = opFloat
	case reflect.Pointer:
		p.op, p.elem = opPointer, c.wholeValue(t.Elem())
	case reflect.Slice:
		if t.Elem().Kind() != reflect.Uint8 { // []byte is base64 in JSON: opJSON
			p.op, p.elem = opList, c.wholeValue(t.Elem())
		}
	case reflect.Array:
		p.op, p.elem = opList, c.wholeValue(t.Elem())
	case reflect.Map:
		if t.Key().Kind() == reflect.String {
			p.op, p.elem = opMap, c.wholeValue(t.Elem())
		}
	case reflect.Struct:
		fields, ok := jsonFields(t)
		if !ok {
			return p // opJSON
		}
		p.op = opStruct
		for _, f := range fields {
			p.fields = append(p.fields, newKeyField(t, f.index, c.wholeValue(f.typ)))
		}
		slices.SortFunc(p.fields, func(a, b keyField) int { return slices.Compare(a.index, b.index) })
	}
	return p
}

var (
	jsonMarshaler    = reflect.TypeFor[json.Marshaler]()
	gojsonMarshaler  = reflect.TypeFor[gojson.MarshalerContext]()
	textMarshaler    = reflect.TypeFor[encoding.TextMarshaler]()
	marshalerMethods = []reflect.Type{jsonMarshaler, gojsonMarshaler, textMarshaler}
)

// hasOwnJSON reports whether values of t (or pointers to them) write their own JSON.
func hasOwnJSON(t reflect.Type) bool {
	for _, m := range marshalerMethods {
		if t.Implements(m) || (t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(m)) {
			return true
		}
	}
	return t.Kind() == reflect.Interface
}

// jsonField is a member of a struct's JSON: the field that encoding/json writes under its name.
type jsonField struct {
	index []int
	typ   reflect.Type
}

// jsonFields are the members of t's JSON by name, as encoding/json finds them: exported fields under their
// tag's name (or their own), "-" left out, the fields of embedded structs without a name promoted unless a
// shallower field (or a tagged one at the same depth) has their name. ok is false for a struct embedding a
// pointer (its fields may be absent) or an unexported struct: the caller then writes the whole value's JSON.
func jsonFields(t reflect.Type) (fields map[string]jsonField, ok bool) {
	type candidate struct {
		jsonField
		tagged bool
	}
	byName := map[string][]candidate{}
	type level struct {
		typ   reflect.Type
		index []int
	}
	current, seen := []level{{typ: t}}, map[reflect.Type]bool{}
	for len(current) > 0 {
		var next []level
		found := map[string]bool{}
		for _, l := range current {
			if seen[l.typ] {
				continue
			}
			seen[l.typ] = true
			for i := range l.typ.NumField() {
				sf := l.typ.Field(i)
				if sf.Anonymous && (sf.Type.Kind() == reflect.Pointer || !sf.IsExported()) {
					return nil, false
				}
				if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				index := append(slices.Clone(l.index), i)
				if name == "" && sf.Anonymous && sf.Type.Kind() == reflect.Struct {
					next = append(next, level{typ: sf.Type, index: index})
					continue
				}
				tagged := name != ""
				if !tagged {
					name = sf.Name
				}
				if len(byName[name]) > 0 && !found[name] {
					continue // a shallower field has the name
				}
				found[name] = true
				byName[name] = append(byName[name], candidate{jsonField{index: index, typ: sf.Type}, tagged})
			}
		}
		current = next
	}
	fields = map[string]jsonField{}
	for name, cs := range byName {
		if len(cs) == 1 {
			fields[name] = cs[0].jsonField
			continue
		}
		// Several at the same depth: the one tagged, if only one is; else encoding/json writes none.
		var tagged []candidate
		for _, c := range cs {
			if c.tagged {
				tagged = append(tagged, c)
			}
		}
		if len(tagged) == 1 {
			fields[name] = tagged[0].jsonField
		}
	}
	return fields, true
}

// keyBuffers are keyOf's buffers.
var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// sum is the SHA-256 of what p writes for v.
func (p *keyPlan) sum(v reflect.Value) (decisionKey, error) {
	buf := keyBuffers.Get().(*[]byte)
	defer keyBuffers.Put(buf)
	out, err := p.write((*buf)[:0], v)
	*buf = out
	if err != nil {
		return decisionKey{}, err
	}
	return sha256.Sum256(out), nil
}

// Markers of a nil pointer, list or map, or an absent map member, and of a value present.
const (
	keyAbsent  = 0
	keyPresent = 1
)

func (p *keyPlan) write(b []byte, v reflect.Value) ([]byte, error) {
	var err error
	switch p.op {
	case opString:
		b = appendKeyString(b, v.String())
	case opBool:
		if v.Bool() {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	case opInt:
		b = binary.AppendVarint(b, v.Int())
	case opUint:
		b = binary.AppendUvarint(b, v.Uint())
	case opFloat:
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float()))
	case opPointer:
		if v.IsNil() {
			return append(b, keyAbsent), nil
		}
		return p.elem.write(append(b, keyPresent), v.Elem())
	case opStruct:
		// An addressable struct's fields that are strings, booleans or nil are written from their address
		// (writeDirect), without a reflect.Value each; most of an input's fields are.
		var base unsafe.Pointer
		if v.CanAddr() {
			base = unsafe.Pointer(v.UnsafeAddr())
		}
		for _, f := range p.fields {
			if base != nil {
				var done bool
				if b, done = f.plan.writeDirect(b, f.typ, unsafe.Add(base, f.offset)); done {
					continue
				}
			}
			fv := v.Field(f.index[0])
			for _, i := range f.index[1:] {
				fv = fv.Field(i)
			}
			if b, err = f.plan.write(b, fv); err != nil {
				return nil, err
			}
		}
	case opList:
		if v.Kind() == reflect.Slice {
			if v.IsNil() {
				return append(b, keyAbsent), nil
			}
			b = append(b, keyPresent)
		}
		b = binary.AppendUvarint(b, uint64(v.Len()))
		for i := range v.Len() {
			if b, err = p.elem.write(b, v.Index(i)); err != nil {
				return nil, err
			}
		}
	case opMap:
		if v.IsNil() {
			return append(b, keyAbsent), nil
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(x, y reflect.Value) int { return cmp.Compare(x.String(), y.String()) })
		b = binary.AppendUvarint(append(b, keyPresent), uint64(len(keys)))
		for _, k := range keys {
			if b, err = p.elem.write(appendKeyString(b, k.String()), v.MapIndex(k)); err != nil {
				return nil, err
			}
		}
	case opMembers:
		for _, m := range p.members {
			var mv reflect.Value
			if !v.IsNil() {
				mv = v.MapIndex(m.key)
			}
			if !mv.IsValid() {
				b = append(b, keyAbsent)
				continue
			}
			if b, err = m.plan.write(append(b, keyPresent), mv); err != nil {
				return nil, err
			}
		}
	default: // opJSON
		// As in the input's JSON: through a pointer where the value is addressable (a member of the input
		// struct), by value where it is not (a map's), so that the same MarshalJSON methods apply.
		x := v.Interface()
		if v.CanAddr() {
			x = v.Addr().Interface()
		}
		raw, err := gojson.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", v.Type(), err)
		}
		b = append(binary.AppendUvarint(b, uint64(len(raw))), raw...)
	}
	return b, nil
}

// writeDirect writes, as write does, the value of type t at ptr when it is a string, a boolean, or a nil
// pointer, slice or map, and reports whether it did.
func (p *keyPlan) writeDirect(b []byte, t reflect.Type, ptr unsafe.Pointer) ([]byte, bool) {
	switch p.op {
	case opString:
		return appendKeyString(b, *(*string)(ptr)), true
	case opBool:
		if *(*bool)(ptr) {
			return append(b, 1), true
		}
		return append(b, 0), true
	case opPointer, opMap:
		// A pointer or a map is one word, nil when absent.
		if *(*unsafe.Pointer)(ptr) == nil {
			return append(b, keyAbsent), true
		}
	case opList:
		// A slice is nil when its data pointer is (as reflect.Value.IsNil has it); an array never is.
		if t.Kind() == reflect.Slice && *(*unsafe.Pointer)(ptr) == nil {
			return append(b, keyAbsent), true
		}
	}
	return b, false
}

func appendKeyString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}
