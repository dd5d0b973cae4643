package tagguardprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor/internal/metadata"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg
}

func TestLoadConfig(t *testing.T) {
	def := loadConfig(t, "")
	require.NoError(t, xconfmap.Validate(def))
	assert.Equal(t, createDefaultConfig(), def)
	assert.Equal(t, 2000, def.Metrics.MaxSeriesPerMetric, "the OpenTelemetry SDK's default cardinality limit")

	cfg := loadConfig(t, "blueprint")
	require.NoError(t, xconfmap.Validate(cfg))
	assert.Equal(t, modeObserve, cfg.Mode)
	assert.Equal(t, []string{"env", "service", "version", "commit", "k8s.*"}, cfg.Scopes["resource"].Allow)
	assert.Equal(t, map[string]int{"http.route": 500}, cfg.MaxValuesPerKey)
	assert.Equal(t, MetricsLimits{MaxSeriesPerMetric: 100, SeriesWindow: 5 * time.Minute, MaxMetrics: 500, MemoryLimitMiB: 16}, cfg.Metrics)
	assert.Equal(t, ReportConfig{Interval: 30 * time.Second, Top: 3}, cfg.Report)
	// Aliases given in the config extend the defaults.
	assert.Equal(t, "deployment.environment.name", cfg.Aliases["env"])
}

func TestValidateNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"bad_mode", []string{`mode: "enforcing" is not one of enforce, observe`}},
		{"bad_glob", []string{`scopes::span::allow[0]: invalid glob "http.[route"`}},
		{"unknown_scope", []string{`scopes::spans: unknown scope (valid: resource, span, span_event, datapoint, log, log_body, profile_sample)`}},
		{"self_alias", []string{`aliases::env: points at itself`}},
		{"alias_chain", []string{`aliases::svc: target "service" is itself an alias`}},
		{"negative_series", []string{`metrics::max_series_per_metric: must be positive (or 0 to turn the limit off), got -1`}},
		{"zero_values", []string{`max_values_per_key::http.route: must be positive, got 0`}},
		{"zero_window", []string{`metrics::series_window: must be positive, got 0s`}},
		{"empty_pattern", []string{`scopes::log::deny[0]: empty pattern`}},
		{"glob_value_key", []string{`max_values_per_key: "http.*" must be a plain attribute key`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := xconfmap.Validate(loadConfig(t, tc.name))
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
