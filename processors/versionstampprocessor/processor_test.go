package versionstampprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-fabric/otelcol-fabric/internal/buildinfo"
	"github.com/otelcol-fabric/otelcol-fabric/processors/versionstampprocessor/internal/metadata"
)

const (
	sha40 = "0123456789abcdef0123456789abcdef01234567"
	ts    = "2026-11-20T10:00:00Z"
)

// stampTraces runs one resource with attrs through a traces processor built
// from cfg and returns the resource attributes that came out.
func stampTraces(t *testing.T, cfg *Config, attrs map[string]any) map[string]any {
	t.Helper()
	sink := new(consumertest.TracesSink)
	p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, p.Shutdown(context.Background())) }()

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	require.NoError(t, rs.Resource().Attributes().FromRaw(attrs))
	rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("span")
	require.NoError(t, p.ConsumeTraces(context.Background(), td))
	require.Len(t, sink.AllTraces(), 1)
	out := sink.AllTraces()[0].ResourceSpans()
	require.Equal(t, 1, out.Len())
	require.Equal(t, 1, out.At(0).ScopeSpans().At(0).Spans().Len(), "spans pass through")
	return out.At(0).Resource().Attributes().AsRaw()
}

func defaultCfg(mutate ...func(*Config)) *Config {
	cfg := createDefaultConfig().(*Config)
	for _, m := range mutate {
		m(cfg)
	}
	return cfg
}

// noMarker leaves facts no source has absent instead of writing unknown_value.
func noMarker(c *Config) { c.UnknownValue = "" }

func withCatalog(path string) func(*Config) {
	return func(c *Config) { c.Catalog.Path = path }
}

