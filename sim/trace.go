package sim

import (
	"bufio"
	"io"
	"strconv"

	"github.com/bouncer-dlm/bouncer/spec"
)

// tracer writes the NDJSON trace: one JSON object per line, its fields in a
// fixed order, so that a seed's trace is the same byte for byte every time.
// A nil tracer writes nothing; callers test for nil before building costly
// fields.
type tracer struct {
	w   *bufio.Writer
	buf []byte
	err error
}

func newTracer(w io.Writer) *tracer {
	if w == nil {
		return nil
	}
	return &tracer{w: bufio.NewWriterSize(w, 64<<10)}
}

// ev starts a line for an event at true time t.
func (t *tracer) ev(at spec.Time, kind string) *tracer {
	if t == nil {
		return nil
	}
	t.buf = append(t.buf[:0], `{"t":`...)
	t.buf = strconv.AppendInt(t.buf, int64(at), 10)
	t.buf = append(t.buf, `,"ev":`...)
	t.buf = strconv.AppendQuote(t.buf, kind)
	return t
}

func (t *tracer) key(k string) {
	t.buf = append(t.buf, ',', '"')
	t.buf = append(t.buf, k...)
	t.buf = append(t.buf, '"', ':')
}

func (t *tracer) int(k string, v int64) *tracer {
	if t != nil {
		t.key(k)
		t.buf = strconv.AppendInt(t.buf, v, 10)
	}
	return t
}

func (t *tracer) str(k, v string) *tracer {
	if t != nil {
		t.key(k)
		t.buf = appendJSONString(t.buf, v)
	}
	return t
}

func (t *tracer) bool(k string, v bool) *tracer {
	if t != nil {
		t.key(k)
		t.buf = strconv.AppendBool(t.buf, v)
	}
	return t
}

func (t *tracer) end() {
	if t == nil || t.err != nil {
		return
	}
	t.buf = append(t.buf, '}', '\n')
	_, t.err = t.w.Write(t.buf)
}

func (t *tracer) flush() error {
	if t == nil {
		return nil
	}
	if t.err != nil {
		return t.err
	}
	return t.w.Flush()
}

// appendJSONString appends s as a JSON string (ASCII escapes only, so the
// output does not depend on anything but s).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
