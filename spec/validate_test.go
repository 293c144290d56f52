package spec_test

import (
	"testing"
	"time"

	"github.com/bouncer-dlm/bouncer/spec"
	"github.com/stretchr/testify/require"
)

func TestValidateNamesTheFieldAndTheBound(t *testing.T) {
	lim := spec.DefaultLimits()
	s := spec.NamedSession("s")
	ok := spec.Input{Op: spec.OpAcquire, Session: s, Request: 2, Acked: 1, Resource: "r", Mode: spec.EX, WaitTimeout: time.Second}
	cases := []struct {
		name   string
		change func(*spec.Input)
		code   spec.Code
		want   string
	}{
		{"op", func(in *spec.Input) { in.Op = 0 }, spec.InvalidArgument, "op:"},
		{"session", func(in *spec.Input) { in.Session = spec.SessionID{} }, spec.InvalidArgument, "session:"},
		{"request", func(in *spec.Input) { in.Request = 0 }, spec.InvalidArgument, "request:"},
		{"acked", func(in *spec.Input) { in.Acked = 2 }, spec.InvalidArgument, "acked:"},
		{"empty name", func(in *spec.Input) { in.Resource = "" }, spec.InvalidArgument, "resource:"},
		{"long name", func(in *spec.Input) { in.Resource = string(make([]byte, 257)) }, spec.LimitExceeded, "NameBytesMax 256"},
		{"mode", func(in *spec.Input) { in.Mode = 6 }, spec.InvalidArgument, "mode:"},
		{"wait", func(in *spec.Input) { in.WaitTimeout = 0 }, spec.InvalidArgument, "WaitTimeoutMin"},
		{"long wait", func(in *spec.Input) { in.WaitTimeout = 25 * time.Hour }, spec.InvalidArgument, "WaitTimeoutMax"},
		{"try with wait", func(in *spec.Input) { in.NoQueue = true }, spec.InvalidArgument, "no_queue"},
		{"lock delay", func(in *spec.Input) { in.LockDelay = 2 * time.Minute }, spec.InvalidArgument, "LockDelayMax"},
		{"acquire value", func(in *spec.Input) { in.WriteValue = true }, spec.InvalidArgument, "value:"},
		{"long value", func(in *spec.Input) {
			in.Op, in.WriteValue, in.Value = spec.OpRelease, true, make([]byte, 1025)
		}, spec.LimitExceeded, "ValueBytesMax 1024"},
		{"ttl", func(in *spec.Input) { in.Op, in.TTL = spec.OpOpen, 0 }, spec.InvalidArgument, "TTLMin"},
	}
	r, valid := spec.Validate(&ok, &lim)
	require.True(t, valid, r.Detail)
	for _, tc := range cases {
		in := ok
		tc.change(&in)
		r, valid := spec.Validate(&in, &lim)
		require.False(t, valid, tc.name)
		require.Equal(t, tc.code, r.Code, tc.name)
		require.Contains(t, r.Detail, tc.want, tc.name)
	}
}

func TestLimitsValidate(t *testing.T) {
	require.NoError(t, spec.DefaultLimits().Validate())
	lim := spec.DefaultLimits()
	lim.WaitersPerResourceMax = 0
	require.ErrorContains(t, lim.Validate(), "WaitersPerResourceMax must be positive", "zero never means unlimited")
	lim = spec.DefaultLimits()
	lim.TTLMin = 2 * lim.TTLMax
	require.ErrorContains(t, lim.Validate(), "TTLMin")
}
