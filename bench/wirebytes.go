package main

import (
	"context"
	"sync/atomic"

	"google.golang.org/grpc/stats"
)

// byteCounter is a gRPC stats handler that adds up the payloads of the
// traces Export calls: each gRPC message as it crossed the wire
// (WireLength: compressed, with its 5-byte prefix) and decompressed
// (Length). On the server it counts what came in, on the
// client what went out.
type byteCounter struct {
	out  bool // count outgoing payloads (client) rather than incoming (server)
	wire func() (*atomic.Int64, *atomic.Int64)
	// compression, when set, is told the grpc-encoding of every traces
	// export the server receives.
	compression func(string)
}

type methodKey struct{}

func (b *byteCounter) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, methodKey{}, info.FullMethodName == exportMethod)
}

func (b *byteCounter) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if traces, _ := ctx.Value(methodKey{}).(bool); !traces {
		return
	}
	wire, data := b.wire()
	if wire == nil {
		return
	}
	switch p := s.(type) {
	case *stats.InHeader:
		if !b.out && b.compression != nil {
			b.compression(p.Compression)
		}
	case *stats.InPayload:
		if !b.out {
			wire.Add(int64(p.WireLength))
			data.Add(int64(p.Length))
		}
	case *stats.OutPayload:
		if b.out {
			wire.Add(int64(p.WireLength))
			data.Add(int64(p.Length))
		}
	}
}

func (b *byteCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (b *byteCounter) HandleConn(context.Context, stats.ConnStats)                       {}
