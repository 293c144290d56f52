package spec

import (
	"reflect"
	"testing"
)

// TestEqualNoticesEveryField changes each field of each compared struct in
// turn, on a copy of a value whose every field is set, and requires Equal to
// notice: a field added to one of these structs fails here until Equal
// compares it.
func TestEqualNoticesEveryField(t *testing.T) {
	for _, v := range []any{State{}, SessionState{}, Reply{}, ResourceState{}, LockState{}, Tombstone{}, Result{}, Event{}} {
		typ := reflect.TypeOf(v)
		t.Run(typ.Name(), func(t *testing.T) {
			a := filled(typ)
			if !callEqual(a, filled(typ)) {
				t.Fatalf("%v: two equal values are not Equal", typ)
			}
			for i := range typ.NumField() {
				b := filled(typ)
				f := b.Elem().Field(i)
				mutate(f)
				if callEqual(a, b) {
					t.Errorf("%v.Equal ignores field %s", typ, typ.Field(i).Name)
				}
				if f.Kind() == reflect.Slice && f.Type().Elem().Kind() != reflect.Uint8 {
					b = filled(typ)
					f = b.Elem().Field(i)
					f.Set(reflect.Append(f, f.Index(0)))
					if callEqual(a, b) {
						t.Errorf("%v.Equal ignores the length of %s", typ, typ.Field(i).Name)
					}
				}
			}
		})
	}
}

// TestEqualValueBlock: a nil value block equals an empty one; any byte
// differs.
func TestEqualValueBlock(t *testing.T) {
	r1, r2 := Result{Code: OK, Value: nil}, Result{Code: OK, Value: []byte{}}
	if !r1.Equal(&r2) {
		t.Error("a nil value block differs from an empty one in Result")
	}
	s1, s2 := ResourceState{Name: "a"}, ResourceState{Name: "a", Value: []byte{}}
	if !s1.Equal(&s2) {
		t.Error("a nil value block differs from an empty one in ResourceState")
	}
	e1, e2 := []Event{{Kind: Completed, Result: r1}}, []Event{{Kind: Completed, Result: r2}}
	if !EventsEqual(e1, e2) || !EventsEqual(nil, []Event{}) {
		t.Error("EventsEqual tells nil from empty")
	}
	r2.Value = []byte{0}
	if r1.Equal(&r2) {
		t.Error("a value block of one zero byte equals an empty one")
	}
}

// filled returns a pointer to a new T whose every field is set to a
// non-zero value (one element in each slice).
func filled(typ reflect.Type) reflect.Value {
	p := reflect.New(typ)
	fill(p.Elem())
	return p
}

func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.String:
		v.SetString("a")
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i))
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i))
		}
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

// mutate changes v, a field of a filled value, in its first leaf.
func mutate(v reflect.Value) {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Array, reflect.Slice:
		mutate(v.Index(0))
	case reflect.Struct:
		mutate(v.Field(0))
	default:
		panic("mutate: unhandled kind " + v.Kind().String())
	}
}

// callEqual calls a.Equal(b) for pointers a and b, whichever receiver and
// argument Equal takes.
func callEqual(a, b reflect.Value) bool {
	m := a.MethodByName("Equal")
	arg := b
	if m.Type().In(0).Kind() != reflect.Pointer {
		arg = b.Elem()
	}
	return m.Call([]reflect.Value{arg})[0].Bool()
}
