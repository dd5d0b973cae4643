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
	return errors.Join(errs...)
}
