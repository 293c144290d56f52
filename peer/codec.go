package peer

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// codecName is the raw codec's name, and the streams' content subtype.
const codecName = "bouncer-peer"

// frameVersion is the first byte of every frame and chunk.
const frameVersion = 0x01

func init() { encoding.RegisterCodecV2(rawCodec{}) }

// rawCodec passes byte strings through: every gRPC message of the peer
// service is a frame this package encodes itself.
type rawCodec struct{}

func (rawCodec) Name() string { return codecName }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch b := v.(type) {
	case []byte:
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	case *[]byte:
		return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
	}
	return nil, fmt.Errorf("peer: the raw codec cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("peer: the raw codec cannot unmarshal into %T", v)
	}
	*b = data.Materialize() // a copy: data is freed on return
	return nil
}

var errFrame = errors.New("frame does not parse")

// encodeFrame makes one frame of messages already marshaled.
func encodeFrame(msgs [][]byte) []byte {
	n := 1 + binary.MaxVarintLen64
	for _, m := range msgs {
		n += binary.MaxVarintLen64 + len(m)
	}
	b := make([]byte, 0, n)
	b = append(b, frameVersion)
	b = binary.AppendUvarint(b, uint64(len(msgs)))
	for _, m := range msgs {
		b = binary.AppendUvarint(b, uint64(len(m)))
		b = append(b, m...)
	}
	return b
}

// frameSize is the size of a frame of count messages of payload bytes in
// all, at most.
func frameSize(count, payload int) int {
	return 1 + binary.MaxVarintLen64 + count*binary.MaxVarintLen64 + payload
}

// decodeFrame parses a whole frame, or fails without returning any of it.
func decodeFrame(b []byte, countMax, msgBytesMax int) ([]*raftpb.Message, error) {
	if len(b) < 2 || b[0] != frameVersion {
		return nil, fmt.Errorf("%w: no version %#x", errFrame, frameVersion)
	}
	b = b[1:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count == 0 || count > uint64(countMax) {
		return nil, fmt.Errorf("%w: count not in 1..%d", errFrame, countMax)
	}
	b = b[n:]
	msgs := make([]*raftpb.Message, 0, count)
	for i := range count {
		size, n := binary.Uvarint(b)
		if n <= 0 || size == 0 || size > uint64(msgBytesMax) || size > uint64(len(b)-n) {
			return nil, fmt.Errorf("%w: message %d: length not in 1..%d or past the frame's end", errFrame, i, msgBytesMax)
		}
		m := &raftpb.Message{}
		if err := proto.Unmarshal(b[n:n+int(size)], m); err != nil {
			return nil, fmt.Errorf("%w: message %d: %v", errFrame, i, err)
		}
		msgs = append(msgs, m)
		b = b[n+int(size):]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last message", errFrame, len(b))
	}
	return msgs, nil
}

// encodeChunk makes the chunk of index of a snapshot of total bytes.
func encodeChunk(index, total int, data []byte) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(data))
	b = append(b, frameVersion)
	b = binary.AppendUvarint(b, uint64(index))
	b = binary.AppendUvarint(b, uint64(total))
	return append(b, data...)
}

// decodeChunk parses a chunk's header; data is the rest of b.
func decodeChunk(b []byte) (index, total uint64, data []byte, err error) {
	if len(b) < 1 || b[0] != frameVersion {
		return 0, 0, nil, fmt.Errorf("%w: no version %#x", errFrame, frameVersion)
	}
	b = b[1:]
	index, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, nil, fmt.Errorf("%w: no chunk index", errFrame)
	}
	b = b[n:]
	total, n = binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, nil, fmt.Errorf("%w: no snapshot length", errFrame)
	}
	return index, total, b[n:], nil
}
