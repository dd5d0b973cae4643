package gobenchreceiver // import "github.com/otelcol-fabric/otelcol-fabric/receivers/gobenchreceiver"

import (
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"

	"github.com/otelcol-fabric/otelcol-fabric/internal/benchdata"
)

// Config configures the gobench receiver: an HTTP server taking go test
// -bench output. Every field is documented in README.md.
type Config struct {
	// ServerConfig is the HTTP server (endpoint, TLS, auth,
	// max_request_body_size, which also bounds a gzip body once inflated).
	confighttp.ServerConfig `mapstructure:",squash"`
	// Path is the URL path benchmarks are posted to.
	Path string `mapstructure:"path"`
	// MaxRejectedLines bounds how many malformed lines one request may
	// hold and still be accepted (the rest of it): beyond it the request
	// is refused whole (400), as it is most likely not benchmark output.
	MaxRejectedLines int `mapstructure:"max_rejected_lines"`
	// MaxSamplesPerBenchmark bounds the samples of one benchmark and unit
	// in a request (go test -count N gives N): each is a quantile of the
	// data point, so a Prometheus series. Result lines beyond it are
	// rejected (rejected_lines).
	MaxSamplesPerBenchmark int `mapstructure:"max_samples_per_benchmark"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("endpoint: must be set (host:port to listen on, e.g. 0.0.0.0:4319)"))
	}
	if cfg.MaxRequestBodySize <= 0 {
		errs = append(errs, fmt.Errorf("max_request_body_size: must be positive, got %d", cfg.MaxRequestBodySize))
	}
	if !strings.HasPrefix(cfg.Path, "/") {
		errs = append(errs, fmt.Errorf("path: must start with /, got %q", cfg.Path))
	}
	if cfg.MaxSamplesPerBenchmark < 1 || cfg.MaxSamplesPerBenchmark > benchdata.MaxSamples {
		errs = append(errs, fmt.Errorf("max_samples_per_benchmark: must be in [1, %d] (the most the benchstat connector reads), got %d", benchdata.MaxSamples, cfg.MaxSamplesPerBenchmark))
	}
	if cfg.MaxRejectedLines < 0 {
		errs = append(errs, fmt.Errorf("max_rejected_lines: must not be negative, got %d", cfg.MaxRejectedLines))
	}
	return errors.Join(errs...)
}
