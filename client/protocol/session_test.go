package protocol

import (
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

func TestLeaseFor(t *testing.T) {
	for _, tc := range []struct {
		ttl    time.Duration
		ppm    int64
		margin time.Duration
		want   time.Duration
	}{
		{10 * time.Second, 0, 0, 10 * time.Second},
		{10 * time.Second, 0, time.Second, 9 * time.Second},
		// 10s * 999000/1001000
		{10 * time.Second, 1000, 0, 9980019980 * time.Nanosecond},
		{time.Second, 100_000, 0, 818181818 * time.Nanosecond},
		// no overflow near the top of the range
		{time.Duration(1<<62) + 12345, 1, 0, time.Duration(1<<62) + 12345 - 9223372036854775807/2/1000001 - 1},
	} {
		got := LeaseFor(tc.ttl, tc.ppm, tc.margin)
		if tc.ttl > time.Hour {
			// a factor of (1-r)/(1+r) to within a nanosecond per 2^30
			require.InDelta(t, float64(tc.ttl)*(1e6-1)/(1e6+1), float64(got), 1<<33, "ttl %v", tc.ttl)
			continue
		}
		require.Equal(t, tc.want, got, "ttl %v ppm %d margin %v", tc.ttl, tc.ppm, tc.margin)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{TTL: 4 * time.Second}.withDefaults()
	require.NoError(t, err)
	require.Equal(t, time.Second, c.KeepAliveInterval)
	require.Equal(t, 500*time.Millisecond, c.RetryInterval)
	require.Equal(t, 2*time.Second, c.PollInterval)
	require.Equal(t, int64(DefaultDriftPPM), c.DriftPPM)
	_, err = Config{}.withDefaults()
	require.Error(t, err)
	_, err = Config{TTL: time.Second, KeepAliveInterval: time.Second}.withDefaults()
	require.ErrorContains(t, err, "must exceed KeepAliveInterval")
	_, err = Config{TTL: time.Second, DriftPPM: driftPPMMax + 1}.withDefaults()
	require.Error(t, err)
}

// harness drives one session by hand: the test plays the node.
type harness struct {
	t   *testing.T
	s   *Session
	now spec.Time
}

func newHarness(t *testing.T, cfg Config) *harness {
	s, err := NewSession(spec.NamedSession("c1"), cfg, 0)
	require.NoError(t, err)
	return &harness{t: t, s: s}
}

func (h *harness) at(d time.Duration) { h.now = spec.Time(d) }

func (h *harness) sends() []Send { return append([]Send(nil), h.s.Sends(h.now)...) }

func (h *harness) one(op spec.Op) Send {
	ss := h.sends()
	require.Len(h.t, ss, 1, "sends at %v: %+v", h.now, ss)
	require.Equal(h.t, op, ss[0].Input.Op)
	return ss[0]
}

func (h *harness) open() {
	o := h.one(spec.OpOpen)
	h.s.Reply(h.now, o.Call, spec.Result{})
	require.Equal(h.t, []Update{{Kind: Opened}}, h.s.Updates())
}

var cfg = Config{TTL: 4 * time.Second, DriftPPM: -1, Margin: -1}

func TestLeaseCountsFromSendTime(t *testing.T) {
	h := newHarness(t, cfg)
	h.at(10 * time.Millisecond) // the open goes out at 10ms
	o := h.one(spec.OpOpen)
	h.at(300 * time.Millisecond) // and its answer takes 290ms
	h.s.Reply(h.now, o.Call, spec.Result{})
	d, ok := h.s.LeaseDeadline()
	require.True(t, ok)
	require.Equal(t, spec.Time(10*time.Millisecond+4*time.Second), d, "from the send of the open")
	// The keepalive is due KeepAliveInterval after the lease base.
	next, _ := h.s.NextDeadline()
	require.Equal(t, spec.Time(10*time.Millisecond+time.Second), next)
	h.at(10*time.Millisecond + time.Second)
	ka := h.one(spec.OpKeepAlive)
	h.at(3 * time.Second)
	h.s.Reply(h.now, ka.Call, spec.Result{})
	d, _ = h.s.LeaseDeadline()
	require.Equal(t, spec.Time(10*time.Millisecond+5*time.Second), d, "from the keepalive's send, not its answer")
}

func TestLeaseShrunkByDrift(t *testing.T) {
	h := newHarness(t, Config{TTL: 10 * time.Second, DriftPPM: 1000, Margin: 100 * time.Millisecond})
	h.open()
	d, _ := h.s.LeaseDeadline()
	require.Equal(t, spec.Time(9980019980-100_000_000), d)
}

func TestRetrySameRequestID(t *testing.T) {
	h := newHarness(t, cfg)
	h.open()
	id, err := h.s.Acquire(h.now, "r", spec.EX, AcquireOptions{WaitTimeout: time.Second})
	require.NoError(t, err)
	first := h.one(spec.OpAcquire)
	require.Equal(t, id, first.Input.Request)
	require.Empty(t, h.sends(), "nothing more before RetryInterval")
	h.at(500 * time.Millisecond)
	second := h.one(spec.OpAcquire)
	require.Equal(t, first.Input, second.Input, "a retry is the same input")
	require.NotEqual(t, first.Call, second.Call)
	// The late answer to the first call counts.
	h.s.Reply(h.now, first.Call, spec.Result{Code: spec.OK, Mode: spec.EX, Token: 7, ValueValid: true})
	u := h.s.Updates()
	require.Len(t, u, 1)
	require.Equal(t, Done, u[0].Kind)
	info, held := h.s.Holds(h.now, "r")
	require.True(t, held)
	require.Equal(t, spec.Token(7), info.Token)
	require.Equal(t, id, info.Grant)
	// The second call's answer is now ignored, and the next request acks.
	h.s.Reply(h.now, second.Call, spec.Result{Code: spec.OK, Mode: spec.EX, Token: 7})
	require.Empty(t, h.s.Updates())
	_, err = h.s.Release(h.now, "r", ReleaseOptions{})
	require.NoError(t, err)
	rel := h.one(spec.OpRelease)
	require.Equal(t, id, rel.Input.Acked)
	_, held = h.s.Holds(h.now, "r")
	require.False(t, held, "a lock stops being held when released, before the answer")
}

func TestReconnectResendsAtOnce(t *testing.T) {
	h := newHarness(t, cfg)
	h.open()
	_, err := h.s.Acquire(h.now, "r", spec.PR, AcquireOptions{NoQueue: true})
	require.NoError(t, err)
	first := h.one(spec.OpAcquire)
	h.at(100 * time.Millisecond)
	h.s.Disconnected(h.now)
	require.Empty(t, h.sends(), "nothing is sent while disconnected")
	_, _ = h.s.Holds(h.now, "r")
	h.at(200 * time.Millisecond)
	h.s.Connected(h.now)
	ss := h.sends()
	require.Len(t, ss, 2)
	require.Equal(t, spec.OpKeepAlive, ss[0].Input.Op)
	require.Equal(t, first.Input, ss[1].Input)
}

func TestPollQueuedRequest(t *testing.T) {
	h := newHarness(t, cfg)
	h.open()
	id, _ := h.s.Acquire(h.now, "r", spec.EX, AcquireOptions{WaitTimeout: 10 * time.Second})
	a := h.one(spec.OpAcquire)
	h.s.Reply(h.now, a.Call, spec.Result{Pending: true})
	require.Equal(t, []Update{{Kind: Queued, Request: id, Op: spec.OpAcquire, Resource: "r"}}, h.s.Updates())
	require.Equal(t, Waiting, h.s.Lock(h.now, "r").State)
	h.at(time.Second) // keepalive only: the poll waits for PollInterval (2s)
	ss := h.sends()
	require.Len(t, ss, 1)
	h.s.Reply(h.now, ss[0].Call, spec.Result{})
	h.at(2 * time.Second)
	ss = h.sends()
	require.Len(t, ss, 2) // a keepalive and the poll
	p := ss[1]
	require.Equal(t, spec.OpAcquire, p.Input.Op)
	// The Completed event was lost; the poll returns the recorded outcome.
	h.s.Reply(h.now, p.Call, spec.Result{Code: spec.OK, Mode: spec.EX, Token: 3})
	u := h.s.Updates()
	require.Len(t, u, 1)
	require.Equal(t, spec.Token(3), u[0].Result.Token)
	require.Equal(t, Held, h.s.Lock(h.now, "r").State)
}

func TestLostWhenLeaseRunsOut(t *testing.T) {
	h := newHarness(t, cfg)
	h.open()
	_, _ = h.s.Acquire(h.now, "r", spec.EX, AcquireOptions{NoQueue: true})
	a := h.one(spec.OpAcquire)
	h.s.Reply(h.now, a.Call, spec.Result{Code: spec.OK, Mode: spec.EX, Token: 1})
	h.s.Updates()
	id, _ := h.s.Acquire(h.now, "q", spec.EX, AcquireOptions{NoQueue: true})
	h.one(spec.OpAcquire) // never answered
	require.Equal(t, Held, h.s.Lock(h.now, "r").State)
	h.at(3 * time.Second) // no keepalive answered: at risk in the last TTL/3
	require.Equal(t, AtRisk, h.s.Lock(h.now, "r").State)
	var kas []Send
	for _, s := range h.sends() {
		kas = append(kas, s)
	}
	h.at(4 * time.Second)
	h.s.Tick(h.now)
	require.Equal(t, StatusLost, h.s.Status(h.now))
	require.Equal(t, Lost, h.s.Lock(h.now, "r").State)
	u := h.s.Updates()
	require.Len(t, u, 2)
	require.Equal(t, Update{Kind: Done, Request: id, Op: spec.OpAcquire, Resource: "q", Unknown: true,
		Result: spec.Refuse(spec.SessionExpired, DetailUnknownOutcome)}, u[0])
	require.Equal(t, SessionLost, u[1].Kind)
	require.False(t, u[1].ByNode)
	// Lost is terminal: a late keepalive answer changes nothing.
	for _, s := range kas {
		h.s.Reply(h.now, s.Call, spec.Result{})
	}
	require.Equal(t, StatusLost, h.s.Status(h.now))
	require.Empty(t, h.sends())
	// Close still goes out, until answered.
	require.NoError(t, h.s.Close(h.now))
	c := h.one(spec.OpClose)
	h.at(4*time.Second + 500*time.Millisecond)
	h.one(spec.OpClose)
	h.s.Reply(h.now, c.Call, spec.Result{})
	require.Equal(t, StatusClosed, h.s.Status(h.now))
	require.Equal(t, SessionClosed, h.s.Updates()[0].Kind)
}

func TestExpiredEventLosesSession(t *testing.T) {
	h := newHarness(t, cfg)
	h.open()
	h.s.Event(h.now, spec.Event{Kind: spec.Expired, Session: h.s.ID()})
	u := h.s.Updates()
	require.Equal(t, []Update{{Kind: SessionLost, ByNode: true,
		Result: spec.Refuse(spec.SessionExpired, spec.DetailSessionExpired)}}, u)
	_, err := h.s.Acquire(h.now, "r", spec.EX, AcquireOptions{NoQueue: true})
	require.ErrorIs(t, err, ErrNotOpen)
}

func TestAcknowledgesContiguousOutcomes(t *testing.T) {
	h := newHarness(t, cfg)
	h.open()
	id1, _ := h.s.Acquire(h.now, "a", spec.PR, AcquireOptions{NoQueue: true})
	id2, _ := h.s.Acquire(h.now, "b", spec.PR, AcquireOptions{NoQueue: true})
	ss := h.sends()
	require.Len(t, ss, 2)
	h.s.Reply(h.now, ss[1].Call, spec.Result{Code: spec.OK, Mode: spec.PR, Token: 2})
	_, _ = h.s.Acquire(h.now, "c", spec.PR, AcquireOptions{NoQueue: true})
	require.Equal(t, spec.RequestID(0), h.one(spec.OpAcquire).Input.Acked, "%d is not answered yet", id1)
	h.s.Reply(h.now, ss[0].Call, spec.Result{Code: spec.WouldBlock})
	_, _ = h.s.Acquire(h.now, "d", spec.PR, AcquireOptions{NoQueue: true})
	require.Equal(t, id2, h.one(spec.OpAcquire).Input.Acked)
}

func TestConvertBeliefs(t *testing.T) {
	h := newHarness(t, cfg)
	h.open()
	_, _ = h.s.Acquire(h.now, "r", spec.PW, AcquireOptions{NoQueue: true})
	a := h.one(spec.OpAcquire)
	h.s.Reply(h.now, a.Call, spec.Result{Code: spec.OK, Mode: spec.PW, Token: 4})
	// Down: believed lower at once.
	_, err := h.s.Convert(h.now, "r", spec.CR, ConvertOptions{NoQueue: true})
	require.NoError(t, err)
	info, _ := h.s.Holds(h.now, "r")
	require.Equal(t, spec.CR, info.Mode)
	_, err = h.s.Convert(h.now, "r", spec.EX, ConvertOptions{NoQueue: true})
	require.ErrorIs(t, err, ErrBusy)
	d := h.one(spec.OpConvert)
	h.s.Reply(h.now, d.Call, spec.Result{Code: spec.OK, Mode: spec.CR, Token: 4})
	// Up: believed higher only when granted, with the new token and grant.
	up, _ := h.s.Convert(h.now, "r", spec.EX, ConvertOptions{WaitTimeout: time.Second})
	info, _ = h.s.Holds(h.now, "r")
	require.Equal(t, spec.CR, info.Mode)
	u := h.one(spec.OpConvert)
	h.s.Reply(h.now, u.Call, spec.Result{Code: spec.OK, Mode: spec.EX, Token: 9})
	info, _ = h.s.Holds(h.now, "r")
	require.Equal(t, spec.EX, info.Mode)
	require.Equal(t, up, info.Grant)
	// Down to PR, then sideways to CW: believed CR until answered, and PR
	// again when refused.
	_, _ = h.s.Convert(h.now, "r", spec.PR, ConvertOptions{NoQueue: true})
	d = h.one(spec.OpConvert)
	h.s.Reply(h.now, d.Call, spec.Result{Code: spec.OK, Mode: spec.PR, Token: 9})
	_, _ = h.s.Convert(h.now, "r", spec.CW, ConvertOptions{NoQueue: true})
	info, _ = h.s.Holds(h.now, "r")
	require.Equal(t, spec.CR, info.Mode)
	side := h.one(spec.OpConvert)
	h.s.Reply(h.now, side.Call, spec.Result{Code: spec.WouldBlock})
	info, _ = h.s.Holds(h.now, "r")
	require.Equal(t, spec.PR, info.Mode)
}

func TestMeet(t *testing.T) {
	for _, tc := range []struct{ a, b, want spec.Mode }{
		{spec.PR, spec.CW, spec.CR}, {spec.EX, spec.PR, spec.PR}, {spec.CR, spec.EX, spec.CR},
		{spec.PW, spec.CW, spec.CW}, {spec.NL, spec.EX, spec.NL}, {spec.PW, spec.PW, spec.PW},
	} {
		require.Equal(t, tc.want, meet(tc.a, tc.b), "meet(%v, %v)", tc.a, tc.b)
		require.Equal(t, tc.want, meet(tc.b, tc.a))
	}
}
