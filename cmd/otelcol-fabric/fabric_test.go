package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/otelcol"

	"github.com/otelcol-fabric/otelcol-fabric/configs"
	"github.com/otelcol-fabric/otelcol-fabric/internal/buildinfo"
)

func convert(t *testing.T, in map[string]any) *confmap.Conf {
	t.Helper()
	conf := confmap.NewFromStringMap(in)
	conv := newBuildStampConverterFactory("0123456789abcdef0123456789abcdef01234567", "2026-11-24T19:00:00Z").
		Create(confmap.ConverterSettings{})
	require.NoError(t, conv.Convert(context.Background(), conf))
	return conf
}

func TestBuildStampConverterAddsStamps(t *testing.T) {
	conf := convert(t, map[string]any{
		"service": map[string]any{
			"telemetry": map[string]any{"resource": map[string]any{"team": "platform"}},
			"pipelines": map[string]any{"traces": map[string]any{"receivers": []any{"otlp"}}},
		},
	})
	assert.Equal(t, "0123456789abcdef0123456789abcdef01234567", conf.Get("service::telemetry::resource::vcs.ref.head.revision"))
	assert.Equal(t, "2026-11-24T19:00:00Z", conf.Get("service::telemetry::resource::build.timestamp"))
	assert.Equal(t, "platform", conf.Get("service::telemetry::resource::team"), "existing attributes are kept")
	assert.Equal(t, []any{"otlp"}, conf.Get("service::pipelines::traces::receivers"), "the rest of the config is untouched")
}

func TestBuildStampConverterKeepsUserValues(t *testing.T) {
	conf := convert(t, map[string]any{
		"service": map[string]any{"telemetry": map[string]any{"resource": map[string]any{
			"vcs.ref.head.revision": "abc1234",
			"build.timestamp":       nil, // null: the user drops it
		}}},
	})
	assert.Equal(t, "abc1234", conf.Get("service::telemetry::resource::vcs.ref.head.revision"))
	assert.Nil(t, conf.Get("service::telemetry::resource::build.timestamp"))
}

func TestFabricSettingsDefaults(t *testing.T) {
	set := fabricSettings(otelcol.CollectorSettings{})
	require.Len(t, set.ConfigProviderSettings.ResolverSettings.URIs, 1)
	uri := set.ConfigProviderSettings.ResolverSettings.URIs[0]
	assert.True(t, strings.HasPrefix(uri, "yaml:"))
	assert.Equal(t, configs.Local, strings.TrimPrefix(uri, "yaml:"), "the default is the embedded configs/local.yaml")
	assert.Len(t, set.ConfigProviderSettings.ResolverSettings.ConverterFactories, 4, "build stamps, the queuewatch exporter check, the adaptive_sampling policy check and the tail_sampling block_on_overflow check")
	assert.Equal(t, buildinfo.Version, set.BuildInfo.Version)

	given := fabricSettings(otelcol.CollectorSettings{ConfigProviderSettings: otelcol.ConfigProviderSettings{
		ResolverSettings: confmap.ResolverSettings{URIs: []string{"file:/etc/otelcol/config.yaml"}},
	}})
	assert.Equal(t, []string{"file:/etc/otelcol/config.yaml"}, given.ConfigProviderSettings.ResolverSettings.URIs)
}

func TestVersionText(t *testing.T) {
	assert.Equal(t,
		"otelcol-fabric version 1.2.3\ncommit:     abc\nbuild time: 2026-11-24T19:00:00Z\ncollector:  v0.145.0\n",
		versionText("otelcol-fabric", "1.2.3", "abc", "2026-11-24T19:00:00Z", "v0.145.0"))
}
