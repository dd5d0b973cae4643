package queuewatchextension

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/queuewatchextension/internal/metadata"
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

func TestConfig(t *testing.T) {
	def := loadConfig(t, "")
	require.NoError(t, xconfmap.Validate(def))
	assert.Equal(t, Levels{Elevated: 0.5, High: 0.7, Critical: 0.9}, def.Levels)
	assert.Equal(t, SLO{Target: 0.5, Objective: 0.99, Window: 5 * time.Minute}, def.SLO)

	full := loadConfig(t, "full")
	require.NoError(t, xconfmap.Validate(full))
	assert.Equal(t, []string{"otlp_grpc/tempo", "otlp_http/vendor"}, full.Exporters)
	assert.Equal(t, 3*time.Second, full.HoldTime)
	assert.Equal(t, 20*time.Second, full.StaleAfter)

	for name, want := range map[string]string{
		"no_exporters":          "exporters: name at least one exporter",
		"levels_not_increasing": "levels: must increase within (0, 1]: elevated 0.5 < high 0.5 < critical 0.9",
		"bad_endpoint":          `metrics_endpoint: "localhost:8888" is not an http(s) URL`,
		"bad_hysteresis":        "hysteresis: must be at least 0 and below levels::elevated (0.5), got 0.6",
		"duplicate_exporter":    `exporters[1]: "otlp_grpc/backend" is listed twice`,
	} {
		err := xconfmap.Validate(loadConfig(t, name))
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), want, name)
		}
	}
}

func TestCheckExporters(t *testing.T) {
	conf := map[string]any{
		"exporters": map[string]any{
			"otlp_grpc/backend": map[string]any{"endpoint": "x:4317"},
			"otlp_http/off":     map[string]any{"sending_queue": map[string]any{"enabled": false}},
			"debug":             map[string]any{},
		},
		"extensions": map[string]any{
			"health_check": map[string]any{},
			"queuewatch":   map[string]any{"exporters": []any{"otlp_grpc/backend", "otlp_grpc/bakend", "debug", "otlp_http/off"}},
		},
	}
	err := CheckExporters(conf)
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, `extensions::queuewatch: exporters[1]: "otlp_grpc/bakend" is not configured under exporters (configured: debug, otlp_grpc/backend, otlp_http/off)`)
	assert.Contains(t, msg, `exporters[2]: "debug" has no sending queue to watch (type debug)`)
	assert.Contains(t, msg, `exporters[3]: "otlp_http/off" has sending_queue::enabled: false`)
	assert.NotContains(t, msg, "exporters[0]")

	conf["extensions"].(map[string]any)["queuewatch"] = map[string]any{"exporters": []any{"otlp_grpc/backend"}}
	assert.NoError(t, CheckExporters(conf))
}
