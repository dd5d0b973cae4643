package pyroscopereceiver // import "github.com/otelcol-fabric/otelcol-fabric/receivers/pyroscopereceiver"

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
)

// Config configures the pyroscope receiver: an HTTP server speaking
// Pyroscope's ingest API. Every field is documented in README.md.
type Config struct {
	// ServerConfig is the HTTP server (endpoint, TLS, auth, max_request_body_size...).
	confighttp.ServerConfig `mapstructure:",squash"`
	// MaxDecompressedSize bounds a profile once inflated (gzip): a gzip
	// body expands up to about a thousandfold, so max_request_body_size
	// alone does not bound memory.
	MaxDecompressedSize int64 `mapstructure:"max_decompressed_size"`
	// MaxProfileEntries bounds how many samples, locations, functions,
	// mappings and strings one profile may hold (each), counted before it
	// is parsed: the size bound alone lets a profile of tiny samples cost
	// 58 times its size to decode.
	MaxProfileEntries int `mapstructure:"max_profile_entries"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("endpoint: must be set (host:port to listen on, e.g. 0.0.0.0:4040)"))
	}
	if cfg.MaxRequestBodySize < 0 {
		errs = append(errs, fmt.Errorf("max_request_body_size: must not be negative, got %d", cfg.MaxRequestBodySize))
	}
	if cfg.MaxDecompressedSize <= 0 {
		errs = append(errs, fmt.Errorf("max_decompressed_size: must be positive, got %d", cfg.MaxDecompressedSize))
	}
	if cfg.MaxProfileEntries <= 0 {
		errs = append(errs, fmt.Errorf("max_profile_entries: must be positive, got %d", cfg.MaxProfileEntries))
	}
	return errors.Join(errs...)
}
