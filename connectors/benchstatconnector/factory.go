package benchstatconnector // import "github.com/otelcol-fabric/otelcol-fabric/connectors/benchstatconnector"

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"

	"github.com/otelcol-fabric/otelcol-fabric/connectors/benchstatconnector/internal/metadata"
)

// NewFactory returns the benchstat connector factory.
func NewFactory() connector.Factory {
	f := &factory{cores: map[*Config]*sharedCore{}}
	return connector.NewFactory(metadata.Type, createDefaultConfig,
		connector.WithMetricsToMetrics(f.createMetricsToMetrics, metadata.MetricsToMetricsStability),
		connector.WithMetricsToLogs(f.createMetricsToLogs, metadata.MetricsToLogsStability))
}

func createDefaultConfig() component.Config {
	return &Config{
		BaselineBranch:      "main",
		Alpha:               0.05,
		Confidence:          0.95,
		RegressionThreshold: 0.05,
		MaxRuns:             200,
		MaxSeriesPerRun:     10000,
	}
}

// factory shares one state between the metrics and the logs side of a
// connector (one config, one component ID): both see the same runs, and
// the runs are stored once. The collector creates each side separately.
type factory struct {
	mu    sync.Mutex
	cores map[*Config]*sharedCore
}

type sharedCore struct {
	*core
	refs    int
	started int
}

func (f *factory) acquire(set connector.Settings, cfg *Config) (*sharedCore, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.cores[cfg]; ok {
		c.refs++
		return c, nil
	}
	c, err := newCore(set, cfg)
	if err != nil {
		return nil, err
	}
	sc := &sharedCore{core: c, refs: 1}
	f.cores[cfg] = sc
	return sc, nil
}

// start starts the shared state once, when its first side starts.
func (f *factory) start(ctx context.Context, sc *sharedCore, host component.Host) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sc.started++
	if sc.started > 1 {
		return nil
	}
	return sc.start(ctx, host)
}

// shutdown stops it when its last side stops, and forgets it, so that a
// reloaded configuration starts from what storage holds.
func (f *factory) shutdown(ctx context.Context, sc *sharedCore, cfg *Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sc.refs--
	if sc.refs > 0 {
		return nil
	}
	delete(f.cores, cfg)
	if sc.started == 0 {
		return sc.shutdownTelemetry()
	}
	return sc.shutdown(ctx)
}

func (f *factory) createMetricsToMetrics(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Metrics) (connector.Metrics, error) {
	c := cfg.(*Config)
	sc, err := f.acquire(set, c)
	if err != nil {
		return nil, err
	}
	sc.mu.Lock()
	sc.metricsSide = true
	sc.mu.Unlock()
	return &metricsSide{side: side{f: f, sc: sc, cfg: c}, next: next}, nil
}

func (f *factory) createMetricsToLogs(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Logs) (connector.Metrics, error) {
	c := cfg.(*Config)
	sc, err := f.acquire(set, c)
	if err != nil {
		return nil, err
	}
	return &logsSide{side: side{f: f, sc: sc, cfg: c}, next: next}, nil
}
