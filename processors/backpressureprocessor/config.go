package backpressureprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/backpressureprocessor"

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-fabric/otelcol-fabric/internal/attrmatch"
	"github.com/otelcol-fabric/otelcol-fabric/internal/pressure"
)

// Config configures the backpressure processor. Every field is documented in
// README.md.
type Config struct {
	// Extension is the queuewatch extension that publishes the level.
	Extension component.ID `mapstructure:"extension"`
	// TierAttribute is the resource attribute that names a service's tier.
	TierAttribute string `mapstructure:"tier_attribute"`
	// Services maps service.name to a tier, for services that do not send
	// the tier attribute.
	Services map[string]string `mapstructure:"services"`
	// DefaultTier is the tier of every other service.
	DefaultTier string `mapstructure:"default_tier"`
	// Elevated, High and Critical are the actions of each level.
	Elevated ElevatedActions `mapstructure:"elevated"`
	High     HighActions     `mapstructure:"high"`
	Critical CriticalActions `mapstructure:"critical"`
	// Admission bounds how long a batch of spans waits for the processor
	// after this one (traces pipeline only).
	Admission AdmissionConfig `mapstructure:"admission"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ElevatedActions: the first level of shedding.
type ElevatedActions struct {
	// DropTiers are shed entirely, every signal.
	DropTiers []string `mapstructure:"drop_tiers"`
	// MinLogSeverity: log records of other non-gold tiers below it are shed
	// (the dynamic log level).
	MinLogSeverity string `mapstructure:"min_log_severity"`
	// LogAttributes, when set, whitelists the attributes of non-gold log
	// records from this level up (keys, aliases or globs).
	LogAttributes []string `mapstructure:"log_attributes"`
}

// HighActions: the second level.
type HighActions struct {
	// DropTiers are reduced to what matters: spans with an error or slower
	// than SlowSpan, log records at MinLogSeverity or above; their metrics
	// are shed. Tiers dropped at elevated stay dropped.
	DropTiers []string `mapstructure:"drop_tiers"`
	// SlowSpan keeps spans at least this long; 0 keeps only error spans.
	SlowSpan time.Duration `mapstructure:"slow_span"`
	// MinLogSeverity for the reduced tiers (and the elevated rule's other tiers).
	MinLogSeverity string `mapstructure:"min_log_severity"`
}

// CriticalActions: the last level.
type CriticalActions struct {
	// RefuseGoldAt is the queue fill at which gold is refused too (with a
	// retryable error, never dropped), before the queue overflows.
	RefuseGoldAt float64 `mapstructure:"refuse_gold_at"`
	// HeldFor is, per signal, how long data that passed this processor may
	// still be held by the processors after it before it reaches the
	// exporters' queues (tail_sampling: its decision_wait plus its 1 s
	// decision tick). The items passed within that time are on their way to
	// the queues; at critical, gold is refused too once they would not fit
	// in the room left in the fullest queue of the signal, because a full
	// queue behind tail_sampling drops what tail_sampling releases into it
	// (the sender was told OK long before). Unset or 0: nothing is held.
	HeldFor map[string]time.Duration `mapstructure:"held_for"`
}

// AdmissionConfig bounds the wait of the traces pipeline for the processor
// after backpressure. tail_sampling with block_on_overflow makes a request
// wait, inside its ConsumeTraces and deaf to the request's context, until
// its decisions free room in num_traces; the request is ingested whenever
// that is, even after its sender gave up and sent it again (a duplicate),
// and a collector shutting down waits for every such request. At most
// MaxConcurrent batches are handed to it at once; the others wait here, for
// MaxWait at most, and are then refused with a retryable error (not
// ingested: the sender's retry is not a duplicate).
type AdmissionConfig struct {
	// MaxWait is how long a batch may wait for its turn; 0 turns the gate
	// off (every batch is handed on at once, however long the next
	// processor takes).
	MaxWait time.Duration `mapstructure:"max_wait"`
	// MaxConcurrent is how many batches the next processor is given at
	// once; 0: GOMAXPROCS.
	MaxConcurrent int `mapstructure:"max_concurrent"`
}

var _ component.Config = (*Config)(nil)

var severities = map[string]plog.SeverityNumber{
	"TRACE": plog.SeverityNumberTrace, "DEBUG": plog.SeverityNumberDebug, "INFO": plog.SeverityNumberInfo,
	"WARN": plog.SeverityNumberWarn, "ERROR": plog.SeverityNumberError, "FATAL": plog.SeverityNumberFatal,
}

func parseSeverity(s string) (plog.SeverityNumber, error) {
	if s == "" {
		return plog.SeverityNumberUnspecified, nil
	}
	n, ok := severities[strings.ToUpper(s)]
	if !ok {
		return 0, fmt.Errorf("%q is not a severity (TRACE, DEBUG, INFO, WARN, ERROR, FATAL)", s)
	}
	return n, nil
}

// Validate checks the configuration, naming the key at fault.
func (cfg *Config) Validate() error {
	var errs []error
	tiers := strings.Join(pressure.Tiers, ", ")
	if cfg.TierAttribute == "" {
		errs = append(errs, errors.New("tier_attribute: must not be empty"))
	}
	if !slices.Contains(pressure.Tiers, cfg.DefaultTier) {
		errs = append(errs, fmt.Errorf("default_tier: unknown tier %q (valid: %s)", cfg.DefaultTier, tiers))
	}
	for _, svc := range sortedKeys(cfg.Services) {
		if t := cfg.Services[svc]; !slices.Contains(pressure.Tiers, t) {
			errs = append(errs, fmt.Errorf("services::%s: unknown tier %q (valid: %s)", svc, t, tiers))
		}
	}
	for _, l := range []struct {
		name  string
		tiers []string
	}{{"elevated::drop_tiers", cfg.Elevated.DropTiers}, {"high::drop_tiers", cfg.High.DropTiers}} {
		for i, t := range l.tiers {
			switch {
			case t == pressure.Gold:
				errs = append(errs, fmt.Errorf("%s[%d]: gold is never shed; it is refused with a retryable error at critical", l.name, i))
			case !slices.Contains(pressure.Tiers, t):
				errs = append(errs, fmt.Errorf("%s[%d]: unknown tier %q (valid: %s)", l.name, i, t, tiers))
			}
		}
	}
	for _, s := range []struct{ name, value string }{
		{"elevated::min_log_severity", cfg.Elevated.MinLogSeverity}, {"high::min_log_severity", cfg.High.MinLogSeverity},
	} {
		if _, err := parseSeverity(s.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		}
	}
	if e, h := sevOrZero(cfg.Elevated.MinLogSeverity), sevOrZero(cfg.High.MinLogSeverity); h != 0 && e > h {
		errs = append(errs, fmt.Errorf("high::min_log_severity (%s) must not be below elevated::min_log_severity (%s): shedding must increase with the level",
			cfg.High.MinLogSeverity, cfg.Elevated.MinLogSeverity))
	}
	for _, t := range cfg.Elevated.DropTiers {
		if len(cfg.High.DropTiers) > 0 && !slices.Contains(cfg.High.DropTiers, t) {
			errs = append(errs, fmt.Errorf("high::drop_tiers must include every tier of elevated::drop_tiers (missing %q): shedding must increase with the level", t))
		}
	}
	if cfg.High.SlowSpan < 0 {
		errs = append(errs, fmt.Errorf("high::slow_span: must not be negative, got %s", cfg.High.SlowSpan))
	}
	if cfg.Critical.RefuseGoldAt <= 0 || cfg.Critical.RefuseGoldAt > 1 {
		errs = append(errs, fmt.Errorf("critical::refuse_gold_at: must be within (0, 1], got %v", cfg.Critical.RefuseGoldAt))
	}
	for _, sig := range slices.Sorted(maps.Keys(cfg.Critical.HeldFor)) {
		d := cfg.Critical.HeldFor[sig]
		switch {
		case sig != "traces":
			errs = append(errs, fmt.Errorf("critical::held_for: %q: only traces are held after this processor (by tail_sampling); valid: traces", sig))
		case d < 0:
			errs = append(errs, fmt.Errorf("critical::held_for::%s: must not be negative, got %s", sig, d))
		case d > maxHeldFor:
			errs = append(errs, fmt.Errorf("critical::held_for::%s: at most %s, got %s", sig, maxHeldFor, d))
		}
	}
	if cfg.Admission.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("admission::max_wait: must not be negative, got %s", cfg.Admission.MaxWait))
	}
	if cfg.Admission.MaxConcurrent < 0 {
		errs = append(errs, fmt.Errorf("admission::max_concurrent: must not be negative, got %d", cfg.Admission.MaxConcurrent))
	}
	for i, p := range cfg.Elevated.LogAttributes {
		if _, err := attrmatch.CompilePattern(p); err != nil {
			errs = append(errs, fmt.Errorf("elevated::log_attributes[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func sevOrZero(s string) plog.SeverityNumber {
	n, _ := parseSeverity(s)
	return n
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
