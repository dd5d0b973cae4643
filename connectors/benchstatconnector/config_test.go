package benchstatconnector

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/otelcol-fabric/otelcol-fabric/connectors/benchstatconnector/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	return cfg, sub.Unmarshal(cfg)
}

func TestLoadConfig(t *testing.T) {
	def, err := loadConfig(t, "")
	require.NoError(t, err)
	require.NoError(t, xconfmap.Validate(def))
	assert.Equal(t, createDefaultConfig(), def)
	assert.Equal(t, 0.05, def.Alpha, "benchstat's default alpha")

	cfg, err := loadConfig(t, "custom")
	require.NoError(t, err)
	require.NoError(t, xconfmap.Validate(cfg))
	id := component.MustNewIDWithName("file_storage", "benchstat")
	assert.Equal(t, &Config{BaselineBranch: "trunk", Alpha: 0.01, Confidence: 0.99, RegressionThreshold: 0.1,
		MaxRuns: 50, MaxSeriesPerRun: 500, Storage: &id}, cfg)
}

func TestValidateNamesTheField(t *testing.T) {
	cfg, err := loadConfig(t, "bad")
	require.NoError(t, err)
	err = xconfmap.Validate(cfg)
	require.Error(t, err)
	for _, want := range []string{
		"baseline_branch: must be set",
		"alpha: must be in (0, 1), got 1.5",
		"confidence: must be in (0, 1), got 0",
		"regression_threshold: must not be negative, got -0.1",
		"max_runs: must be at least 2",
		"max_series_per_run: must be positive, got 0",
	} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = loadConfig(t, "unknown_key")
	require.ErrorContains(t, err, "baseline")
}
