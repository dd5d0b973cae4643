package queuewatchextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/queuewatchextension"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/extension"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/queuewatchextension/internal/metadata"
)

// NewFactory returns the queuewatch extension factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, create, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	status := confighttp.NewDefaultServerConfig()
	status.NetAddr.Endpoint = "127.0.0.1:13134"
	return &Config{
		MetricsEndpoint: "http://127.0.0.1:8888/metrics",
		Interval:        time.Second,
		Levels:          Levels{Elevated: 0.5, High: 0.7, Critical: 0.9},
		Hysteresis:      0.1,
		HoldTime:        10 * time.Second,
		StaleAfter:      30 * time.Second,
		SLO:             SLO{Target: 0.5, Objective: 0.99, Window: 5 * time.Minute},
		History:         10 * time.Minute,
		Status:          status,
	}
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newWatcher(set, cfg.(*Config))
}
