package adaptivesamplingextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/adaptivesamplingextension"

import (
	"errors"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcol-fabric/otelcol-fabric/internal/pressure"
)

// Config configures the adaptive sampling policy. The extension's own
// configuration is the default of every policy that names it; a policy may
// override any key under its own `adaptive_sampling:` section. Every field is
// documented in README.md.
type Config struct {
	// KeyFields are the fields of a trace whose values, together, form its
	// sampling key (see fields.go for the grammar).
	KeyFields []string `mapstructure:"key_fields"`
	// Target is the output rate the policy holds: exactly one of traces or
	// spans per second.
	Target Target `mapstructure:"target"`
	// AdjustmentInterval is how often the per-key rates are recomputed from
	// the moving averages.
	AdjustmentInterval time.Duration `mapstructure:"adjustment_interval"`
	// Weight is the moving average's alpha in (0, 1): larger follows
	// changes in traffic faster.
	Weight float64 `mapstructure:"weight"`
	// AgeOutValue removes a key whose moving average falls below it.
	AgeOutValue float64 `mapstructure:"age_out_value"`
	// InitialSampleRate is the rate of every key until the first interval
	// ends (1 in N).
	InitialSampleRate int `mapstructure:"initial_sample_rate"`
	// MaxKeys caps the keys tracked; a new key beyond it is counted and
	// sampled as the overflow key.
	MaxKeys int `mapstructure:"max_keys"`
	// MaxValueLength cuts each field's value, in bytes, before it goes into
	// a key.
	MaxValueLength int `mapstructure:"max_value_length"`
	// SampleRateAttribute is the span attribute that carries the rate a
	// kept trace was sampled at (1 in N); empty writes none.
	SampleRateAttribute string `mapstructure:"sample_rate_attribute"`
	// TraceState writes the OpenTelemetry sampling threshold (ot=th:...)
	// into each kept span's tracestate.
	TraceState bool `mapstructure:"tracestate"`
	// Pressure scales the target by queuewatch's pressure level.
	Pressure PressureConfig `mapstructure:"pressure"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Target is the policy's output budget.
type Target struct {
	TracesPerSecond float64 `mapstructure:"traces_per_second"`
	SpansPerSecond  float64 `mapstructure:"spans_per_second"`
}

// PressureConfig ties the target to queuewatch's pressure level.
type PressureConfig struct {
	// Extension is the queuewatch extension that publishes the level.
	Extension component.ID `mapstructure:"extension"`
	// Required fails the start when that extension is not configured;
	// otherwise the policy runs on its budget alone.
	Required bool `mapstructure:"required"`
	// Factors multiply the target at each level above ok.
	Factors Factors `mapstructure:"factors"`
}

// Factors are the target multipliers per pressure level, in (0, 1].
type Factors struct {
	Elevated float64 `mapstructure:"elevated"`
	High     float64 `mapstructure:"high"`
	Critical float64 `mapstructure:"critical"`
}

// Limits on the configuration.
const (
	// MinAdjustmentInterval: below it an interval holds too few traces per
	// key for a moving average to mean anything, and the rate table (a pass
	// over every key per bisection step) is rebuilt too often on
	// tail_sampling's decision path.
	MinAdjustmentInterval = time.Second
	// MaxKeysLimit bounds max_keys: about 150 bytes per key plus the key
	// (README, "Memory"), 200 MB at the limit with 54-byte keys.
	MaxKeysLimit = 1_000_000
	// MaxKeyFields bounds key_fields.
	MaxKeyFields = 16
)

var _ component.Config = (*Config)(nil)

// Validate checks the configuration, naming the key at fault.
func (cfg *Config) Validate() error {
	var errs []error
	if len(cfg.KeyFields) > MaxKeyFields {
		errs = append(errs, fmt.Errorf("key_fields: at most %d fields, got %d", MaxKeyFields, len(cfg.KeyFields)))
	}
	seen := make(map[string]int, len(cfg.KeyFields))
	for i, f := range cfg.KeyFields {
		if _, err := parseField(f); err != nil {
			errs = append(errs, fmt.Errorf("key_fields[%d]: %w", i, err))
			continue
		}
		if j, dup := seen[f]; dup {
			errs = append(errs, fmt.Errorf("key_fields[%d]: %q is already key_fields[%d]", i, f, j))
		}
		seen[f] = i
	}
	t := cfg.Target
	switch {
	case math.IsNaN(t.TracesPerSecond) || math.IsInf(t.TracesPerSecond, 0):
		errs = append(errs, fmt.Errorf("target::traces_per_second: must be a finite number, got %v", t.TracesPerSecond))
	case math.IsNaN(t.SpansPerSecond) || math.IsInf(t.SpansPerSecond, 0):
		errs = append(errs, fmt.Errorf("target::spans_per_second: must be a finite number, got %v", t.SpansPerSecond))
	case t.TracesPerSecond == 0 && t.SpansPerSecond == 0:
		errs = append(errs, errors.New("target: set one of traces_per_second or spans_per_second"))
	case t.TracesPerSecond != 0 && t.SpansPerSecond != 0:
		errs = append(errs, fmt.Errorf("target: set one of traces_per_second (%v) or spans_per_second (%v), not both", t.TracesPerSecond, t.SpansPerSecond))
	case t.TracesPerSecond < 0 || t.SpansPerSecond < 0:
		key, v := "traces_per_second", t.TracesPerSecond
		if t.SpansPerSecond != 0 {
			key, v = "spans_per_second", t.SpansPerSecond
		}
		errs = append(errs, fmt.Errorf("target::%s: must be positive, got %v", key, v))
	}
	if cfg.AdjustmentInterval < MinAdjustmentInterval {
		errs = append(errs, fmt.Errorf("adjustment_interval: must be at least %v, got %v", MinAdjustmentInterval, cfg.AdjustmentInterval))
	}
	if !(cfg.Weight > 0 && cfg.Weight < 1) {
		errs = append(errs, fmt.Errorf("weight: must be between 0 and 1 (exclusive), got %v", cfg.Weight))
	}
	if !(cfg.AgeOutValue > 0 && cfg.AgeOutValue <= 1) {
		errs = append(errs, fmt.Errorf("age_out_value: must be above 0 and at most 1, got %v", cfg.AgeOutValue))
	}
	if cfg.InitialSampleRate < 1 {
		errs = append(errs, fmt.Errorf("initial_sample_rate: must be at least 1 (keep 1 in N), got %d", cfg.InitialSampleRate))
	}
	if cfg.MaxKeys < 1 || cfg.MaxKeys > MaxKeysLimit {
		errs = append(errs, fmt.Errorf("max_keys: must be between 1 and %d, got %d", MaxKeysLimit, cfg.MaxKeys))
	}
	if cfg.MaxValueLength < 1 || cfg.MaxValueLength > 4096 {
		errs = append(errs, fmt.Errorf("max_value_length: must be between 1 and 4096 bytes, got %d", cfg.MaxValueLength))
	}
	f := cfg.Pressure.Factors
	for _, c := range []struct {
		name string
		v    float64
	}{{"elevated", f.Elevated}, {"high", f.High}, {"critical", f.Critical}} {
		if !(c.v > 0 && c.v <= 1) {
			errs = append(errs, fmt.Errorf("pressure::factors::%s: must be above 0 and at most 1, got %v", c.name, c.v))
		}
	}
	if f.High > f.Elevated || f.Critical > f.High {
		errs = append(errs, fmt.Errorf("pressure::factors: must not grow as pressure rises (elevated %v >= high %v >= critical %v)", f.Elevated, f.High, f.Critical))
	}
	return errors.Join(errs...)
}

// unit is what the target counts.
func (cfg *Config) unit() string {
	if cfg.Target.SpansPerSecond > 0 {
		return "spans"
	}
	return "traces"
}

// targetPerSecond is the configured target, in its unit.
func (cfg *Config) targetPerSecond() float64 {
	if cfg.Target.SpansPerSecond > 0 {
		return cfg.Target.SpansPerSecond
	}
	return cfg.Target.TracesPerSecond
}

// at is the target multiplier at a pressure level.
func (f Factors) at(level pressure.Level) float64 {
	switch level {
	case pressure.Elevated:
		return f.Elevated
	case pressure.High:
		return f.High
	case pressure.Critical:
		return f.Critical
	default:
		return 1
	}
}

// Unmarshal decodes the configuration over the defaults (or, for a policy,
// over the extension's configuration), with one exception: a `target` given
// replaces the one underneath, so that setting spans_per_second over a
// traces_per_second default does not leave both set.
func (cfg *Config) Unmarshal(conf *confmap.Conf) error {
	if conf.IsSet("target") {
		cfg.Target = Target{}
	}
	type plain Config // without this method, so that it does not recurse
	return conf.Unmarshal((*plain)(cfg))
}
