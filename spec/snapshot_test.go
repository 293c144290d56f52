package spec_test

import (
	"reflect"
	"testing"

	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/bouncer-dlm/bouncer/spec/spectest"
	"pgregory.net/rapid"
)

// TestMatchesIsStateEqual drives the model with random workloads and
// requires Model.Matches to agree with State().Equal on the model's own
// state and on every variant of it that changes one field, drops,
// duplicates or swaps elements of one list, or grows one value block.
func TestMatchesIsStateEqual(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lim := spectest.SmallLimits()
		m := spec.NewModel(lim)
		g := spectest.NewGen()
		for range rapid.IntRange(1, 40).Draw(t, "steps") {
			switch rapid.IntRange(0, 9).Draw(t, "what") {
			case 0:
				m.Tick(g.Advance(t))
			case 1:
				now := g.Advance(t)
				m.Recover(now)
				m.Tick(now)
			default:
				in := g.Input(t)
				r, ev := m.Step(g.Advance(t), in)
				g.Observe(in, r, ev)
			}
			st := m.State()
			if !m.Matches(&st) {
				t.Fatalf("the model does not match its own state:\n%s", st.String())
			}
			for k := 0; ; k++ {
				v, what, ok := variant(&st, k)
				if !ok {
					break
				}
				if got, want := m.Matches(&v), st.Equal(&v); got != want {
					t.Fatalf("%s: Matches %v, Equal %v\nstate:\n%s\nvariant:\n%s", what, got, want, st.String(), v.String())
				}
			}
		}
	})
}

// variant returns a deep copy of st with its k-th change applied, and what
// the change was; ok is false past the last change.
func variant(st *spec.State, k int) (v spec.State, what string, ok bool) {
	deepCopy(reflect.ValueOf(&v).Elem(), reflect.ValueOf(st).Elem())
	n := 0
	var walk func(x reflect.Value, path string) bool
	change := func(path string, f func()) bool {
		if n == k {
			f()
			what = path
			return true
		}
		n++
		return false
	}
	walk = func(x reflect.Value, path string) bool {
		switch x.Kind() {
		case reflect.Struct:
			for i := range x.NumField() {
				if walk(x.Field(i), path+"."+x.Type().Field(i).Name) {
					return true
				}
			}
			return false
		case reflect.Slice:
			if x.Type().Elem().Kind() == reflect.Uint8 {
				return change(path+" grown", func() { x.Set(reflect.Append(x, reflect.ValueOf(byte('x')))) })
			}
			l := x.Len()
			if l > 0 && (change(path+" shortened", func() { x.SetLen(l - 1) }) ||
				change(path+" first duplicated", func() { x.Set(reflect.Append(x, x.Index(0))) })) {
				return true
			}
			if l > 1 && change(path+" first two swapped", func() { reflect.Swapper(x.Interface())(0, 1) }) {
				return true
			}
			for i := range l {
				if walk(x.Index(i), path+"["+string(rune('0'+i%10))+"]") {
					return true
				}
			}
			return false
		case reflect.Array:
			return change(path+" last byte flipped", func() { x.Index(x.Len() - 1).SetUint(x.Index(x.Len()-1).Uint() ^ 1) })
		case reflect.Bool:
			return change(path+" negated", func() { x.SetBool(!x.Bool()) })
		case reflect.String:
			return change(path+" extended", func() { x.SetString(x.String() + "x") })
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return change(path+" incremented", func() { x.SetInt(x.Int() + 1) })
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			return change(path+" incremented", func() { x.SetUint(x.Uint() + 1) })
		}
		panic("variant: unexpected kind " + x.Kind().String() + " at " + path)
	}
	return v, what, walk(reflect.ValueOf(&v).Elem(), "state")
}

// deepCopy sets dst to a copy of src that shares no slice with it.
func deepCopy(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Slice:
		if src.IsNil() {
			dst.Set(reflect.Zero(src.Type()))
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			deepCopy(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.Struct:
		for i := range src.NumField() {
			deepCopy(dst.Field(i), src.Field(i))
		}
	default:
		dst.Set(src)
	}
}
