package profilelinkexporter // import "github.com/otelcol-fabric/otelcol-fabric/exporters/profilelinkexporter"

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config configures the profilelink exporter. Every field is documented in
// README.md.
type Config struct {
	// ClientConfig: endpoint is Pyroscope's base URL (the Push API is
	// <endpoint>/push.v1.PusherService/Push), plus timeout, TLS, headers,
	// auth extensions.
	confighttp.ClientConfig `mapstructure:",squash"`
	// TenantID is sent as X-Scope-OrgID.
	TenantID string `mapstructure:"tenant_id"`
	// BasicAuth and BearerToken authenticate to Pyroscope (values from the
	// environment: ${env:...}).
	BasicAuth   BasicAuth           `mapstructure:"basic_auth"`
	BearerToken configopaque.String `mapstructure:"bearer_token"`
	// Index bounds the span index built from the traces pipeline.
	Index IndexConfig `mapstructure:"index"`
	// LinkWait is how long a profile whose spans have not arrived waits
	// for them, counted from the end of the profile.
	LinkWait time.Duration `mapstructure:"link_wait"`
	// Labels are the resource attributes sent as Pyroscope series labels
	// (dots become underscores); service.name is service_name.
	Labels []string `mapstructure:"labels"`
	// SpanNameLabel also puts the local root span's name on linked samples
	// as span_name. Pyroscope makes it a series label (one series per
	// distinct root span name): opt in only where root span names are
	// route templates, not URLs.
	SpanNameLabel bool `mapstructure:"span_name_label"`
	// QueueConfig is the standard sending queue in front of the exporter;
	// with storage set it is the persistent queue that holds profiles while
	// Pyroscope is down.
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	// BackOffConfig retries pushes that failed for a reason that can pass
	// (Pyroscope unreachable, overloaded, 5xx).
	BackOffConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`

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

// maxSeriesLabels is Pyroscope's default limit of label names per series
// (validation.max-label-names-per-series, 30), less __name__ and
// service_name which every series carries.
const maxSeriesLabels = 28

// legacyLabelName is what Pyroscope accepts as a label name once it has
// replaced dots with underscores (validation.SanitizeLegacyLabelName).
var legacyLabelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// reservedLabels are set by the exporter itself.
var reservedLabels = map[string]bool{"__name__": true, "service_name": true, "span_id": true, "span_name": true, "trace_id": true, "profile_id": true}

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
	if len(cfg.Labels) > maxSeriesLabels {
		errs = append(errs, fmt.Errorf("labels: %d keys, Pyroscope accepts at most %d besides __name__ and service_name", len(cfg.Labels), maxSeriesLabels))
	}
	seen := map[string]string{}
	for i, key := range cfg.Labels {
		name := labelName(key)
		switch {
		case key == "service.name":
			errs = append(errs, fmt.Errorf("labels[%d]: service.name is always sent, as service_name", i))
		case !legacyLabelName.MatchString(name):
			errs = append(errs, fmt.Errorf("labels[%d]: %q is not a Pyroscope label name once dots become underscores ([a-zA-Z_][a-zA-Z0-9_]*)", i, key))
		case reservedLabels[name]:
			errs = append(errs, fmt.Errorf("labels[%d]: %q is set by the exporter itself", i, key))
		case seen[name] != "":
			errs = append(errs, fmt.Errorf("labels[%d]: %q and %q both become the label %s", i, seen[name], key, name))
		}
		seen[name] = key
	}
	return errors.Join(errs...)
}

// labelName is the Pyroscope label name of a resource attribute key.
func labelName(key string) string {
	return strings.ReplaceAll(key, ".", "_")
}
