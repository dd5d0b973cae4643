package tagguardprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/xconsumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/collector/processor/processorhelper/xprocessorhelper"
	"go.opentelemetry.io/collector/processor/xprocessor"

	"github.com/otelcol-fabric/otelcol-fabric/internal/sharedcomponent"
	"github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor/internal/metadata"
)

var processorCapabilities = consumer.Capabilities{MutatesData: true}

// guards holds one guard per component configuration, shared by every
// signal's pipeline: value caps and the offenders report span all signals.
var guards sharedcomponent.Map[*Config, *guard]

func sharedGuard(set processor.Settings, cfg *Config) (*sharedcomponent.Component[*guard], error) {
	return guards.LoadOrStore(cfg,
		func() (*guard, error) { return newGuard(set, cfg) },
		(*guard).start, (*guard).shutdown)
}

// NewFactory returns the tagguard processor factory.
func NewFactory() xprocessor.Factory {
	return xprocessor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		xprocessor.WithTraces(createTraces, metadata.TracesStability),
		xprocessor.WithMetrics(createMetrics, metadata.MetricsStability),
		xprocessor.WithLogs(createLogs, metadata.LogsStability),
		xprocessor.WithProfiles(createProfiles, metadata.ProfilesStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Mode: modeEnforce,
		Aliases: map[string]string{
			"env":     "deployment.environment.name",
			"service": "service.name",
			"version": "service.version",
			"commit":  "vcs.ref.head.revision",
			"build":   "build.timestamp",
		},
		// The correlation keys, and the build time versionstamp writes with
		// the version and commit: one value per build, so no cardinality risk.
		ProtectedKeys: []string{"service.name", "deployment.environment.name", "service.version", "vcs.ref.head.revision", "build.timestamp"},
		Metrics: MetricsLimits{
			MaxSeriesPerMetric: 2000,
			SeriesWindow:       10 * time.Minute,
			MaxMetrics:         10000,
			MaxFoldedSeries:    20000,
		},
		OverflowValue: "otel.overflow",
		ValuesWindow:  10 * time.Minute,
		Report:        ReportConfig{Interval: time.Minute, Top: 5},
	}
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	g, err := sharedGuard(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, g.Value.processTraces,
		processorhelper.WithCapabilities(processorCapabilities),
		processorhelper.WithStart(g.Start), processorhelper.WithShutdown(g.Shutdown))
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	g, err := sharedGuard(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, g.Value.processMetrics,
		processorhelper.WithCapabilities(processorCapabilities),
		processorhelper.WithStart(g.Start), processorhelper.WithShutdown(g.Shutdown))
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	g, err := sharedGuard(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, g.Value.processLogs,
		processorhelper.WithCapabilities(processorCapabilities),
		processorhelper.WithStart(g.Start), processorhelper.WithShutdown(g.Shutdown))
}

func createProfiles(ctx context.Context, set processor.Settings, cfg component.Config, next xconsumer.Profiles) (xprocessor.Profiles, error) {
	g, err := sharedGuard(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return xprocessorhelper.NewProfiles(ctx, set, cfg, next, g.Value.processProfiles,
		xprocessorhelper.WithCapabilities(processorCapabilities),
		xprocessorhelper.WithStart(g.Start), xprocessorhelper.WithShutdown(g.Shutdown))
}
