package protoguardextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension"

import (
	"context"
	"errors"
	"reflect"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/wirecheck"
)

// The gRPC side. grpc-go decodes a request (the handler's dec(in)) before
// any interceptor runs, and answers any codec error with codes.Internal. So
// the check runs in a codec that wraps the registered "proto" codec (pdata's,
// which decodes the collector's OTLP types): a request that fails the check
// is not decoded, the codec returns no error, and the refusal is handed,
// keyed by the message grpc-go decoded into, to a stats handler (grpc-go
// reports the payload to it with the RPC's context right after decoding)
// which puts it in the RPC's context, where a unary interceptor finds it and
// answers InvalidArgument instead of calling the receiver. Nothing of a
// refusal outlives its RPC: the hand-over map holds it only between the
// codec and the stats handler, within grpc-go's decode step.

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

type refusal struct {
	err *wirecheck.Error
	sig wirecheck.Signal
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
	if err := c.checker.CheckProto(sig, buf.ReadOnlyData()); err != nil {
		c.pending.Store(v, &refusal{err: err, sig: sig})
		return nil
	}
	return c.delegate.Unmarshal(mem.BufferSlice{buf}, v)
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

type refusalKey struct{}

// slot carries an RPC's refusal from the stats handler to the interceptor.
type slot struct{ r *refusal }

// handOver is the stats handler: it gives each RPC a slot and moves the
// codec's refusal of its request into it.
type handOver struct{ *grpcGuard }

func (h handOver) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, refusalKey{}, &slot{})
}

func (h handOver) HandleRPC(ctx context.Context, s stats.RPCStats) {
	in, ok := s.(*stats.InPayload)
	if !ok {
		return
	}
	if r, ok := h.pending.LoadAndDelete(in.Payload); ok {
		if sl, _ := ctx.Value(refusalKey{}).(*slot); sl != nil {
			sl.r = r.(*refusal)
		}
	}
}

func (handOver) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (handOver) HandleConn(context.Context, stats.ConnStats) {}

// intercept answers a refused request InvalidArgument, naming what is
// wrong, and passes the others on.
func (gg *grpcGuard) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	var r *refusal
	if sl, _ := ctx.Value(refusalKey{}).(*slot); sl != nil {
		r = sl.r
	}
	if r == nil {
		// Should the stats handler not have run, the refusal is still here.
		if p, ok := gg.pending.LoadAndDelete(req); ok {
			r = p.(*refusal)
		}
	}
	if r != nil {
		gg.refused(ctx, r.err, r.sig, transportGRPC)
		return nil, status.Error(codes.InvalidArgument, r.err.Error())
	}
	return handler(ctx, req)
}
