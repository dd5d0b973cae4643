package protoguardextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension"

import (
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/component"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/wirecheck"
)

// Config configures protoguard. Every field is documented in README.md.
type Config struct {
	// MaxDepth is how many levels AnyValue (attribute values, log bodies)
	// may nest through maps and arrays; a string attribute is level 1.
	MaxDepth int `mapstructure:"max_depth"`
	// CheckUTF8 refuses invalid UTF-8 in proto3 string fields (and in
	// OTLP/JSON bodies), as protobuf-go's decoder does.
	CheckUTF8 bool `mapstructure:"check_utf8"`
	// Paths are the OTLP/HTTP paths of each signal, as the otlp receiver
	// serves them; requests to other paths are passed on unchecked.
	Paths Paths `mapstructure:"paths"`
	// MaxDecodedSize refuses a request whose decoded-size estimate (what
	// pdata would allocate to decode it), in bytes, is over it: HTTP 413,
	// gRPC ResourceExhausted, neither retried.
	MaxDecodedSize int64 `mapstructure:"max_decoded_size"`
	// MaxInFlightDecoded bounds the decoded-size estimates of the requests
	// admitted and not yet answered, in bytes, over both transports; a
	// request it cannot take at once is refused for now: HTTP 503, gRPC
	// Unavailable, both retried by OTLP senders. 0 disables it.
	MaxInFlightDecoded int64 `mapstructure:"max_in_flight_decoded"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Paths are the OTLP/HTTP request paths per signal (the otlp receiver's
// traces_url_path, metrics_url_path, logs_url_path, and its fixed profiles
// path).
type Paths struct {
	Traces   string `mapstructure:"traces"`
	Metrics  string `mapstructure:"metrics"`
	Logs     string `mapstructure:"logs"`
	Profiles string `mapstructure:"profiles"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration, naming the key at fault.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.MaxDepth < 1 || cfg.MaxDepth > wirecheck.MaxDepthLimit {
		errs = append(errs, fmt.Errorf("max_depth: must be between 1 and %d, got %d", wirecheck.MaxDepthLimit, cfg.MaxDepth))
	}
	if cfg.MaxDecodedSize <= 0 {
		errs = append(errs, fmt.Errorf("max_decoded_size: must be a positive number of bytes, got %d", cfg.MaxDecodedSize))
	}
	switch {
	case cfg.MaxInFlightDecoded < 0:
		errs = append(errs, fmt.Errorf("max_in_flight_decoded: must be a number of bytes, or 0 to disable, got %d", cfg.MaxInFlightDecoded))
	case cfg.MaxInFlightDecoded > 0 && cfg.MaxInFlightDecoded < cfg.MaxDecodedSize:
		errs = append(errs, fmt.Errorf("max_in_flight_decoded: %d is below max_decoded_size (%d): a request under the size limit could never be admitted", cfg.MaxInFlightDecoded, cfg.MaxDecodedSize))
	}
	seen := map[string]string{}
	for _, p := range []struct{ key, path string }{
		{"traces", cfg.Paths.Traces}, {"metrics", cfg.Paths.Metrics}, {"logs", cfg.Paths.Logs}, {"profiles", cfg.Paths.Profiles},
	} {
		switch {
		case !strings.HasPrefix(p.path, "/"):
			errs = append(errs, fmt.Errorf("paths::%s: must be a URL path starting with /, got %q", p.key, p.path))
		case seen[p.path] != "":
			errs = append(errs, fmt.Errorf("paths::%s: %q is also paths::%s", p.key, p.path, seen[p.path]))
		default:
			seen[p.path] = p.key
		}
	}
	return errors.Join(errs...)
}
