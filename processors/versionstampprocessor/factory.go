package versionstampprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/versionstampprocessor"

import (
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor/xprocessor"

	"github.com/otelcol-fabric/otelcol-fabric/internal/sharedprocessor"
	"github.com/otelcol-fabric/otelcol-fabric/processors/versionstampprocessor/internal/metadata"
)

// shared holds one stamper per component configuration, serving every signal.
var shared = sharedprocessor.Factory[Config, *stamper]{
	New:          newStamper,
	Capabilities: consumer.Capabilities{MutatesData: true},
}

// NewFactory returns the versionstamp processor factory.
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
		Keys: Keys{
			Version:     "service.version",
			Commit:      "vcs.ref.head.revision",
			BuildTime:   "build.timestamp",
			Environment: "deployment.environment.name",
		},
		Sources: []string{sourceResource, sourceKubernetes, sourceCatalog, sourceStatic},
		Aliases: Aliases{
			Version:   []string{"version", "app.version", "service_version", "application.version", "git.tag"},
			Commit:    []string{"vcs.revision", "git.commit.sha", "git.commit.id", "git.sha", "commit", "commit_sha", "commit.sha", "vcs.ref.revision"},
			BuildTime: []string{"build.time", "build_time", "build.date", "build.timestamp.unix", "build_timestamp"},
			// deployment.environment is the key before semantic conventions 1.27.
			Environment: []string{"deployment.environment", "env", "environment"},
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
			EnvironmentKeys: []string{
				"k8s.pod.labels.environment",
				"k8s.pod.label.environment",
				"k8s.pod.labels.env",
				"k8s.pod.label.env",
				"k8s.namespace.labels.environment",
				"k8s.namespace.label.environment",
				"k8s.namespace.labels.env",
				"k8s.namespace.label.env",
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
