package protoguardextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/metadata"
)

// NewFactory returns the protoguard extension factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, create, metadata.ExtensionStability)
}

// The defaults of max_decoded_size and max_in_flight_decoded; README.md
// ("Why 128 MiB and 512 MiB") gives the reasons.
const (
	defaultMaxDecodedSize     = 128 << 20
	defaultMaxInFlightDecoded = 512 << 20
)

func createDefaultConfig() component.Config {
	return &Config{
		MaxDepth:           64,
		CheckUTF8:          true,
		MaxDecodedSize:     defaultMaxDecodedSize,
		MaxInFlightDecoded: defaultMaxInFlightDecoded,
		Paths: Paths{
			Traces:   "/v1/traces",
			Metrics:  "/v1/metrics",
			Logs:     "/v1/logs",
			Profiles: "/v1development/profiles",
		},
	}
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newGuard(set, cfg.(*Config))
}
