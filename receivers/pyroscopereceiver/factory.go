package pyroscopereceiver // import "github.com/otelcol-fabric/otelcol-fabric/receivers/pyroscopereceiver"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer/xconsumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/xreceiver"

	"github.com/otelcol-fabric/otelcol-fabric/receivers/pyroscopereceiver/internal/metadata"
)

// defaultMaxBodyBytes bounds an ingest request: a CPU profile of a busy
// service over 10 s is typically well under 1 MiB compressed.
const defaultMaxBodyBytes = 32 << 20

// defaultMaxDecompressedBytes bounds a profile once inflated: Pyroscope's own
// per-profile limit (validation.max-profile-size-bytes, 4 MiB), so that what
// this receiver accepts Pyroscope accepts too.
const defaultMaxDecompressedBytes = 4 << 20

// defaultMaxProfileEntries bounds the samples (and locations, functions,
// mappings, strings) of one profile: far above what a CPU or heap profile of
// a real service holds (Pyroscope itself keeps at most 16,000 samples of a
// profile by default, -validation.max-profile-stacktrace-samples).
const defaultMaxProfileEntries = 100_000

// NewFactory returns the pyroscope receiver factory.
func NewFactory() xreceiver.Factory {
	return xreceiver.NewFactory(metadata.Type, createDefaultConfig,
		xreceiver.WithProfiles(createProfiles, metadata.ProfilesStability))
}

func createDefaultConfig() component.Config {
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = "localhost:4040"
	srv.MaxRequestBodySize = defaultMaxBodyBytes
	return &Config{ServerConfig: srv, MaxDecompressedSize: defaultMaxDecompressedBytes, MaxProfileEntries: defaultMaxProfileEntries}
}

func createProfiles(_ context.Context, set receiver.Settings, cfg component.Config, next xconsumer.Profiles) (xreceiver.Profiles, error) {
	return newReceiver(set, cfg.(*Config), next)
}
