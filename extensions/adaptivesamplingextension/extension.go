package adaptivesamplingextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/adaptivesamplingextension"

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/tailsamplingprocessor/pkg/samplingpolicy"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/extension"
	"go.uber.org/zap"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/adaptivesamplingextension/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/internal/pressure"
)

// adaptive is the extension: tail_sampling finds it among the host's
// extensions (it implements samplingpolicy.Extension) and asks it for one
// evaluator per policy that names it.
type adaptive struct {
	set extension.Settings
	cfg *Config
	tb  *metadata.TelemetryBuilder
	now func() time.Time

	mu   sync.Mutex
	host component.Host
}

var (
	_ extension.Extension      = (*adaptive)(nil)
	_ samplingpolicy.Extension = (*adaptive)(nil)
)

func newAdaptive(set extension.Settings, cfg *Config) (*adaptive, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &adaptive{set: set, cfg: cfg, tb: tb, now: time.Now}, nil
}

// Start keeps the host, in which NewEvaluator finds queuewatch, and fails
// when queuewatch is required and not configured.
func (a *adaptive) Start(_ context.Context, host component.Host) error {
	a.mu.Lock()
	a.host = host
	a.mu.Unlock()
	_, err := a.source(a.cfg)
	return err
}

// Shutdown releases the telemetry.
func (a *adaptive) Shutdown(context.Context) error {
	a.tb.Shutdown()
	return nil
}

// source finds the pressure source the configuration names: nil when it
// is not configured and not required.
func (a *adaptive) source(cfg *Config) (pressure.Source, error) {
	a.mu.Lock()
	host := a.host
	a.mu.Unlock()
	if host == nil {
		return nil, nil
	}
	id := cfg.Pressure.Extension
	ext, ok := host.GetExtensions()[id]
	if !ok {
		if cfg.Pressure.Required {
			return nil, fmt.Errorf("adaptive_sampling: pressure::extension %q is not configured; add it to extensions and service::extensions, or set pressure::required: false to run on the budget alone", id)
		}
		return nil, nil
	}
	src, ok := ext.(pressure.Source)
	if !ok {
		return nil, fmt.Errorf("adaptive_sampling: extension %q does not publish a pressure level; set pressure::extension to a queuewatch extension", id)
	}
	return src, nil
}

// NewEvaluator returns the evaluator of one tail_sampling policy: the
// extension's configuration with the policy's own keys laid over it.
func (a *adaptive) NewEvaluator(policyName string, raw map[string]any) (samplingpolicy.Evaluator, error) {
	cfg, err := policyConfig(a.cfg, raw)
	if err != nil {
		return nil, fmt.Errorf("policy %q: %w", policyName, err)
	}
	src, err := a.source(cfg)
	if err != nil {
		return nil, err
	}
	if src == nil {
		a.set.Logger.Info("adaptive sampling runs on its budget alone: no pressure source",
			zap.String("policy", policyName), zap.Stringer("pressure_extension", cfg.Pressure.Extension))
	}
	return newEvaluator(policyName, cfg, src, a.tb, a.now), nil
}

// policyConfig lays a policy's keys over the extension's configuration and
// validates the result.
func policyConfig(base *Config, raw map[string]any) (*Config, error) {
	cfg := *base
	cfg.KeyFields = slices.Clone(base.KeyFields)
	if len(raw) > 0 {
		if err := confmap.NewFromStringMap(raw).Unmarshal(&cfg); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}
