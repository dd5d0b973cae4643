package profilelinkexporter // import "github.com/otelcol-fabric/otelcol-fabric/exporters/profilelinkexporter"

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config configures the profilelink exporter. Every field is documented in
// README.md.
type Config struct {
	// ClientConfig: endpoint is Pyroscope's base URL (the ingest API is
	// <endpoint>/ingest), plus timeout, TLS, headers, auth extensions.
	confighttp.ClientConfig `mapstructure:",squash"`
	// TenantID is sent as X-Scope-OrgID.
	TenantID string `mapstructure:"tenant_id"`
	// BasicAuth and BearerToken authenticate to Pyroscope (values from the
	// environment: ${env:...}).
	BasicAuth   BasicAuth           `mapstructure:"basic_auth"`
	BearerToken configopaque.String `mapstructure:"bearer_token"`
	// Index bounds the span index built from the traces pipeline.
	Index IndexConfig `mapstructure:"index"`
	// LinkWait is how long a profile whose spans have not arrived waits.
	LinkWait time.Duration `mapstructure:"link_wait"`
	// Labels are the resource attributes sent as Pyroscope labels (dots
	// become underscores); service.name is the application name.
	Labels []string `mapstructure:"labels"`
	// Spool keeps profiles on disk while Pyroscope is unreachable.
	Spool SpoolConfig `mapstructure:"spool"`
	// QueueConfig is the standard sending queue in front of the exporter.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// BasicAuth credentials.
type BasicAuth struct {
	Username string              `mapstructure:"username"`
	Password configopaque.String `mapstructure:"password"`
}

// IndexConfig bounds the span index.
type IndexConfig struct {
	MaxSpans int           `mapstructure:"max_spans"`
	TTL      time.Duration `mapstructure:"ttl"`
}

// SpoolConfig configures the outage spool.
type SpoolConfig struct {
	// Directory for spooled profiles; empty turns the spool off (profiles
	// that cannot be sent are then dropped and counted).
	Directory string `mapstructure:"directory"`
	// MaxBytes bounds the directory; the oldest profiles make room.
	MaxBytes int64 `mapstructure:"max_bytes"`
	// RetryInterval is how often delivery of the spool is retried.
	RetryInterval time.Duration `mapstructure:"retry_interval"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration, naming the key at fault.
func (cfg *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(cfg.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("endpoint: %q is not Pyroscope's http(s) base URL", cfg.Endpoint))
	}
	if cfg.BasicAuth.Username != "" && cfg.BearerToken != "" {
		errs = append(errs, errors.New("basic_auth and bearer_token: set one, not both"))
	}
	if cfg.Index.MaxSpans <= 0 {
		errs = append(errs, fmt.Errorf("index::max_spans: must be positive, got %d", cfg.Index.MaxSpans))
	}
	if cfg.Index.TTL <= 0 {
		errs = append(errs, fmt.Errorf("index::ttl: must be positive, got %s", cfg.Index.TTL))
	}
	if cfg.LinkWait < 0 {
		errs = append(errs, fmt.Errorf("link_wait: must not be negative, got %s", cfg.LinkWait))
	}
	if cfg.Spool.Directory != "" {
		if cfg.Spool.MaxBytes <= 0 {
			errs = append(errs, fmt.Errorf("spool::max_bytes: must be positive, got %d", cfg.Spool.MaxBytes))
		}
		if cfg.Spool.RetryInterval <= 0 {
			errs = append(errs, fmt.Errorf("spool::retry_interval: must be positive, got %s", cfg.Spool.RetryInterval))
		}
	}
	return errors.Join(errs...)
}
