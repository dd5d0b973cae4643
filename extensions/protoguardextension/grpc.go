package protoguardextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension"

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/wirecheck"
)

// The gRPC side. grpc-go decodes a request (the handler's dec(in)) before
// any interceptor runs, and answers any codec error with codes.Internal. So
// the check runs in a codec that wraps the registered "proto" codec (pdata's,
// which decodes the collector's OTLP types): a request that fails the check,
// or whose decoded-size estimate is over max_decoded_size or cannot be had
// from the max_in_flight_decoded budget, is not decoded, the codec returns
// no error, and the refusal is handed, keyed by the message grpc-go decoded
// into, to a stats handler (grpc-go reports the payload to it with the RPC's
// context right after decoding) which puts it in the RPC's context, where a
// unary interceptor finds it and answers instead of calling the receiver.
// An admitted request's share of the budget takes the same way; the
// interceptor gives it back when the receiver returns, or, for an RPC that
// never reaches it (an authenticator's interceptor before it refused the
// request), the stats handler at the end of the RPC. Nothing outlives its
// RPC: the hand-over map holds a verdict only between the codec and the
// stats handler, within grpc-go's decode step.

// GetGRPCServerOptions returns the codec, stats handler and interceptor.
// configgrpc appends them after its own interceptors (client info,
// authentication), so an unauthenticated request is answered
// Unauthenticated, and is not decoded either.
func (g *guard) GetGRPCServerOptions() ([]grpc.ServerOption, error) {
	delegate := encoding.GetCodecV2(protoCodecName)
	if delegate == nil {
		return nil, errors.New("protoguard: no gRPC codec is registered as \"proto\"")
	}
	gg := &grpcGuard{guard: g, delegate: delegate}
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(checkingCodec{gg}),
		grpc.StatsHandler(handOver{gg}),
		grpc.ChainUnaryInterceptor(gg.intercept),
	}, nil
}

const protoCodecName = "proto"

type grpcGuard struct {
	*guard
	delegate encoding.CodecV2
}

// verdict is the codec's decision on a request: refused (err, of signal
// sig), or admitted holding charge bytes of the budget.
type verdict struct {
	err    *wirecheck.Error
	sig    wirecheck.Signal
	charge int64
}

// checkingCodec checks OTLP Export requests before the delegate decodes
// them; everything else goes to the delegate as it is.
type checkingCodec struct{ *grpcGuard }

func (c checkingCodec) Marshal(v any) (mem.BufferSlice, error) { return c.delegate.Marshal(v) }

func (c checkingCodec) Name() string { return protoCodecName }

func (c checkingCodec) Unmarshal(data mem.BufferSlice, v any) error {
	sig, ok := c.signalOf(v)
	if !ok {
		return c.delegate.Unmarshal(data, v)
	}
	// One contiguous buffer, checked, then handed to the delegate, which
	// takes a single buffer as it is (pdata's codec materializes too).
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	size, err := c.checker.CheckProtoSize(sig, buf.ReadOnlyData())
	if err == nil {
		err = c.admit(size)
	}
	if err != nil {
		c.pending.Store(v, &verdict{err: err, sig: sig})
		return nil
	}
	if derr := c.delegate.Unmarshal(mem.BufferSlice{buf}, v); derr != nil {
		// grpc-go answers Internal and calls no handler.
		c.release(size)
		return derr
	}
	if c.budget != nil && size != 0 {
		c.pending.Store(v, &verdict{sig: sig, charge: size})
	}
	return nil
}

type signalOK struct {
	sig wirecheck.Signal
	ok  bool
}

// signalOf maps the Go types OTLP Export requests decode into (pdata's, and
// go.opentelemetry.io/proto/otlp's) to their signal, by type name; the
// answer for each type seen is cached.
func (g *guard) signalOf(v any) (wirecheck.Signal, bool) {
	t := reflect.TypeOf(v)
	if s, ok := g.signalTypes.Load(t); ok {
		return s.(signalOK).sig, s.(signalOK).ok
	}
	var s signalOK
	if t != nil && t.Kind() == reflect.Pointer {
		s.ok = true
		switch t.Elem().Name() {
		case "ExportTraceServiceRequest":
			s.sig = wirecheck.Traces
		case "ExportMetricsServiceRequest":
			s.sig = wirecheck.Metrics
		case "ExportLogsServiceRequest":
			s.sig = wirecheck.Logs
		case "ExportProfilesServiceRequest":
			s.sig = wirecheck.Profiles
		default:
			s.ok = false
		}
	}
	g.signalTypes.Store(t, s)
	return s.sig, s.ok
}

type slotKey struct{}

// slot carries an RPC's verdict from the stats handler to the interceptor:
// its refusal, or the budget its request holds until the interceptor (the
// receiver has answered) or the end of the RPC, whichever comes first,
// gives it back.
type slot struct {
	refused *verdict
	charge  atomic.Int64
}

func (sl *slot) put(v *verdict) {
	if v.err != nil {
		sl.refused = v
	} else {
		sl.charge.Add(v.charge)
	}
}

func (gg *grpcGuard) releaseSlot(sl *slot) {
	gg.release(sl.charge.Swap(0))
}

// handOver is the stats handler: it gives each RPC a slot, moves the codec's
// verdict on its request into it, and gives back at the end of the RPC
// whatever budget the interceptor has not.
type handOver struct{ *grpcGuard }

func (h handOver) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, slotKey{}, &slot{})
}

func (h handOver) HandleRPC(ctx context.Context, s stats.RPCStats) {
	sl, _ := ctx.Value(slotKey{}).(*slot)
	if sl == nil {
		return // not tagged by TagRPC: the interceptor finds the verdict in pending
	}
	switch s := s.(type) {
	case *stats.InPayload:
		if v, ok := h.pending.LoadAndDelete(s.Payload); ok {
			sl.put(v.(*verdict))
		}
	case *stats.End:
		h.releaseSlot(sl)
	}
}

func (handOver) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (handOver) HandleConn(context.Context, stats.ConnStats) {}

// intercept answers a refused request (InvalidArgument, ResourceExhausted
// or Unavailable, naming the cause), and passes the others on, giving back
// their share of the budget when the receiver returns.
func (gg *grpcGuard) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	sl, _ := ctx.Value(slotKey{}).(*slot)
	if sl == nil {
		sl = &slot{}
	}
	// Should the stats handler not have run, the verdict is still here.
	if v, ok := gg.pending.LoadAndDelete(req); ok {
		sl.put(v.(*verdict))
	}
	if r := sl.refused; r != nil {
		gg.refused(ctx, r.err, r.sig, transportGRPC)
		return nil, status.Error(answers[r.err.Reason].code, r.err.Error())
	}
	defer gg.releaseSlot(sl)
	return handler(ctx, req)
}
