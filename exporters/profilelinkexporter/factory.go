package profilelinkexporter // import "github.com/otelcol-fabric/otelcol-fabric/exporters/profilelinkexporter"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exporterhelper/xexporterhelper"
	"go.opentelemetry.io/collector/exporter/xexporter"

	"github.com/otelcol-fabric/otelcol-fabric/exporters/profilelinkexporter/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/internal/sharedcomponent"
)

// linkers holds one linker per configuration, shared by the traces and the
// profiles pipeline that use the same component ID.
var linkers sharedcomponent.Map[*Config, *linker]

func sharedLinker(set exporter.Settings, cfg *Config) (*sharedcomponent.Component[*linker], error) {
	return linkers.LoadOrStore(cfg,
		func() (*linker, error) { return newLinker(set, cfg) },
		(*linker).Start, (*linker).Shutdown)
}

// NewFactory returns the profilelink exporter factory.
func NewFactory() xexporter.Factory {
	return xexporter.NewFactory(metadata.Type, createDefaultConfig,
		xexporter.WithTraces(createTraces, metadata.TracesStability),
		xexporter.WithProfiles(createProfiles, metadata.ProfilesStability))
}

func createDefaultConfig() component.Config {
	client := confighttp.NewDefaultClientConfig()
	client.Timeout = 10 * time.Second
	return &Config{
		ClientConfig: client,
		Index:        IndexConfig{MaxSpans: 1_000_000, TTL: 5 * time.Minute},
		LinkWait:     5 * time.Second,
		Labels:       []string{"deployment.environment.name", "service.version", "vcs.ref.head.revision", "service.namespace"},
		Spool:        SpoolConfig{MaxBytes: 1 << 30, RetryInterval: 5 * time.Second},
		QueueConfig:  configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
	}
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c, err := sharedLinker(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewTraces(ctx, set, cfg, c.Value.consumeTraces,
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithStart(c.Start), exporterhelper.WithShutdown(c.Shutdown))
}

func createProfiles(ctx context.Context, set exporter.Settings, cfg component.Config) (xexporter.Profiles, error) {
	c, err := sharedLinker(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	oCfg := cfg.(*Config)
	return xexporterhelper.NewProfiles(ctx, set, cfg, c.Value.consumeProfiles,
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithQueue(oCfg.QueueConfig),
		exporterhelper.WithStart(c.Start), exporterhelper.WithShutdown(c.Shutdown))
}
