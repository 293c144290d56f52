package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Messages that do not decode. gRPC answers a request it cannot decode
// with a bare INTERNAL status, and on a stream that status ends the stream:
// one garbled message on a Pipe would cost every request in flight on it.
// The node's codec never fails to decode instead: it hands the handler an
// empty message marked undecodable (an unknown field of the largest field
// number), and the node answers it like any other bad input, with
// InvalidArgument. A client that sends the mark itself only earns that
// answer.

const undecodableField = protowire.MaxValidNumber

// lenientCodec is gRPC's protobuf codec, except that a message that does
// not decode is reset and marked instead of failing the call.
type lenientCodec struct{ encoding.CodecV2 }

func newLenientCodec() lenientCodec {
	return lenientCodec{encoding.GetCodecV2(grpcproto.Name)}
}

func (c lenientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	m, ok := v.(proto.Message)
	if err == nil || !ok {
		return err
	}
	proto.Reset(m)
	mark := protowire.AppendTag(nil, undecodableField, protowire.VarintType)
	m.ProtoReflect().SetUnknown(protowire.AppendVarint(mark, 1))
	return nil
}

// undecodable reports whether m is the mark of a message that did not
// decode.
func undecodable(m any) bool {
	pm, ok := m.(proto.Message)
	if !ok {
		return false
	}
	b := pm.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, _, n := protowire.ConsumeField(b)
		if n < 0 {
			return false
		}
		if num == undecodableField {
			return true
		}
		b = b[n:]
	}
	return false
}

var errUndecodable = badField("message: not a valid protobuf encoding of the request")

// decodeUnary refuses an undecodable unary request.
func decodeUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if undecodable(req) {
		return nil, invalid(errUndecodable)
	}
	return h(ctx, req)
}

// decodeStream refuses the undecodable request of a server-streaming call;
// the handlers of bidirectional streams answer each message themselves.
func decodeStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if info.IsClientStream {
		return h(srv, ss)
	}
	return h(srv, refusingStream{ss})
}

type refusingStream struct{ grpc.ServerStream }

func (s refusingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if undecodable(m) {
		return invalid(errUndecodable)
	}
	return nil
}
