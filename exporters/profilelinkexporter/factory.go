package profilelinkexporter // import "github.com/otelcol-fabric/otelcol-fabric/exporters/profilelinkexporter"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
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
	queue := exporterhelper.NewDefaultQueueConfig()
	// One queue entry is one receiver request (a profile upload): the
	// exporter links and pushes each as it is, no merging of profiles.
	queue.Batch = configoptional.None[exporterhelper.BatchConfig]()
	// A push waiting for its spans holds a consumer for up to link_wait:
	// enough consumers for uploads/s x link_wait (50 covers 10 uploads/s at
	// the default 5 s). A waiting consumer costs a goroutine and its profile.
	queue.NumConsumers = 50
	return &Config{
		ClientConfig:  client,
		Index:         IndexConfig{MaxSpans: 1_000_000, TTL: 5 * time.Minute},
		LinkWait:      5 * time.Second,
		Labels:        []string{"deployment.environment.name", "service.version", "vcs.ref.head.revision", "service.namespace"},
		QueueConfig:   configoptional.Some(queue),
		BackOffConfig: configretry.NewDefaultBackOffConfig(),
	}
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c, err := sharedLinker(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	exp, err := exporterhelper.NewTraces(ctx, set, cfg, c.Value.consumeTraces,
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithStart(c.Start), exporterhelper.WithShutdown(c.Shutdown))
	if err != nil {
		return nil, err
	}
	return &tracesExporter{Traces: exp, linker: c.Value}, nil
}

func createProfiles(ctx context.Context, set exporter.Settings, cfg component.Config) (xexporter.Profiles, error) {
	c, err := sharedLinker(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	oCfg := cfg.(*Config)
	exp, err := xexporterhelper.NewProfiles(ctx, set, cfg, c.Value.pushProfiles,
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithQueue(oCfg.QueueConfig),
		exporterhelper.WithRetry(oCfg.BackOffConfig),
		// No per-attempt timeout from the helper: a push may wait up to
		// link_wait for its spans, then the HTTP client's timeout bounds
		// the request itself.
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{}),
		exporterhelper.WithStart(c.Start), exporterhelper.WithShutdown(c.Shutdown))
	if err != nil {
		return nil, err
	}
	return &profilesExporter{Profiles: exp, linker: c.Value}, nil
}

// tracesExporter and profilesExporter end the pushes waiting for spans as
// soon as either side starts to shut down, before the exporter helper drains
// its queue: no more spans will come, and a waiting push would otherwise
// hold shutdown for up to link_wait.
type tracesExporter struct {
	exporter.Traces
	linker *linker
}

func (e *tracesExporter) Shutdown(ctx context.Context) error {
	e.linker.stopWaiting()
	return e.Traces.Shutdown(ctx)
}

type profilesExporter struct {
	xexporter.Profiles
	linker *linker
}

// Shutdown drains the queue as the exporter helper does, but keeps ctx's
// deadline: when it passes, pushes in flight are cancelled (a persistent
// queue keeps their profiles for the next start).
func (e *profilesExporter) Shutdown(ctx context.Context) error {
	e.linker.stopWaiting()
	defer context.AfterFunc(ctx, e.linker.abort)()
	return e.Profiles.Shutdown(ctx)
}
