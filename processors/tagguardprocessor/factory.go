package tagguardprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor"

import (
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor/xprocessor"

	"github.com/otelcol-fabric/otelcol-fabric/internal/sharedprocessor"
	"github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor/internal/metadata"
)

// shared holds one guard per component configuration, serving every signal.
var shared = sharedprocessor.Factory[Config, *guard]{
	New:          newGuard,
	Capabilities: consumer.Capabilities{MutatesData: true},
}

// NewFactory returns the tagguard processor factory.
func NewFactory() xprocessor.Factory {
	return xprocessor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		xprocessor.WithTraces(shared.Traces, metadata.TracesStability),
		xprocessor.WithMetrics(shared.Metrics, metadata.MetricsStability),
		xprocessor.WithLogs(shared.Logs, metadata.LogsStability),
		xprocessor.WithProfiles(shared.Profiles, metadata.ProfilesStability),
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
			MemoryLimitMiB:     64,
		},
		OverflowValue: "otel.overflow",
		ValuesWindow:  10 * time.Minute,
		MaxValueDepth: 32,
		Report:        ReportConfig{Interval: time.Minute, Top: 5},
	}
}
