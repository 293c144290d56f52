package linearizability

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

// Histories are written in a small language, one entry per line, times in
// milliseconds:
//
//	A acquire r EX #1 [0,10] OK t=1            (or: Pending@5 ... | ? | ?<40)
//	A release r #2 [20,30] OK value=v
//	A expire r [50,60]                         (or [50,?])
//	A close r [50,60] OK
func parse(t *testing.T, text string) []Entry {
	var h []Entry
	clients := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		c, ok := clients[f[0]]
		if !ok {
			c = len(clients)
			clients[f[0]] = c
		}
		op, ok := parseOp(f[1])
		require.True(t, ok, line)
		e := Entry{Client: c, Input: spec.Input{Op: op, Session: spec.NamedSession(f[0])}, Return: Never}
		in := &e.Input
		rest := f[2:]
		if e.request() {
			in.Resource = rest[0]
		} else {
			e.Resources = strings.Split(rest[0], ",")
		}
		rest = rest[1:]
		for len(rest) > 0 {
			w := rest[0]
			rest = rest[1:]
			switch {
			case w == "try":
				in.NoQueue = true
			case strings.HasPrefix(w, "#"):
				fmt.Sscanf(w, "#%d", &in.Request)
			case strings.HasPrefix(w, "wait="):
				d, err := time.ParseDuration(w[5:])
				require.NoError(t, err)
				in.WaitTimeout = d
			case w == "delay":
				in.LockDelay = time.Second
			case strings.HasPrefix(w, "value=") && !e.Known:
				in.WriteValue, in.Value = true, []byte(w[6:])
			case strings.HasPrefix(w, "["):
				var call int64
				var ret string
				fmt.Sscanf(strings.Trim(w, "[]"), "%d,%s", &call, &ret)
				parts := strings.SplitN(strings.Trim(w, "[]"), ",", 2)
				ret = parts[1]
				e.Call = spec.Time(call * int64(time.Millisecond))
				if ret != "?" {
					var r int64
					fmt.Sscanf(ret, "%d", &r)
					e.Known, e.Return = true, spec.Time(r*int64(time.Millisecond))
				}
			case strings.HasPrefix(w, "Pending@"):
				var p int64
				fmt.Sscanf(w, "Pending@%d", &p)
				e.Queued, e.Pending = true, spec.Time(p*int64(time.Millisecond))
			case strings.HasPrefix(w, "?<"):
				var u int64
				fmt.Sscanf(w, "?<%d", &u)
				e.Known, e.Return = false, spec.Time(u*int64(time.Millisecond))
			case w == "?":
				e.Known = false
			case strings.HasPrefix(w, "t="):
				fmt.Sscanf(w, "t=%d", &e.Output.Token)
			case strings.HasPrefix(w, "value="):
				e.Output.Value = []byte(w[6:])
			case w == "invalid":
				e.Output.ValueValid = false
			default:
				if m, err := spec.ParseMode(w); err == nil && e.Call == 0 && !e.Known {
					in.Mode = m
					continue
				}
				if m, err := spec.ParseMode(w); err == nil {
					e.Output.Mode = m
					continue
				}
				code, ok := spec.ParseCode(w)
				require.True(t, ok, "word %q in %q", w, line)
				e.Output.Code = code
				e.Output.ValueValid = code == spec.OK && (op == spec.OpAcquire || op == spec.OpConvert)
			}
		}
		h = append(h, e)
	}
	return h
}

func check(t *testing.T, text string) Report {
	t.Helper()
	return Check(parse(t, text), 10*time.Second)
}

func TestLinearizable(t *testing.T) {
	for name, text := range map[string]string{
		"handoff": `
			A acquire r EX #1 [0,10] OK EX t=1
			A release r #2 [20,30] OK
			B acquire r EX #1 [25,40] OK EX t=2`,
		"queued then granted on release": `
			A acquire r EX #1 [0,10] OK EX t=1
			B acquire r EX #1 wait=1s [12,50] Pending@15 OK EX t=2
			A release r #2 [20,30] OK`,
		"shared": `
			A acquire r PR #1 [0,10] OK PR t=1
			B acquire r CR #1 [5,10] OK CR t=2
			C acquire r EX try #1 [12,20] WouldBlock`,
		"value block": `
			C acquire r NL #1 [0,10] OK NL t=1
			A acquire r EX #1 [0,10] OK EX t=2
			A release r #2 value=v1 [20,30] OK
			B acquire r PR #1 [31,40] OK PR t=3 value=v1`,
		"value block dropped with the resource": `
			A acquire r EX #1 [0,10] OK EX t=2
			A release r #2 value=v1 [20,30] OK
			B acquire r PR #1 [31,40] OK PR t=3`,
		"expiry frees and invalidates": `
			A acquire r EX #1 [0,10] OK EX t=1
			A expire r [50,60]
			B acquire r EX #1 wait=1s [20,70] Pending@22 OK EX t=2 invalid`,
		"unknown outcome that took effect": `
			A acquire r EX #1 [0,?] ?<100
			A expire r [50,100]
			B acquire r PR try #1 [20,30] WouldBlock
			B acquire r PR #2 wait=1s [40,110] Pending@42 OK PR t=3 invalid`,
		"unknown outcome that never did": `
			A acquire r EX #1 [0,?] ?<100
			A expire r [50,100]
			B acquire r PR #1 [20,30] OK PR t=3`,
		"timeout after the wait": `
			A acquire r EX #1 [0,10] OK EX t=1
			B acquire r EX #1 wait=20ms [5,40] Pending@8 Timeout
			C acquire r PR #1 wait=1s [12,60] Pending@15 OK PR t=2
			A release r #2 [50,55] OK`,
		"deadlock on conversion is allowed": `
			A acquire r PR #1 [0,10] OK PR t=1
			A convert r EX #2 wait=1s [20,30] Deadlock`,
		"close cancels the queued request": `
			A acquire r EX #1 [0,10] OK EX t=1
			B acquire r EX #1 wait=1s [12,40] Pending@14 Cancelled
			B close r [30,35] OK
			A release r #2 [36,38] OK`,
	} {
		t.Run(name, func(t *testing.T) {
			v := check(t, text)
			require.True(t, v.OK(), "%s", v.String())
		})
	}
}

