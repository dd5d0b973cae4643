package versionstampprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/versionstampprocessor"

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
	"github.com/otelcol-fabric/otelcol-fabric/processors/versionstampprocessor/internal/metadata"
)

var processorCapabilities = consumer.Capabilities{MutatesData: true}

// stampers holds one stamper per component configuration (the collector
// passes the same *Config to every pipeline of a component ID, as contrib's
// shared receivers rely on), shared by every signal: one catalog watcher, one
// set of counts.
var stampers sharedcomponent.Map[*Config, *stamper]

func sharedStamper(set processor.Settings, cfg *Config) (*sharedcomponent.Component[*stamper], error) {
	return stampers.LoadOrStore(cfg,
		func() (*stamper, error) { return newStamper(set, cfg) },
		(*stamper).start, (*stamper).shutdown)
}

// NewFactory returns the versionstamp processor factory.
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
		Keys: Keys{
			Version:   "service.version",
			Commit:    "vcs.ref.head.revision",
			BuildTime: "build.timestamp",
		},
		Sources: []string{sourceResource, sourceKubernetes, sourceCatalog, sourceStatic},
		Aliases: Aliases{
			Version:   []string{"version", "app.version", "service_version", "application.version", "git.tag"},
			Commit:    []string{"vcs.revision", "git.commit.sha", "git.commit.id", "git.sha", "commit", "commit_sha", "commit.sha", "vcs.ref.revision"},
			BuildTime: []string{"build.time", "build_time", "build.date", "build.timestamp.unix", "build_timestamp"},
		},
		Kubernetes: KubernetesSource{
			VersionKeys: []string{
				"k8s.pod.labels.app.kubernetes.io/version",
				"k8s.pod.label.app.kubernetes.io/version",
			},
			ImageTagKeys: []string{"container.image.tag"},
			RevisionKeys: []string{
				"k8s.pod.annotations.org.opencontainers.image.revision",
				"k8s.pod.annotation.org.opencontainers.image.revision",
			},
			CreatedKeys: []string{
				"k8s.pod.annotations.org.opencontainers.image.created",
				"k8s.pod.annotation.org.opencontainers.image.created",
			},
		},
		Catalog: CatalogSource{
			ReloadInterval:  10 * time.Second,
			EnvironmentKeys: []string{"deployment.environment.name", "deployment.environment"},
		},
		UnknownValue: "unknown",
		RawSuffix:    ".raw",
		Collector: CollectorStamp{
			VersionKey: "otelcol.distribution.version",
			CommitKey:  "otelcol.distribution.commit",
		},
	}
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	s, err := sharedStamper(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, s.Value.processTraces,
		processorhelper.WithCapabilities(processorCapabilities),
		processorhelper.WithStart(s.Start), processorhelper.WithShutdown(s.Shutdown))
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	s, err := sharedStamper(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, s.Value.processMetrics,
		processorhelper.WithCapabilities(processorCapabilities),
		processorhelper.WithStart(s.Start), processorhelper.WithShutdown(s.Shutdown))
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	s, err := sharedStamper(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, s.Value.processLogs,
		processorhelper.WithCapabilities(processorCapabilities),
		processorhelper.WithStart(s.Start), processorhelper.WithShutdown(s.Shutdown))
}

func createProfiles(ctx context.Context, set processor.Settings, cfg component.Config, next xconsumer.Profiles) (xprocessor.Profiles, error) {
	s, err := sharedStamper(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return xprocessorhelper.NewProfiles(ctx, set, cfg, next, s.Value.processProfiles,
		xprocessorhelper.WithCapabilities(processorCapabilities),
		xprocessorhelper.WithStart(s.Start), xprocessorhelper.WithShutdown(s.Shutdown))
}
