package peer

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func msg(typ raftpb.MessageType, from, to, index uint64) *raftpb.Message {
	return &raftpb.Message{Type: typ.Enum(), From: proto.Uint64(from), To: proto.Uint64(to),
		Term: proto.Uint64(1), Index: proto.Uint64(index)}
}

func TestFrameRoundTrip(t *testing.T) {
	var bufs [][]byte
	var want []*raftpb.Message
	for i := range 5 {
		m := msg(raftpb.MsgApp, 1, 2, uint64(i))
		m.Entries = []*raftpb.Entry{{Index: proto.Uint64(uint64(i)), Data: bytes.Repeat([]byte{byte(i)}, i*100)}}
		b, err := proto.Marshal(m)
		require.NoError(t, err)
		bufs = append(bufs, b)
		want = append(want, m)
	}
	got, err := decodeFrame(encodeFrame(bufs), 5, 1<<20)
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for i := range want {
		require.True(t, proto.Equal(want[i], got[i]), "message %d", i)
	}
}

func TestFrameRefusesGarbage(t *testing.T) {
	good, err := proto.Marshal(msg(raftpb.MsgHeartbeat, 1, 2, 0))
	require.NoError(t, err)
	frame := encodeFrame([][]byte{good, good})
	for name, b := range map[string][]byte{
		"empty":          {},
		"version":        append([]byte{0x02}, frame[1:]...),
		"zero count":     {frameVersion, 0},
		"too many":       encodeFrame([][]byte{good, good, good}),
		"truncated":      frame[:len(frame)-1],
		"trailing":       append(append([]byte{}, frame...), 0),
		"huge length":    {frameVersion, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"not a protobuf": encodeFrame([][]byte{{0xff, 0xff, 0xff}}),
		"text":           []byte("GET / HTTP/1.1\r\n\r\n"),
	} {
		_, err := decodeFrame(b, 2, 1<<10)
		require.ErrorIs(t, err, errFrame, name)
	}
}

func TestBatcherBounds(t *testing.T) {
	cfg, err := Config{ID: 1, ClusterID: "c", FrameMessagesMax: 3, MessageBytesMax: 1000, FrameBytesMax: 1200}.withDefaults()
	require.NoError(t, err)
	b := newBatcher(cfg)
	for i := range 3 {
		carry, err := b.add(msg(raftpb.MsgHeartbeat, 1, 2, uint64(i)))
		require.NoError(t, err)
		require.Nil(t, carry)
	}
	m := msg(raftpb.MsgHeartbeat, 1, 2, 9)
	carry, err := b.add(m)
	require.NoError(t, err)
	require.Same(t, m, carry, "a fourth message waits for the next frame")
	got, err := decodeFrame(b.frame(), 3, 1000)
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Zero(t, b.len())

	// Bytes: two messages of about 600 bytes do not fit in 1200.
	big := msg(raftpb.MsgApp, 1, 2, 1)
	big.Entries = []*raftpb.Entry{{Data: make([]byte, 600)}}
	carry, err = b.add(big)
	require.NoError(t, err)
	require.Nil(t, carry)
	carry, err = b.add(big)
	require.NoError(t, err)
	require.Same(t, big, carry)
	// Too big for any frame: dropped with an error.
	huge := msg(raftpb.MsgApp, 1, 2, 1)
	huge.Entries = []*raftpb.Entry{{Data: make([]byte, 2000)}}
	b = newBatcher(cfg)
	carry, err = b.add(huge)
	require.Error(t, err)
	require.Nil(t, carry)
	require.Zero(t, b.len())
}

func TestChunkRoundTrip(t *testing.T) {
	i, total, data, err := decodeChunk(encodeChunk(7, 1<<30, []byte("abc")))
	require.NoError(t, err)
	require.Equal(t, uint64(7), i)
	require.Equal(t, uint64(1<<30), total)
	require.Equal(t, []byte("abc"), data)
	for _, b := range [][]byte{{}, {0x02, 0, 1}, {frameVersion}, {frameVersion, 0x80}, {frameVersion, 0, 0x80}} {
		_, _, _, err := decodeChunk(b)
		require.ErrorIs(t, err, errFrame, "%x", b)
	}
}
