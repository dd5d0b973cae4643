package versionstampprocessor

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-fabric/otelcol-fabric/processors/versionstampprocessor/internal/metadata"
)

// FuzzParseCatalog: any file content gives a catalog or an error, never a
// panic, and every value in an accepted catalog is valid and normalised.
func FuzzParseCatalog(f *testing.F) {
	f.Add([]byte("services:\n  - service: checkout\n    version: 1.4.2\n    commit: 3f2c9a1\n    build_time: 2026-11-20T10:00:00Z\n"))
	f.Add([]byte("services:\n  - service: a\n    environment: staging\n    build_time: \"1763820000\"\n"))
	f.Add([]byte("services: [{service: a, version: v1.0.0}, {service: a, version: 1.0.1}]"))
	f.Add([]byte("services:\n  - *x\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCatalog(data)
		if err != nil {
			return
		}
		for key, values := range c.entries {
			require.NotEmpty(t, key.service)
			for i, v := range values {
				if v == "" {
					continue
				}
				norm, err := field(i).normalize(v)
				require.NoError(t, err, "catalog accepted an invalid %s %q", field(i).name(), v)
				require.Equal(t, norm, v, "catalog value not normalised")
			}
		}
	})
}

// FuzzStamp: arbitrary attribute values never panic, and afterwards each
// output key holds a valid, normalised value or the unknown marker.
func FuzzStamp(f *testing.F) {
	f.Add("1.4.2", "3f2c9a1", "2026-11-20T10:00:00Z", "v1", "COMMIT", "1763820000", "1.0.0", "production", "staging", "dev")
	f.Add("", "", "", "latest", "HEAD", "yesterday", "", "", " ", "\t")
	f.Add("unknown", "unknown", "unknown", "1.0.0-01", "sha-", "-1", "sha-abcdef0", "unknown", "unknown", " qa ")
	s, err := newStamper(processortest.NewNopSettings(metadata.Type), defaultCfg(withCatalog("testdata/catalog.yaml")))
	require.NoError(f, err)
	require.NoError(f, s.watcher.reload())
	f.Fuzz(func(t *testing.T, version, commit, buildTime, appVersion, gitSHA, buildTimeAlias, imageTag, environment, legacyEnv, env string) {
		res := pcommon.NewResource()
		attrs := res.Attributes()
		attrs.PutStr("service.name", "checkout")
		for k, v := range map[string]string{
			"service.version": version, "vcs.ref.head.revision": commit, "build.timestamp": buildTime,
			"app.version": appVersion, "git.commit.sha": gitSHA, "build.time": buildTimeAlias, "container.image.tag": imageTag,
			"deployment.environment.name": environment, "deployment.environment": legacyEnv, "env": env,
		} {
			if v != "" {
				attrs.PutStr(k, v)
			}
		}
		var c counts
		s.stamp(res, &c)
		for f := range fields {
			v, ok := attrs.Get(s.keys[f])
			require.True(t, ok, "%s missing", s.keys[f])
			if v.Str() == s.unknown {
				continue
			}
			norm, err := field(f).normalize(v.Str())
			require.NoError(t, err, "%s = %q passed as valid", s.keys[f], v.Str())
			require.Equal(t, norm, v.Str())
		}
		for alias := range s.aliasSet {
			_, ok := attrs.Get(alias)
			require.False(t, ok, "alias %s left behind", alias)
		}
	})
}
