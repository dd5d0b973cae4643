package protoguardextension

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/metadata"
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

func TestConfig(t *testing.T) {
	def, err := loadConfig(t, "")
	require.NoError(t, err)
	require.NoError(t, xconfmap.Validate(def))
	assert.Equal(t, createDefaultConfig(), def)
	assert.Equal(t, 64, def.MaxDepth)
	assert.True(t, def.CheckUTF8)
	assert.Equal(t, Paths{Traces: "/v1/traces", Metrics: "/v1/metrics", Logs: "/v1/logs", Profiles: "/v1development/profiles"}, def.Paths)
	assert.Equal(t, int64(128<<20), def.MaxDecodedSize)
	assert.Equal(t, int64(512<<20), def.MaxInFlightDecoded)

	full, err := loadConfig(t, "full")
	require.NoError(t, err)
	require.NoError(t, xconfmap.Validate(full))
	assert.Equal(t, 16, full.MaxDepth)
	assert.False(t, full.CheckUTF8)
	assert.Equal(t, Paths{Traces: "/otlp/v1/traces", Metrics: "/otlp/v1/metrics", Logs: "/otlp/v1/logs", Profiles: "/otlp/v1development/profiles"}, full.Paths)
	assert.Equal(t, int64(64<<20), full.MaxDecodedSize)
	assert.Equal(t, int64(256<<20), full.MaxInFlightDecoded)

	noBudget, err := loadConfig(t, "no_budget")
	require.NoError(t, err)
	require.NoError(t, xconfmap.Validate(noBudget))
	assert.Zero(t, noBudget.MaxInFlightDecoded)

	for name, want := range map[string]string{
		"depth_zero":           "max_depth: must be between 1 and 1000, got 0",
		"depth_too_high":       "max_depth: must be between 1 and 1000, got 1001",
		"bad_path":             `paths::traces: must be a URL path starting with /, got "v1/traces"`,
		"same_path":            `paths::logs: "/v1/traces" is also paths::traces`,
		"decoded_zero":         "max_decoded_size: must be a positive number of bytes, got 0",
		"in_flight_negative":   "max_in_flight_decoded: must be a number of bytes, or 0 to disable, got -1",
		"in_flight_below_size": "max_in_flight_decoded: 67108864 is below max_decoded_size (134217728): a request under the size limit could never be admitted",
	} {
		cfg, err := loadConfig(t, name)
		require.NoError(t, err, name)
		err = xconfmap.Validate(cfg)
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), want, name)
		}
	}
	_, err = loadConfig(t, "unknown_key")
	if assert.Error(t, err) {
		assert.Contains(t, err.Error(), "max_dept")
	}
}
