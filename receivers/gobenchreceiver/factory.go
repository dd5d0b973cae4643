package gobenchreceiver // import "github.com/otelcol-fabric/otelcol-fabric/receivers/gobenchreceiver"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelcol-fabric/otelcol-fabric/receivers/gobenchreceiver/internal/metadata"
)

// defaultMaxBodyBytes bounds a request (after gzip inflation): go test
// -bench -count 10 of a large module is a few hundred KiB of text.
const defaultMaxBodyBytes = 8 << 20

// defaultMaxRejectedLines: a few broken lines (a benchmark that printed
// into its own output) are reported and skipped; a body made mostly of
// them is refused.
const defaultMaxRejectedLines = 1000

// defaultMaxSamplesPerBenchmark: benchstat's own advice is -count 10 or
// 20; 100 leaves room for merged runs and bounds a data point at 101
// quantiles (Prometheus series).
const defaultMaxSamplesPerBenchmark = 100

// compressionAlgorithms are the Content-Encodings accepted: none and gzip.
// confighttp's default list also has zstd, zlib, deflate, snappy and lz4,
// and its snappy decoder inflates the whole body before
// max_request_body_size applies (snappy.Decode allocates the length a body
// declares); gzip is streamed under the limit; zstd is not enabled because
// its decoder's window memory was not verified bounded.
var compressionAlgorithms = []string{"", "gzip"}

// NewFactory returns the gobench receiver factory.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(metadata.Type, createDefaultConfig,
		receiver.WithMetrics(createMetrics, metadata.MetricsStability))
}

func createDefaultConfig() component.Config {
	srv := confighttp.NewDefaultServerConfig()
	srv.NetAddr.Endpoint = "localhost:4319"
	srv.MaxRequestBodySize = defaultMaxBodyBytes
	srv.CompressionAlgorithms = append([]string(nil), compressionAlgorithms...)
	return &Config{ServerConfig: srv, Path: "/v1/benchmarks", MaxRejectedLines: defaultMaxRejectedLines, MaxSamplesPerBenchmark: defaultMaxSamplesPerBenchmark}
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	return newReceiver(set, cfg.(*Config), next)
}
