package gobenchreceiver

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/otelcol-fabric/otelcol-fabric/receivers/gobenchreceiver/internal/metadata"
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
	assert.Equal(t, "/v1/benchmarks", def.Path)

	cfg, err := loadConfig(t, "custom")
	require.NoError(t, err)
	require.NoError(t, xconfmap.Validate(cfg))
	assert.Equal(t, "127.0.0.1:40123", cfg.NetAddr.Endpoint)
	assert.Equal(t, "/bench", cfg.Path)
	assert.Equal(t, int64(1<<20), cfg.MaxRequestBodySize)
	assert.Equal(t, 10, cfg.MaxRejectedLines)
	assert.Equal(t, 20, cfg.MaxSamplesPerBenchmark)
	require.True(t, cfg.Auth.HasValue())
	assert.Equal(t, "bearertokenauth/ci", cfg.Auth.Get().AuthenticatorID.String())
	require.True(t, cfg.TLS.HasValue())
	assert.Equal(t, "/etc/tls/tls.crt", cfg.TLS.Get().CertFile)
}

func TestValidateNamesTheField(t *testing.T) {
	for name, want := range map[string][]string{
		"no_endpoint":      {"endpoint: must be set"},
		"bad_path":         {`path: must start with /, got "v1/benchmarks"`},
		"bad_sizes":        {"max_request_body_size: must be positive, got -1", "max_rejected_lines: must not be negative, got -2"},
		"too_many_samples": {"max_samples_per_benchmark: must be in [1, 65536] (the most the benchstat connector reads), got 65537"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := loadConfig(t, name)
			require.NoError(t, err)
			err = xconfmap.Validate(cfg)
			require.Error(t, err)
			for _, w := range want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	_, err := loadConfig(t, "unknown_key")
	require.ErrorContains(t, err, "max_lines")
}
