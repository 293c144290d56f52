package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// dump lists the live writes as "put k=v" and "del k".
func dump(w *Writes) string {
	var out []string
	_ = w.Each(func(key, value []byte, del bool) error {
		if del {
			out = append(out, "del "+string(key))
		} else {
			out = append(out, fmt.Sprintf("put %s=%s", key, value[1:])) // past the version byte
		}
		return nil
	})
	return strings.Join(out, "; ")
}

func TestWritesSupersede(t *testing.T) {
	w := &Writes{turn: 1}
	put := func(ref *opRef, existed bool, k, v string) {
		start := w.begin()
		w.buf = append(w.buf, k...)
		w.put(ref, existed, start)
		w.buf = append(w.buf, v...)
		w.end()
	}
	del := func(ref *opRef, existed bool, k string) {
		start := w.begin()
		w.buf = append(w.buf, k...)
		w.del(ref, existed, start)
	}
	var a, b, c, d opRef
	put(&a, true, "a", "1")
	put(&a, true, "a", "2") // the last write of a key wins
	put(&b, false, "b", "1")
	del(&b, true, "b") // created and deleted in one turn: nothing
	del(&c, true, "c") // deleting what existed stays
	put(&d, false, "d", "1")
	del(&d, true, "d")
	put(&d, false, "d", "2") // re-created after all: stays, as a put
	require.Equal(t, "put a=2; del c; put d=2", dump(w))
	require.Equal(t, 3, w.Len())

	w.reset() // a new turn: earlier refs are stale
	put(&a, true, "a", "3")
	del(&a, true, "a")
	require.Equal(t, "del a", dump(w), "a existed before this turn, so its delete must reach the store")
}
