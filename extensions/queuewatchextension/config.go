package queuewatchextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/queuewatchextension"

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
)

// Config configures queuewatch. Every field is documented in README.md.
type Config struct {
	// MetricsEndpoint is the collector's own Prometheus endpoint
	// (service::telemetry::metrics), where the exporters' sending queues
	// report otelcol_exporter_queue_size and otelcol_exporter_queue_capacity.
	MetricsEndpoint string `mapstructure:"metrics_endpoint"`
	// Interval between measurements.
	Interval time.Duration `mapstructure:"interval"`
	// Exporters are the component IDs of the exporters whose queues are watched.
	Exporters []string `mapstructure:"exporters"`
	// Levels are the fill ratios at which each level starts.
	Levels Levels `mapstructure:"levels"`
	// Hysteresis: a level is left only when the fill is this far below the
	// level's threshold, and after HoldTime at the level.
	Hysteresis float64       `mapstructure:"hysteresis"`
	HoldTime   time.Duration `mapstructure:"hold_time"`
	// StaleAfter is how long the level may rest on measurements that could
	// not be renewed (the metrics endpoint failing); after it the level
	// falls one step per interval until a measurement succeeds again.
	StaleAfter time.Duration `mapstructure:"stale_after"`
	// SLO is the queue-length objective tracked and reported.
	SLO SLO `mapstructure:"slo"`
	// History is how far back the status page shows.
	History time.Duration `mapstructure:"history"`
	// Status serves the JSON status and the HTML page; an empty endpoint
	// turns them off.
	Status confighttp.ServerConfig `mapstructure:"status"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Levels are fill-ratio thresholds, increasing.
type Levels struct {
	Elevated float64 `mapstructure:"elevated"`
	High     float64 `mapstructure:"high"`
	Critical float64 `mapstructure:"critical"`
}

// SLO is "fill below Target for Objective of Window".
type SLO struct {
	Target    float64       `mapstructure:"fill_target"`
	Objective float64       `mapstructure:"objective"`
	Window    time.Duration `mapstructure:"window"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration, naming the key at fault. Whether each
// watched exporter exists and has a sending queue is checked against the
// whole collector configuration by CheckExporters (the distribution runs it
// when the configuration is loaded).
func (cfg *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(cfg.MetricsEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("metrics_endpoint: %q is not an http(s) URL", cfg.MetricsEndpoint))
	}
	if cfg.StaleAfter < cfg.Interval {
		errs = append(errs, fmt.Errorf("stale_after: must be at least interval (%s), got %s", cfg.Interval, cfg.StaleAfter))
	}
	if cfg.Interval <= 0 {
		errs = append(errs, fmt.Errorf("interval: must be positive, got %s", cfg.Interval))
	}
	if len(cfg.Exporters) == 0 {
		errs = append(errs, errors.New("exporters: name at least one exporter whose sending queue to watch"))
	}
	seen := map[string]bool{}
	for i, e := range cfg.Exporters {
		var id component.ID
		switch err := id.UnmarshalText([]byte(e)); {
		case err != nil:
			errs = append(errs, fmt.Errorf("exporters[%d]: %q is not a component ID: %w", i, e, err))
		case seen[e]:
			errs = append(errs, fmt.Errorf("exporters[%d]: %q is listed twice", i, e))
		}
		seen[e] = true
	}
	l := cfg.Levels
	if !(l.Elevated > 0 && l.Elevated < l.High && l.High < l.Critical && l.Critical <= 1) {
		errs = append(errs, fmt.Errorf("levels: must increase within (0, 1]: elevated %v < high %v < critical %v", l.Elevated, l.High, l.Critical))
	}
	if cfg.Hysteresis < 0 || cfg.Hysteresis >= l.Elevated {
		errs = append(errs, fmt.Errorf("hysteresis: must be at least 0 and below levels::elevated (%v), got %v", l.Elevated, cfg.Hysteresis))
	}
	if cfg.HoldTime < 0 {
		errs = append(errs, fmt.Errorf("hold_time: must not be negative, got %s", cfg.HoldTime))
	}
	if cfg.SLO.Target <= 0 || cfg.SLO.Target > 1 {
		errs = append(errs, fmt.Errorf("slo::fill_target: must be within (0, 1], got %v", cfg.SLO.Target))
	}
	if cfg.SLO.Objective <= 0 || cfg.SLO.Objective >= 1 {
		errs = append(errs, fmt.Errorf("slo::objective: must be within (0, 1), got %v", cfg.SLO.Objective))
	}
	if cfg.SLO.Window < cfg.Interval {
		errs = append(errs, fmt.Errorf("slo::window: must be at least interval (%s), got %s", cfg.Interval, cfg.SLO.Window))
	}
	if cfg.History < cfg.Interval {
		errs = append(errs, fmt.Errorf("history: must be at least interval (%s), got %s", cfg.Interval, cfg.History))
	}
	return errors.Join(errs...)
}
