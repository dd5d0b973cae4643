package adaptivesamplingextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/adaptivesamplingextension"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/adaptivesamplingextension/internal/metadata"
)

// NewFactory returns the adaptive_sampling extension factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, create, metadata.ExtensionStability)
}

// DefaultKeyFields is the key when key_fields is not set: the service, the
// root span's name, its HTTP status class and whether the trace failed.
var DefaultKeyFields = []string{"resource.attributes.service.name", "span.name", "span.http_status_class", "trace.error"}

func createDefaultConfig() component.Config {
	return &Config{
		KeyFields:           append([]string(nil), DefaultKeyFields...),
		Target:              Target{TracesPerSecond: 100},
		AdjustmentInterval:  15 * time.Second,
		Weight:              0.5,
		AgeOutValue:         0.5,
		InitialSampleRate:   10,
		MaxKeys:             10_000,
		MaxValueLength:      256,
		SampleRateAttribute: "SampleRate",
		TraceState:          true,
		Pressure: PressureConfig{
			Extension: component.MustNewID("queuewatch"),
			Factors:   Factors{Elevated: 0.75, High: 0.5, Critical: 0.25},
		},
	}
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newAdaptive(set, cfg.(*Config))
}