func TestStampSourcesAndPriority(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *Config
		in   map[string]any
		want map[string]any
	}{
		{
			name: "already stamped: untouched",
			cfg:  defaultCfg(),
			in:   map[string]any{"service.name": "checkout", "service.version": "1.4.2", "vcs.ref.head.revision": "3f2c9a1", "build.timestamp": ts, "deployment.environment.name": "production"},
			want: map[string]any{"service.name": "checkout", "service.version": "1.4.2", "vcs.ref.head.revision": "3f2c9a1", "build.timestamp": ts, "deployment.environment.name": "production"},
		},
		{
			name: "legacy aliases normalised to the output keys and removed",
			cfg:  defaultCfg(),
			in:   map[string]any{"service.name": "checkout", "app.version": "v1.4.2", "git.commit.sha": "3F2C9A1B", "build.time": "1763820000"},
			want: map[string]any{"service.name": "checkout", "service.version": "v1.4.2", "vcs.ref.head.revision": "3f2c9a1b", "build.timestamp": "2025-11-22T14:00:00Z", "deployment.environment.name": "unknown"},
		},
		{
			name: "aliases kept when keep_aliases",
			cfg:  defaultCfg(func(c *Config) { c.KeepAliases = true }),
			in:   map[string]any{"version": "1.0.0", "commit": sha40, "build_time": ts},
			want: map[string]any{"version": "1.0.0", "commit": sha40, "build_time": ts, "service.version": "1.0.0", "vcs.ref.head.revision": sha40, "build.timestamp": ts, "deployment.environment.name": "unknown"},
		},
		{
			name: "first valid alias in configured order wins, the invalid one is kept raw",
			cfg:  defaultCfg(),
			in:   map[string]any{"version": "latest", "app.version": "2.0.0"},
			want: map[string]any{"service.version": "2.0.0", "service.version.raw": "latest", "vcs.ref.head.revision": "unknown", "build.timestamp": "unknown", "deployment.environment.name": "unknown"},
		},
		{
			name: "kubernetes label, OCI annotations",
			cfg:  defaultCfg(),
			in: map[string]any{
				"k8s.pod.labels.app.kubernetes.io/version":              "3.1.0",
				"k8s.pod.annotations.org.opencontainers.image.revision": "abcdef1234",
				"k8s.pod.annotations.org.opencontainers.image.created":  ts,
			},
			want: map[string]any{
				"k8s.pod.labels.app.kubernetes.io/version":              "3.1.0",
				"k8s.pod.annotations.org.opencontainers.image.revision": "abcdef1234",
				"k8s.pod.annotations.org.opencontainers.image.created":  ts,
				"service.version": "3.1.0", "vcs.ref.head.revision": "abcdef1234", "build.timestamp": ts,
				"deployment.environment.name": "unknown",
			},
		},
		{
			name: "image tag gives the version; a commit tag the commit",
			cfg:  defaultCfg(),
			in:   map[string]any{"container.image.tag": "v3.2.1"},
			want: map[string]any{"container.image.tag": "v3.2.1", "service.version": "v3.2.1", "vcs.ref.head.revision": "unknown", "build.timestamp": "unknown", "deployment.environment.name": "unknown"},
		},
		{
			name: "image tag sha- prefix",
			cfg:  defaultCfg(),
			in:   map[string]any{"container.image.tag": "sha-9a8b7c6"},
			want: map[string]any{"container.image.tag": "sha-9a8b7c6", "service.version": "unknown", "vcs.ref.head.revision": "9a8b7c6", "build.timestamp": "unknown", "deployment.environment.name": "unknown"},
		},
		{
			name: "catalog by service, environment-specific entry preferred",
			cfg:  defaultCfg(withCatalog("testdata/catalog.yaml")),
			in:   map[string]any{"service.name": "checkout", "deployment.environment.name": "staging"},
			want: map[string]any{"service.name": "checkout", "deployment.environment.name": "staging", "service.version": "1.5.0-rc.1", "vcs.ref.head.revision": "9a8b7c6d5e4f", "build.timestamp": "2025-11-22T14:00:00Z"},
		},
		{
			name: "catalog entry without environment applies to any environment",
			cfg:  defaultCfg(withCatalog("testdata/catalog.yaml")),
			in:   map[string]any{"service.name": "checkout", "deployment.environment.name": "production"},
			want: map[string]any{"service.name": "checkout", "deployment.environment.name": "production", "service.version": "1.4.2", "vcs.ref.head.revision": "3f2c9a1b7d", "build.timestamp": ts},
		},
		{
			name: "catalog fills only the gaps: the data's own version stays",
			cfg:  defaultCfg(withCatalog("testdata/catalog.yaml")),
			in:   map[string]any{"service.name": "checkout", "service.version": "1.4.3"},
			want: map[string]any{"service.name": "checkout", "service.version": "1.4.3", "vcs.ref.head.revision": "3f2c9a1b7d", "build.timestamp": ts, "deployment.environment.name": "unknown"},
		},
		{
			name: "override with catalog first replaces the data's value",
			cfg: defaultCfg(withCatalog("testdata/catalog.yaml"), func(c *Config) {
				c.Override = true
				c.Sources = []string{"catalog", "resource"}
			}),
			in:   map[string]any{"service.name": "checkout", "service.version": "1.4.3"},
			want: map[string]any{"service.name": "checkout", "service.version": "1.4.2", "vcs.ref.head.revision": "3f2c9a1b7d", "build.timestamp": ts, "deployment.environment.name": "unknown"},
		},
		{
			name: "override keeps the data's value when no source has one",
			cfg:  defaultCfg(func(c *Config) { c.Override = true; c.Sources = []string{"static"} }),
			in:   map[string]any{"service.version": "1.4.3"},
			want: map[string]any{"service.version": "1.4.3", "vcs.ref.head.revision": "unknown", "build.timestamp": "unknown", "deployment.environment.name": "unknown"},
		},
		{
			name: "resource before kubernetes: alias beats label",
			cfg:  defaultCfg(),
			in:   map[string]any{"app.version": "1.0.0", "k8s.pod.labels.app.kubernetes.io/version": "2.0.0"},
			want: map[string]any{"service.version": "1.0.0", "k8s.pod.labels.app.kubernetes.io/version": "2.0.0", "vcs.ref.head.revision": "unknown", "build.timestamp": "unknown", "deployment.environment.name": "unknown"},
		},
		{
			name: "kubernetes before resource when so ordered",
			cfg:  defaultCfg(func(c *Config) { c.Sources = []string{"kubernetes", "resource"} }),
			in:   map[string]any{"app.version": "1.0.0", "k8s.pod.labels.app.kubernetes.io/version": "2.0.0"},
			want: map[string]any{"service.version": "2.0.0", "k8s.pod.labels.app.kubernetes.io/version": "2.0.0", "vcs.ref.head.revision": "unknown", "build.timestamp": "unknown", "deployment.environment.name": "unknown"},
		},
		{
			name: "static values last",
			cfg: defaultCfg(func(c *Config) {
				c.Static = Values{Version: "0.9.0", Commit: "ABCDEF0", BuildTime: "1763820000", Environment: " production "}
			}),
			in:   map[string]any{"service.name": "batch-job"},
			want: map[string]any{"service.name": "batch-job", "service.version": "0.9.0", "vcs.ref.head.revision": "abcdef0", "build.timestamp": "2025-11-22T14:00:00Z", "deployment.environment.name": "production"},
		},
		{
			name: "invalid value under the output key moves to raw and the gap is filled",
			cfg:  defaultCfg(func(c *Config) { c.Static = Values{Version: "0.9.0"} }),
			in:   map[string]any{"service.version": "main", "vcs.ref.head.revision": "HEAD"},
			want: map[string]any{"service.version": "0.9.0", "service.version.raw": "main", "vcs.ref.head.revision": "unknown", "vcs.ref.head.revision.raw": "HEAD", "build.timestamp": "unknown", "deployment.environment.name": "unknown"},
		},
		{
			name: "non-string values are read as strings",
			cfg:  defaultCfg(),
			in:   map[string]any{"build.time": int64(1763820000)},
			want: map[string]any{"service.version": "unknown", "vcs.ref.head.revision": "unknown", "build.timestamp": "2025-11-22T14:00:00Z", "deployment.environment.name": "unknown"},
		},
		{
			name: "unknown marker from an earlier pass is replaced",
			cfg:  defaultCfg(func(c *Config) { c.Static = Values{Version: "0.9.0"} }),
			in:   map[string]any{"service.version": "unknown"},
			want: map[string]any{"service.version": "0.9.0", "vcs.ref.head.revision": "unknown", "build.timestamp": "unknown", "deployment.environment.name": "unknown"},
		},
		{
			name: "empty unknown_value leaves keys absent",
			cfg:  defaultCfg(func(c *Config) { c.UnknownValue = "" }),
			in:   map[string]any{"service.name": "x"},
			want: map[string]any{"service.name": "x"},
		},
		{
			name: "upper-case commit normalised even when already stamped",
			cfg:  defaultCfg(),
			in:   map[string]any{"service.version": "1.0.0", "vcs.ref.head.revision": "ABCDEF0", "build.timestamp": ts, "deployment.environment.name": "production"},
			want: map[string]any{"service.version": "1.0.0", "vcs.ref.head.revision": "abcdef0", "build.timestamp": ts, "deployment.environment.name": "production"},
		},
		{
			name: "collector stamp",
			cfg:  defaultCfg(func(c *Config) { c.Collector.Enabled = true }),
			in:   map[string]any{"service.version": "1.0.0", "vcs.ref.head.revision": "abcdef0", "build.timestamp": ts, "deployment.environment.name": "production"},
			want: map[string]any{
				"service.version": "1.0.0", "vcs.ref.head.revision": "abcdef0", "build.timestamp": ts, "deployment.environment.name": "production",
				"otelcol.distribution.version": buildinfo.Version, "otelcol.distribution.commit": buildinfo.Commit,
			},
		},
		{
			name: "empty and odd attributes",
			cfg:  defaultCfg(),
			in:   map[string]any{"": "x", "version": "", "commit": []any{"a", "b"}, "build.time": map[string]any{"k": "v"}},
			want: map[string]any{"": "x", "service.version": "unknown", "vcs.ref.head.revision": "unknown", "vcs.ref.head.revision.raw": `["a","b"]`, "build.timestamp": "unknown", "build.timestamp.raw": `{"k":"v"}`, "deployment.environment.name": "unknown"},
		},

		// The environment. Rows without unknown_value leave the other three
		// facts absent, so that only the environment shows.
		{
			name: "environment: the new key is kept, trimmed",
			cfg:  defaultCfg(noMarker),
			in:   map[string]any{"deployment.environment.name": " production "},
			want: map[string]any{"deployment.environment.name": "production"},
		},
		{
			name: "environment: legacy deployment.environment copied and removed",
			cfg:  defaultCfg(noMarker),
			in:   map[string]any{"deployment.environment": "staging"},
			want: map[string]any{"deployment.environment.name": "staging"},
		},
		{
			name: "environment: env copied, trimmed and removed",
			cfg:  defaultCfg(noMarker),
			in:   map[string]any{"env": " qa "},
			want: map[string]any{"deployment.environment.name": "qa"},
		},
		{
			name: "environment: environment copied and removed",
			cfg:  defaultCfg(noMarker),
			in:   map[string]any{"environment": "dev"},
			want: map[string]any{"deployment.environment.name": "dev"},
		},
		{
			name: "environment: pod label (semconv tag name)",
			cfg:  defaultCfg(noMarker),
			in:   map[string]any{"k8s.pod.label.environment": "production"},
			want: map[string]any{"k8s.pod.label.environment": "production", "deployment.environment.name": "production"},
		},
		{
			name: "environment: pod label env (k8sattributes default tag name)",
			cfg:  defaultCfg(noMarker),
			in:   map[string]any{"k8s.pod.labels.env": "production"},
			want: map[string]any{"k8s.pod.labels.env": "production", "deployment.environment.name": "production"},
		},
		{
			name: "environment: namespace label",
			cfg:  defaultCfg(noMarker),
			in:   map[string]any{"k8s.namespace.label.environment": "staging"},
			want: map[string]any{"k8s.namespace.label.environment": "staging", "deployment.environment.name": "staging"},
		},
		{
			name: "environment: static default",
			cfg:  defaultCfg(noMarker, func(c *Config) { c.Static.Environment = "production" }),
			in:   map[string]any{"service.name": "batch-job"},
			want: map[string]any{"service.name": "batch-job", "deployment.environment.name": "production"},
		},
		{
			name: "environment precedence: new key wins over legacy, legacy removed anyway",
			cfg:  defaultCfg(noMarker),
			in:   map[string]any{"deployment.environment.name": "production", "deployment.environment": "staging"},
			want: map[string]any{"deployment.environment.name": "production"},
		},
		{
			name: "environment precedence: legacy wins over env and environment",
			cfg:  defaultCfg(noMarker),
			in:   map[string]any{"deployment.environment": "staging", "env": "dev", "environment": "qa"},
			want: map[string]any{"deployment.environment.name": "staging"},
		},
		{
			name: "environment precedence: env wins over environment",
			cfg:  defaultCfg(noMarker),
			in:   map[string]any{"env": "dev", "environment": "qa"},
			want: map[string]any{"deployment.environment.name": "dev"},
		},
		{
			name: "environment precedence: attributes win over labels, pod label over namespace label",
			cfg:  defaultCfg(noMarker),
			in:   map[string]any{"environment": "qa", "k8s.pod.label.env": "canary", "k8s.namespace.label.environment": "production"},
			want: map[string]any{"deployment.environment.name": "qa", "k8s.pod.label.env": "canary", "k8s.namespace.label.environment": "production"},
		},
		{
			name: "environment precedence: pod label wins over namespace label",
			cfg:  defaultCfg(noMarker),
			in:   map[string]any{"k8s.pod.label.env": "canary", "k8s.namespace.label.environment": "production"},
			want: map[string]any{"deployment.environment.name": "canary", "k8s.pod.label.env": "canary", "k8s.namespace.label.environment": "production"},
		},
		{
			name: "environment precedence: static default loses to a label",
			cfg:  defaultCfg(noMarker, func(c *Config) { c.Static.Environment = "production" }),
			in:   map[string]any{"k8s.namespace.labels.environment": "staging"},
			want: map[string]any{"k8s.namespace.labels.environment": "staging", "deployment.environment.name": "staging"},
		},
		{
			name: "environment: empty and blank values count as absent, nothing kept raw",
			cfg:  defaultCfg(noMarker),
			in:   map[string]any{"deployment.environment.name": "  ", "deployment.environment": "", "env": " ", "k8s.pod.label.environment": "staging"},
			want: map[string]any{"deployment.environment.name": "staging", "k8s.pod.label.environment": "staging"},
		},
		{
			name: "environment: legacy key kept when keep_aliases",
			cfg:  defaultCfg(noMarker, func(c *Config) { c.KeepAliases = true }),
			in:   map[string]any{"deployment.environment": "staging"},
			want: map[string]any{"deployment.environment": "staging", "deployment.environment.name": "staging"},
		},
		{
			name: "environment: override lets a source placed before resource replace it",
			cfg:  defaultCfg(noMarker, func(c *Config) { c.Override = true; c.Sources = []string{"kubernetes", "resource"} }),
			in:   map[string]any{"deployment.environment.name": "production", "k8s.pod.label.environment": "staging"},
			want: map[string]any{"deployment.environment.name": "staging", "k8s.pod.label.environment": "staging"},
		},
		{
			name: "environment: unknown marker of an earlier pass is not the fast path, static fills it",
			cfg:  defaultCfg(func(c *Config) { c.Static.Environment = "production" }),
			in:   map[string]any{"service.version": "1.0.0", "vcs.ref.head.revision": "abcdef0", "build.timestamp": ts, "deployment.environment.name": "unknown"},
			want: map[string]any{"service.version": "1.0.0", "vcs.ref.head.revision": "abcdef0", "build.timestamp": ts, "deployment.environment.name": "production"},
		},
		{
			name: "environment: resolved first, so the catalog sees an env attribute",
			cfg:  defaultCfg(withCatalog("testdata/catalog.yaml")),
			in:   map[string]any{"service.name": "checkout", "env": "staging"},
			want: map[string]any{"service.name": "checkout", "deployment.environment.name": "staging", "service.version": "1.5.0-rc.1", "vcs.ref.head.revision": "9a8b7c6d5e4f", "build.timestamp": "2025-11-22T14:00:00Z"},
		},
		{
			name: "environment: the unknown marker is no catalog environment",
			cfg:  defaultCfg(withCatalog("testdata/catalog.yaml")),
			in:   map[string]any{"service.name": "checkout"},
			want: map[string]any{"service.name": "checkout", "deployment.environment.name": "unknown", "service.version": "1.4.2", "vcs.ref.head.revision": "3f2c9a1b7d", "build.timestamp": ts},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.cfg.Validate())
			assert.Equal(t, tc.want, stampTraces(t, tc.cfg, tc.in))
		})
	}
}

