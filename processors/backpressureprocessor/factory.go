package backpressureprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/backpressureprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/otelcol-fabric/otelcol-fabric/processors/backpressureprocessor/internal/metadata"
)

var processorCapabilities = consumer.Capabilities{MutatesData: true}

// NewFactory returns the backpressure processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithTraces(createTraces, metadata.TracesStability),
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
		processor.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Extension:     component.MustNewID("queuewatch"),
		TierAttribute: "service.tier",
		DefaultTier:   "silver",
		Elevated: ElevatedActions{
			DropTiers:      []string{"bronze"},
			MinLogSeverity: "INFO",
		},
		High: HighActions{
			DropTiers:      []string{"bronze", "silver"},
			SlowSpan:       time.Second,
			MinLogSeverity: "WARN",
		},
		Critical: CriticalActions{RefuseGoldAt: 0.97},
	}
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	s, err := newShedder(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	if ac := cfg.(*Config).Admission; ac.MaxWait > 0 {
		next = newAdmission(s, next, ac)
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, s.processTraces,
		processorhelper.WithCapabilities(processorCapabilities),
		processorhelper.WithStart(s.start), processorhelper.WithShutdown(s.shutdown))
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	s, err := newShedder(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, s.processMetrics,
		processorhelper.WithCapabilities(processorCapabilities),
		processorhelper.WithStart(s.start), processorhelper.WithShutdown(s.shutdown))
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	s, err := newShedder(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, s.processLogs,
		processorhelper.WithCapabilities(processorCapabilities),
		processorhelper.WithStart(s.start), processorhelper.WithShutdown(s.shutdown))
}
