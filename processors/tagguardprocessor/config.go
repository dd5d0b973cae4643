package tagguardprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor"

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/otelcol-fabric/otelcol-fabric/internal/attrmatch"
)

// Modes.
const (
	modeEnforce = "enforce"
	modeObserve = "observe"
)

// Scope names: where an attribute lives.
const (
	scopeResource      = "resource"
	scopeSpan          = "span"
	scopeSpanEvent     = "span_event"
	scopeDatapoint     = "datapoint"
	scopeLog           = "log"
	scopeLogBody       = "log_body"
	scopeProfileSample = "profile_sample"
)

var knownScopes = []string{scopeResource, scopeSpan, scopeSpanEvent, scopeDatapoint, scopeLog, scopeLogBody, scopeProfileSample}

// Config configures the tagguard processor. Every field is documented in
// README.md.
type Config struct {
	// Mode is enforce (change the data) or observe (count what enforce would
	// do and change nothing).
	Mode string `mapstructure:"mode"`
	// Aliases map short names usable in allow and deny lists (env, service,
	// version, commit) to attribute keys.
	Aliases map[string]string `mapstructure:"aliases"`
	// ProtectedKeys are kept by every allow list; only a deny entry naming
	// one exactly (not a glob) removes it.
	ProtectedKeys []string `mapstructure:"protected_keys"`
	// Scopes holds the allow and deny lists per scope.
	Scopes map[string]ScopeRules `mapstructure:"scopes"`
	// Metrics bounds the number of series per metric.
	Metrics MetricsLimits `mapstructure:"metrics"`
	// MaxValuesPerKey caps the distinct values of chosen attribute keys.
	MaxValuesPerKey map[string]int `mapstructure:"max_values_per_key"`
	// OverflowValue replaces values past a key's cap.
	OverflowValue string `mapstructure:"overflow_value"`
	// ValuesWindow is how long a value stays counted against its key's cap
	// after it was last seen.
	ValuesWindow time.Duration `mapstructure:"values_window"`
	// MaxValueDepth is how deep map and slice values may nest in attributes
	// and log bodies; deeper parts are replaced by a string. 0 turns the
	// limit off.
	MaxValueDepth int `mapstructure:"max_value_depth"`
	// Report configures the rate-limited log line naming top offenders.
	Report ReportConfig `mapstructure:"report"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ScopeRules is one scope's allow and deny lists: attribute keys, aliases or
// glob patterns (*, ?, [a-z], {a,b}).
type ScopeRules struct {
	// Allow, when not empty, keeps only matching keys (and protected keys).
	Allow []string `mapstructure:"allow"`
	// Deny removes matching keys; it wins over allow.
	Deny []string `mapstructure:"deny"`
}

// MetricsLimits bounds metric cardinality.
type MetricsLimits struct {
	// MaxSeriesPerMetric is the number of distinct attribute sets a metric
	// (per resource and scope) may have; further ones are folded into one
	// overflow series. 0 turns the limit off.
	MaxSeriesPerMetric int `mapstructure:"max_series_per_metric"`
	// SeriesWindow frees the slot of a series that has not reported for this long.
	SeriesWindow time.Duration `mapstructure:"series_window"`
	// MaxMetrics bounds the number of metric streams tracked at once; data
	// points of streams past it are passed through without a series limit and
	// counted (otelcol_processor_tagguard_metrics_untracked).
	MaxMetrics int `mapstructure:"max_metrics"`
	// MemoryLimitMiB bounds the memory of all the metric state together:
	// the series tracked for the cap, and the last points of folded and
	// merged cumulative series that keep their totals right.
	MemoryLimitMiB int `mapstructure:"memory_limit_mib"`
}

// ReportConfig configures the offenders log line.
type ReportConfig struct {
	// Interval between log lines; 0 disables them.
	Interval time.Duration `mapstructure:"interval"`
	// Top is how many keys and services each line names.
	Top int `mapstructure:"top"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration; every message names the key at fault.
func (cfg *Config) Validate() error {
	var errs []error
	switch cfg.Mode {
	case modeEnforce, modeObserve:
	default:
		errs = append(errs, fmt.Errorf("mode: %q is not one of enforce, observe", cfg.Mode))
	}

	for _, name := range sortedKeys(cfg.Aliases) {
		target := cfg.Aliases[name]
		switch {
		case name == "":
			errs = append(errs, errors.New("aliases: empty alias name"))
		case target == "":
			errs = append(errs, fmt.Errorf("aliases::%s: empty target key", name))
		case target == name:
			errs = append(errs, fmt.Errorf("aliases::%s: points at itself", name))
		case cfg.Aliases[target] != "":
			errs = append(errs, fmt.Errorf("aliases::%s: target %q is itself an alias; point at the attribute key", name, target))
		case attrmatch.IsGlob(name) || attrmatch.IsGlob(target):
			errs = append(errs, fmt.Errorf("aliases::%s: aliases and their targets must be plain keys, not patterns", name))
		}
	}
	for i, k := range cfg.ProtectedKeys {
		if k == "" || attrmatch.IsGlob(k) {
			errs = append(errs, fmt.Errorf("protected_keys[%d]: %q must be a plain attribute key", i, k))
		}
	}

	for _, scope := range sortedKeys(cfg.Scopes) {
		if !slices.Contains(knownScopes, scope) {
			errs = append(errs, fmt.Errorf("scopes::%s: unknown scope (valid: %s)", scope, strings.Join(knownScopes, ", ")))
			continue
		}
		rules := cfg.Scopes[scope]
		for _, list := range []struct {
			name     string
			patterns []string
		}{{"allow", rules.Allow}, {"deny", rules.Deny}} {
			for i, p := range list.patterns {
				if _, err := attrmatch.CompilePattern(p); err != nil {
					errs = append(errs, fmt.Errorf("scopes::%s::%s[%d]: %w", scope, list.name, i, err))
				}
			}
		}
	}

	m := cfg.Metrics
	if m.MaxSeriesPerMetric < 0 {
		errs = append(errs, fmt.Errorf("metrics::max_series_per_metric: must be positive (or 0 to turn the limit off), got %d", m.MaxSeriesPerMetric))
	}
	// The metric state serves the series cap and the merge of series that
	// datapoint rules or value caps collapse, so its bounds are checked even
	// with the cap off.
	if m.SeriesWindow <= 0 {
		errs = append(errs, fmt.Errorf("metrics::series_window: must be positive, got %s", m.SeriesWindow))
	}
	if m.MaxMetrics <= 0 {
		errs = append(errs, fmt.Errorf("metrics::max_metrics: must be positive, got %d", m.MaxMetrics))
	}
	if m.MemoryLimitMiB <= 0 {
		errs = append(errs, fmt.Errorf("metrics::memory_limit_mib: must be positive, got %d", m.MemoryLimitMiB))
	}

	if cfg.MaxValueDepth < 0 {
		errs = append(errs, fmt.Errorf("max_value_depth: must be positive (or 0 to turn the limit off), got %d", cfg.MaxValueDepth))
	}

	for _, key := range sortedKeys(cfg.MaxValuesPerKey) {
		switch n := cfg.MaxValuesPerKey[key]; {
		case key == "" || attrmatch.IsGlob(key):
			errs = append(errs, fmt.Errorf("max_values_per_key: %q must be a plain attribute key", key))
		case n <= 0:
			errs = append(errs, fmt.Errorf("max_values_per_key::%s: must be positive, got %d", key, n))
		}
	}
	if len(cfg.MaxValuesPerKey) > 0 {
		if cfg.OverflowValue == "" {
			errs = append(errs, errors.New("overflow_value: must not be empty when max_values_per_key is set"))
		}
		if cfg.ValuesWindow <= 0 {
			errs = append(errs, fmt.Errorf("values_window: must be positive, got %s", cfg.ValuesWindow))
		}
	}
	if cfg.Report.Interval < 0 {
		errs = append(errs, fmt.Errorf("report::interval: must not be negative, got %s", cfg.Report.Interval))
	}
	if cfg.Report.Interval > 0 && cfg.Report.Top <= 0 {
		errs = append(errs, fmt.Errorf("report::top: must be positive, got %d", cfg.Report.Top))
	}
	return errors.Join(errs...)
}

// matcher compiles one scope's rules.
func (cfg *Config) matcher(rules ScopeRules) (*attrmatch.Matcher, error) {
	return attrmatch.New(attrmatch.Rules{Allow: rules.Allow, Deny: rules.Deny, Aliases: cfg.Aliases, Protected: cfg.ProtectedKeys})
}

// resolve maps an alias to its attribute key; other names are returned as they are.
func (cfg *Config) resolve(name string) string {
	if target, ok := cfg.Aliases[name]; ok {
		return target
	}
	return name
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