// Every signal stamps every resource.
func TestStampEverySignal(t *testing.T) {
	cfg := defaultCfg(func(c *Config) {
		c.Static = Values{Version: "1.0.0", Commit: "abcdef0", BuildTime: ts, Environment: "production"}
	})
	want := map[string]any{"service.name": "svc", "service.version": "1.0.0", "vcs.ref.head.revision": "abcdef0", "build.timestamp": ts, "deployment.environment.name": "production"}
	factory := NewFactory()
	set := processortest.NewNopSettings(metadata.Type)
	ctx := context.Background()

	t.Run("metrics", func(t *testing.T) {
		sink := new(consumertest.MetricsSink)
		p, err := factory.CreateMetrics(ctx, set, cfg, sink)
		require.NoError(t, err)
		md := pmetric.NewMetrics()
		for range 2 {
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("service.name", "svc")
			rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(1)
		}
		require.NoError(t, p.ConsumeMetrics(ctx, md))
		for _, rm := range sink.AllMetrics()[0].ResourceMetrics().All() {
			assert.Equal(t, want, rm.Resource().Attributes().AsRaw())
		}
		assert.Equal(t, 2, sink.AllMetrics()[0].DataPointCount())
	})
	t.Run("logs", func(t *testing.T) {
		sink := new(consumertest.LogsSink)
		p, err := factory.CreateLogs(ctx, set, cfg, sink)
		require.NoError(t, err)
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", "svc")
		rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("hello")
		require.NoError(t, p.ConsumeLogs(ctx, ld))
		assert.Equal(t, want, sink.AllLogs()[0].ResourceLogs().At(0).Resource().Attributes().AsRaw())
		assert.Equal(t, 1, sink.LogRecordCount())
	})
	t.Run("profiles", func(t *testing.T) {
		sink := new(consumertest.ProfilesSink)
		p, err := factory.CreateProfiles(ctx, set, cfg, sink)
		require.NoError(t, err)
		pd := pprofile.NewProfiles()
		rp := pd.ResourceProfiles().AppendEmpty()
		rp.Resource().Attributes().PutStr("service.name", "svc")
		rp.ScopeProfiles().AppendEmpty().Profiles().AppendEmpty()
		require.NoError(t, p.ConsumeProfiles(ctx, pd))
		assert.Equal(t, want, sink.AllProfiles()[0].ResourceProfiles().At(0).Resource().Attributes().AsRaw())
	})
	t.Run("traces", func(t *testing.T) {
		assert.Equal(t, want, stampTraces(t, cfg, map[string]any{"service.name": "svc"}))
	})
}

func TestStampIdempotent(t *testing.T) {
	cfg := defaultCfg(withCatalog("testdata/catalog.yaml"))
	once := stampTraces(t, cfg, map[string]any{"service.name": "checkout", "app.version": "x.y", "commit": "3F2C9A1"})
	twice := stampTraces(t, cfg, once)
	assert.Equal(t, once, twice)
}

func TestStampWithoutAttributes(t *testing.T) {
	res := pcommon.NewResource()
	s, err := newStamper(processortest.NewNopSettings(metadata.Type), defaultCfg(func(c *Config) { c.UnknownValue = "" }))
	require.NoError(t, err)
	var c counts
	s.stamp(res, &c)
	assert.Equal(t, 0, res.Attributes().Len())
	assert.Equal(t, [numFields]int64{1, 1, 1, 1}, c.missing)
}
