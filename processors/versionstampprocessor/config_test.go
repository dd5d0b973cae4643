package versionstampprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/otelcol-fabric/otelcol-fabric/processors/versionstampprocessor/internal/metadata"
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
	assert.Equal(t, createDefaultConfig(), def)
	require.NoError(t, xconfmap.Validate(def))

	full := loadConfig(t, "full")
	require.NoError(t, xconfmap.Validate(full))
	assert.Equal(t, []string{"catalog", "resource", "kubernetes", "static"}, full.Sources)
	assert.True(t, full.Override)
	assert.True(t, full.KeepAliases)
	assert.Equal(t, []string{"app.version"}, full.Aliases.Version)
	assert.Equal(t, "deployment.environment.name", full.Keys.Environment)
	assert.Equal(t, []string{"deployment.environment", "env"}, full.Aliases.Environment)
	assert.Equal(t, []string{"k8s.namespace.labels.environment"}, full.Kubernetes.EnvironmentKeys)
	assert.Equal(t, "testdata/catalog.yaml", full.Catalog.Path)
	assert.Equal(t, 30*time.Second, full.Catalog.ReloadInterval)
	assert.Equal(t, Values{Version: "0.9.0", Commit: "abcdef0", BuildTime: "2026-11-01T00:00:00Z", Environment: "production"}, full.Static)
	assert.Empty(t, full.UnknownValue)
	assert.Equal(t, "_raw", full.RawSuffix)
	assert.Equal(t, CollectorStamp{Enabled: true, VersionKey: "collector.version", CommitKey: "collector.commit"}, full.Collector)
}

func TestValidateRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"unknown_source", []string{`sources[1]: unknown source "git"`, "resource, kubernetes, catalog, static"}},
		{"duplicate_source", []string{`sources[2]: "resource" is listed twice`}},
		{"no_sources", []string{"sources must name at least one"}},
		{"duplicate_key", []string{`keys::commit: "service.version" is already the key of keys::version`}},
		{"alias_is_output", []string{
			`aliases::version: "service.version" is an output key`,
			`aliases::environment: "deployment.environment.name" is an output key (keys::environment)`,
		}},
		{"alias_twice", []string{`aliases::commit: "version" is already an alias in aliases::version`}},
		{"bad_static", []string{`static::version: not a semantic version`, `static::commit: not a commit SHA`, `static::build_time: not a build time`, `static::environment: empty value`}},
		{"unknown_passes", []string{`unknown_value "1.0.0" would pass as a real version`}},
		{"missing_catalog", []string{"catalog::path", "testdata/does-not-exist.yaml", "no such file"}},
		{"broken_catalog", []string{
			"testdata/catalog_broken.yaml",
			`line 4: services[1] (search): version "latest": not a semantic version`,
			`line 6: services[2]: service "checkout" environment "" is already listed at line 2`,
			`line 8: services[3]: unknown key "servce"`,
		}},
		{"bad_interval", []string{"catalog::reload_interval must be positive"}},
		{"empty_raw_suffix", []string{"raw_suffix must not be empty"}},
		{"empty_environment_key", []string{"keys::environment must not be empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := xconfmap.Validate(loadConfig(t, tc.name))
			require.Error(t, err)
			for _, want := range tc.want {
				assert.ErrorContains(t, err, want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		f         field
		in, want  string
		wantError bool
	}{
		{f: fieldVersion, in: "1.4.2", want: "1.4.2"},
		{f: fieldVersion, in: "v1.4.2", want: "v1.4.2"},
		{f: fieldVersion, in: " 1.5.0-rc.1+build.7 ", want: "1.5.0-rc.1+build.7"},
		{f: fieldVersion, in: "1.4", wantError: true},
		{f: fieldVersion, in: "v1", wantError: true},
		{f: fieldVersion, in: "latest", wantError: true},
		{f: fieldVersion, in: "1.4.2.7", wantError: true},
		{f: fieldVersion, in: "", wantError: true},
		{f: fieldVersion, in: "1.0.0+001.sha-5114f85", want: "1.0.0+001.sha-5114f85"},
		{f: fieldVersion, in: "1.0.0-alpha.0.x-y", want: "1.0.0-alpha.0.x-y"},
		{f: fieldVersion, in: "10.20.30", want: "10.20.30"},
		{f: fieldVersion, in: "1.0.0-01", wantError: true},
		{f: fieldVersion, in: "1.0.0-alpha..1", wantError: true},
		{f: fieldVersion, in: "1.0.0-", wantError: true},
		{f: fieldVersion, in: "1.0.0+", wantError: true},
		{f: fieldVersion, in: "01.0.0", wantError: true},
		{f: fieldVersion, in: "1.0.0_beta", wantError: true},
		{f: fieldVersion, in: "vv1.0.0", wantError: true},
		{f: fieldCommit, in: "3f2c9a1", want: "3f2c9a1"},
		{f: fieldCommit, in: "3F2C9A1B7D", want: "3f2c9a1b7d"},
		{f: fieldCommit, in: "0123456789abcdef0123456789abcdef01234567", want: "0123456789abcdef0123456789abcdef01234567"},
		{f: fieldCommit, in: "3f2c9a", wantError: true},
		{f: fieldCommit, in: "0123456789abcdef0123456789abcdef012345678", wantError: true},
		{f: fieldCommit, in: "3f2c9ag", wantError: true},
		{f: fieldBuildTime, in: "2026-11-20T10:00:00Z", want: "2026-11-20T10:00:00Z"},
		{f: fieldBuildTime, in: "2026-11-20T11:00:00.123+01:00", want: "2026-11-20T10:00:00Z"},
		{f: fieldBuildTime, in: "1763820000", want: "2025-11-22T14:00:00Z"},
		{f: fieldBuildTime, in: "1763820000000", wantError: true}, // milliseconds
		{f: fieldBuildTime, in: "2026-11-20", wantError: true},
		{f: fieldBuildTime, in: "yesterday", wantError: true},
		{f: fieldEnvironment, in: "production", want: "production"},
		{f: fieldEnvironment, in: " Staging-EU ", want: "Staging-EU"},
		{f: fieldEnvironment, in: " \t", wantError: true},
	} {
		got, err := tc.f.normalize(tc.in)
		if tc.wantError {
			assert.Error(t, err, "%s %q", tc.f.name(), tc.in)
			continue
		}
		assert.NoError(t, err, "%s %q", tc.f.name(), tc.in)
		assert.Equal(t, tc.want, got, "%s %q", tc.f.name(), tc.in)
	}
}

func TestImageTagFacts(t *testing.T) {
	for _, tc := range []struct {
		tag   string
		f     field
		value string
		ok    bool
	}{
		{"1.4.2", fieldVersion, "1.4.2", true},
		{"v2.0.0-rc.1", fieldVersion, "v2.0.0-rc.1", true},
		{"sha-3f2c9a1", fieldCommit, "3f2c9a1", true},
		{"git-3F2C9A1B", fieldCommit, "3f2c9a1b", true},
		{"g3f2c9a1", fieldCommit, "3f2c9a1", true},
		{"3f2c9a1b7d", fieldCommit, "3f2c9a1b7d", true},
		{"20261124", 0, "", false}, // a date, not a commit
		{"latest", 0, "", false},
		{"main", 0, "", false},
		{"", 0, "", false},
	} {
		f, value, ok := imageTagFacts(tc.tag)
		assert.Equal(t, tc.ok, ok, tc.tag)
		if tc.ok {
			assert.Equal(t, tc.f, f, tc.tag)
			assert.Equal(t, tc.value, value, tc.tag)
		}
	}
}
