package protoguardextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension"

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/wirecheck"
)

// transport labels the refused-requests counter.
type transport uint8

const (
	transportGRPC transport = iota
	transportHTTP
	numTransports
)

var transportNames = [numTransports]string{transportGRPC: "grpc", transportHTTP: "http"}

// reasons are the refusal reasons the counter is labelled with.
var reasons = []wirecheck.Reason{
	wirecheck.ReasonDepth, wirecheck.ReasonMalformed, wirecheck.ReasonUTF8, wirecheck.ReasonTooLarge, wirecheck.ReasonBusy,
}

// guard is the protoguard extension: a middleware for the OTLP receivers'
// gRPC and HTTP servers that checks each request's bytes before the
// receiver decodes them.
type guard struct {
	logger  *zap.Logger
	checker *wirecheck.Checker
	paths   map[string]wirecheck.Signal
	// maxDecoded is max_decoded_size; budget, max_in_flight_decoded (nil:
	// disabled).
	maxDecoded int64
	budget     *budget
	tb         *metadata.TelemetryBuilder
	// counted[reason][transport]: the attribute sets of the refused counter,
	// built once.
	counted [wirecheck.ReasonBusy + 1][numTransports]metric.AddOption
	// pending: the codec's verdicts on gRPC requests (a refusal, or the
	// budget an admitted request holds), keyed by the request message
	// grpc-go decoded into, until the stats handler moves them into the
	// RPC's context (grpc.go).
	pending sync.Map
	// signalTypes caches, per Go type gRPC decodes into, which OTLP signal
	// it is (grpc.go).
	signalTypes sync.Map
}

var (
	_ extension.Extension            = (*guard)(nil)
	_ extensionmiddleware.HTTPServer = (*guard)(nil)
	_ extensionmiddleware.GRPCServer = (*guard)(nil)
)

func newGuard(set extension.Settings, cfg *Config) (*guard, error) {
	checker, err := wirecheck.New(cfg.MaxDepth, cfg.CheckUTF8)
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	g := &guard{
		logger:  set.Logger,
		checker: checker,
		paths: map[string]wirecheck.Signal{
			cfg.Paths.Traces:   wirecheck.Traces,
			cfg.Paths.Metrics:  wirecheck.Metrics,
			cfg.Paths.Logs:     wirecheck.Logs,
			cfg.Paths.Profiles: wirecheck.Profiles,
		},
		maxDecoded: cfg.MaxDecodedSize,
		tb:         tb,
	}
	if cfg.MaxInFlightDecoded > 0 {
		g.budget = &budget{limit: cfg.MaxInFlightDecoded}
	}
	err = tb.RegisterProtoguardDecodedInFlightCallback(func(_ context.Context, o metric.Int64Observer) error {
		if g.budget != nil {
			o.Observe(g.budget.inFlight.Load())
		} else {
			o.Observe(0)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, r := range reasons {
		for t := range numTransports {
			g.counted[r][t] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("reason", r.String()), attribute.String("transport", transportNames[t])))
		}
	}
	return g, nil
}

func (*guard) Start(context.Context, component.Host) error { return nil }

func (g *guard) Shutdown(context.Context) error {
	g.tb.Shutdown()
	return nil
}

// admit holds a request whose decoded-size estimate is size to
// max_decoded_size, then takes size from the max_in_flight_decoded budget.
// When it returns nil, the caller owes release(size) once the receiver has
// answered the request.
func (g *guard) admit(size int64) *wirecheck.Error {
	if size > g.maxDecoded {
		return wirecheck.TooLarge(size, g.maxDecoded)
	}
	if g.budget != nil {
		if ok, held := g.budget.tryAcquire(size); !ok {
			return wirecheck.Busy(size, held, g.budget.limit)
		}
	}
	return nil
}

// release gives back what admit took.
func (g *guard) release(size int64) {
	if g.budget != nil && size != 0 {
		g.budget.release(size)
	}
}

// refused counts and logs a refusal. The log is at debug level: a sender
// that keeps sending bad requests must not flood the collector's log; the
// counter is what to watch.
func (g *guard) refused(ctx context.Context, err *wirecheck.Error, sig wirecheck.Signal, t transport) {
	g.tb.ProtoguardRequestsRefused.Add(ctx, 1, g.counted[err.Reason][t])
	g.logger.Debug("OTLP request refused before decoding",
		zap.String("transport", transportNames[t]), zap.Stringer("signal", sig),
		zap.Stringer("reason", err.Reason), zap.String("error", err.Error()))
}
