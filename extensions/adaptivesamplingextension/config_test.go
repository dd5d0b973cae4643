package adaptivesamplingextension

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/adaptivesamplingextension/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		id      component.ID
		want    func(*Config)
		wantErr string
	}{
		{id: component.NewID(metadata.Type), want: func(*Config) {}},
		{id: component.NewIDWithName(metadata.Type, "spans"), want: func(c *Config) {
			c.Target = Target{SpansPerSecond: 2000}
			c.KeyFields = []string{"resource.attributes.service.name", "span.attributes.http.route"}
			c.AdjustmentInterval = 30 * time.Second
			c.Pressure.Required = true
		}},
		{id: component.NewIDWithName(metadata.Type, "unknown_field"), wantErr: `key_fields[1]: unknown field "span.route"; a field is one of resource.attributes.<key>`},
		{id: component.NewIDWithName(metadata.Type, "duplicate_field"), wantErr: `key_fields[1]: "span.name" is already key_fields[0]`},
		{id: component.NewIDWithName(metadata.Type, "negative_target"), wantErr: "target::spans_per_second: must be positive, got -5"},
		{id: component.NewIDWithName(metadata.Type, "zero_target"), wantErr: "target: set one of traces_per_second or spans_per_second"},
		{id: component.NewIDWithName(metadata.Type, "nan_target"), wantErr: "target::traces_per_second: must be a finite number, got NaN"},
		{id: component.NewIDWithName(metadata.Type, "inf_target"), wantErr: "target::spans_per_second: must be a finite number, got +Inf"},
		{id: component.NewIDWithName(metadata.Type, "short_interval"), wantErr: "adjustment_interval: must be at least 1s, got 100ms"},
		{id: component.NewIDWithName(metadata.Type, "bad_factor"), wantErr: "pressure::factors::critical: must be above 0 and at most 1, got 0"},
		{id: component.NewIDWithName(metadata.Type, "growing_factors"), wantErr: "pressure::factors: must not grow as pressure rises (elevated 0.5 >= high 0.8 >= critical 0.2)"},
		{id: component.NewIDWithName(metadata.Type, "bad_weight"), wantErr: "weight: must be between 0 and 1 (exclusive), got 1"},
		{id: component.NewIDWithName(metadata.Type, "max_keys"), wantErr: "max_keys: must be between 1 and 1000000, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = xconfmap.Validate(cfg)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			want := createDefaultConfig().(*Config)
			tt.want(want)
			assert.Equal(t, want, cfg)
		})
	}
}

// A policy's keys lay over the extension's: a target in another unit
// replaces the extension's, key_fields replace its list, unknown keys fail.
func TestPolicyConfig(t *testing.T) {
	base := createDefaultConfig().(*Config)
	got, err := policyConfig(base, map[string]any{
		"target":     map[string]any{"spans_per_second": 500},
		"key_fields": []any{"span.name"},
	})
	require.NoError(t, err)
	assert.Equal(t, Target{SpansPerSecond: 500}, got.Target)
	assert.Equal(t, []string{"span.name"}, got.KeyFields)
	assert.Equal(t, DefaultKeyFields, base.KeyFields, "the extension's configuration is left alone")

	_, err = policyConfig(base, map[string]any{"taget": 5})
	require.ErrorContains(t, err, "taget")
	_, err = policyConfig(base, map[string]any{"key_fields": []any{"trace.errors"}})
	require.ErrorContains(t, err, `key_fields[0]: unknown field "trace.errors"`)
}

// Different value lists never make the same key.
func TestKeyFraming(t *testing.T) {
	key := func(a, b string) string {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("a", a)
		rs.Resource().Attributes().PutStr("b", b)
		rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("root")
		v := view(td)
		var buf []byte
		for _, f := range []string{"resource.attributes.a", "resource.attributes.b", "resource.attributes.c"} {
			pf, err := parseField(f)
			require.NoError(t, err)
			buf = pf.appendValue(buf, &v, 256)
		}
		return string(buf)
	}
	assert.NotEqual(t, key("p\x1f=q", "r"), key("p", "q\x1f=r"))
	assert.NotEqual(t, key("pM", ""), key("p", "M"))
	assert.Equal(t, key("p", "q"), key("p", "q"))
}

func TestFieldGrammar(t *testing.T) {
	for _, ok := range []string{"resource.attributes.service.name", "span.attributes.http.route", "span.name", "span.kind", "span.status", "span.http_status_class", "trace.error"} {
		_, err := parseField(ok)
		assert.NoError(t, err, ok)
	}
	for _, bad := range []string{"", "service.name", "resource.attributes.", "span.attributes.", "span", "trace.error.x"} {
		_, err := parseField(bad)
		assert.Error(t, err, bad)
	}
}