func TestNotLinearizable(t *testing.T) {
	for name, text := range map[string]string{
		"two exclusive holders": `
			A acquire r EX #1 [0,10] OK EX t=1
			B acquire r EX #1 [20,30] OK EX t=2`,
		"overtaking a waiter": `
			A acquire r PR #1 [0,10] OK PR t=1
			B acquire r EX #1 wait=1s [12,100] Pending@15 ?
			C acquire r PR try #1 [20,25] OK PR t=3`,
		"token not above an earlier one": `
			A acquire r EX #1 [0,10] OK EX t=5
			A release r #2 [20,30] OK
			B acquire r EX #1 [40,50] OK EX t=4`,
		"stale value block": `
			C acquire r NL #1 [0,10] OK NL t=1
			A acquire r EX #1 [0,10] OK EX t=1
			A release r #2 value=v1 [20,30] OK
			B acquire r PR #1 [31,40] OK PR t=2 value=v0`,
		"granted before the release": `
			A acquire r EX #1 [0,10] OK EX t=1
			B acquire r EX #1 wait=1s [12,18] Pending@14 OK EX t=2
			A release r #2 [20,30] OK`,
		"retry applied twice": `
			A acquire r EX #1 [0,10] OK EX t=1
			A release r #2 [20,30] NotHeld`,
	} {
		t.Run(name, func(t *testing.T) {
			v := check(t, text)
			require.Equal(t, Illegal, v.Verdict, "%s", v.String())
			require.Equal(t, []string{"r"}, v.Illegal)
			var html bytes.Buffer
			require.NoError(t, v.WriteHTML(&html, time.Second))
			require.Contains(t, html.String(), "<html")
		})
	}
}

func TestProblemsFromTimes(t *testing.T) {
	v := check(t, `
		A acquire r EX #1 [0,10] OK EX t=1
		A expire r [5000,100]`)
	require.False(t, v.OK())
	require.Contains(t, v.Problems[0], "before its lease could have run out")
	v = check(t, `
		A acquire r EX #1 [0,10] OK EX t=1
		B acquire r EX #1 wait=1s [12,40] Pending@14 Timeout`)
	require.False(t, v.OK())
	require.Contains(t, v.Problems[0], "before its wait timeout")
}

// TestMalformedEntries: Check judges entries built in Go, not only those
// read from a file: an unknown outcome whose Return was left zero (Never
// was meant) is a problem, not a request that took effect at once.
func TestMalformedEntries(t *testing.T) {
	h := parse(t, `A acquire r EX #1 [10,?] ?`)
	h[0].Return = 0
	v := Check(h, time.Second)
	require.False(t, v.OK())
	require.Contains(t, strings.Join(v.Problems, "; "), "returns before its call")
	h = parse(t, `A acquire r EX #1 [10,?] ?`)
	h[0].Input.Op = spec.OpKeepAlive
	v = Check(h, time.Second)
	require.Contains(t, strings.Join(v.Problems, "; "), "not recorded in a history")
}

func TestPartitionedByResource(t *testing.T) {
	v := check(t, `
		A acquire r EX #1 [0,10] OK EX t=1
		B acquire q EX #1 [0,10] OK EX t=2
		B acquire r EX #2 [20,30] OK EX t=3
		A close r [40,50] OK`)
	require.Equal(t, Illegal, v.Verdict)
	require.Equal(t, []string{"r"}, v.Illegal)
	require.Equal(t, 2, v.Resources)
}

// TestTimeoutIsUnknown: a check that runs out of time is Unknown and fails.
func TestTimeoutIsUnknown(t *testing.T) {
	// Many concurrent requests with unknown outcomes: a large search space.
	var b strings.Builder
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&b, "S%d acquire r CR #1 [0,?] ?\n", i)
		fmt.Fprintf(&b, "S%d convert r PR #2 wait=1s [1,?] ?\n", i)
	}
	fmt.Fprintf(&b, "Z acquire r EX #1 [5,6] OK EX t=1\n")
	v := Check(parse(t, b.String()), time.Millisecond)
	require.Equal(t, Unknown, v.Verdict, "%s", v.String())
	require.False(t, v.OK())
}

func TestHistoryJSONRoundTrip(t *testing.T) {
	h := parse(t, `
		A acquire r EX #1 wait=1s [0,10] Pending@5 OK EX t=1
		A release r #2 value=v1 [20,30] OK
		A convert r PR #3 [0,?] ?<100
		A expire r,q [50,?]
		A close r,q [60,70] SessionExpired`)
	var buf bytes.Buffer
	require.NoError(t, WriteHistory(&buf, h))
	back, err := ReadHistory(&buf)
	require.NoError(t, err)
	require.Equal(t, h, back)
	_, err = ReadHistory(strings.NewReader(`{"client":0,"session":"00","op":"acquire"}`))
	require.Error(t, err)
}
