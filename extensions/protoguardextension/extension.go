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
var reasons = []wirecheck.Reason{wirecheck.ReasonDepth, wirecheck.ReasonMalformed, wirecheck.ReasonUTF8}

// guard is the protoguard extension: a middleware for the OTLP receivers'
// gRPC and HTTP servers that checks each request's bytes before the
// receiver decodes them.
type guard struct {
	logger  *zap.Logger
	checker *wirecheck.Checker
	paths   map[string]wirecheck.Signal
	tb      *metadata.TelemetryBuilder
	// counted[reason][transport]: the attribute sets of the refused counter,
	// built once.
	counted [wirecheck.ReasonUTF8 + 1][numTransports]metric.AddOption
	// pending: gRPC refusals from the codec, keyed by the request message
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
		tb: tb,
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

// refused counts and logs a refusal. The log is at debug level: a sender
// that keeps sending bad requests must not flood the collector's log; the
// counter is what to watch.
func (g *guard) refused(ctx context.Context, err *wirecheck.Error, sig wirecheck.Signal, t transport) {
	g.tb.ProtoguardRequestsRefused.Add(ctx, 1, g.counted[err.Reason][t])
	g.logger.Debug("OTLP request refused before decoding",
		zap.String("transport", transportNames[t]), zap.Stringer("signal", sig),
		zap.Stringer("reason", err.Reason), zap.String("error", err.Error()))
}
