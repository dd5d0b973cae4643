package versionstampprocessor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-fabric/otelcol-fabric/processors/versionstampprocessor/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/processors/versionstampprocessor/internal/metadatatest"
)

func TestParseCatalogErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"not yaml", "services: [", []string{"line 1"}},
		{"unknown top-level key", "servics: []\n", []string{"line 1", "servics"}},
		{"entry not a mapping", "services:\n  - checkout\n", []string{"line 2: services[0]: an entry must be a mapping"}},
		{"nested value", "services:\n  - service: a\n    version: {major: 1}\n", []string{"line 3: services[0]: version must be a string"}},
		{"no service", "services:\n  - version: 1.0.0\n", []string{"line 2: services[0]: service is required"}},
		{"nothing set", "services:\n  - service: a\n", []string{"line 2: services[0] (a): none of version, commit, build_time is set"}},
		{"bad values", "services:\n  - service: a\n    commit: xyz\n    build_time: soon\n", []string{`commit "xyz": not a commit SHA`, `build_time "soon": not a build time`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseCatalog([]byte(tc.yaml))
			require.Error(t, err)
			for _, want := range tc.want {
				assert.ErrorContains(t, err, want)
			}
		})
	}
	// A truncated (empty) file or one without the list is an error, so a
	// reload during a non-atomic write keeps the last good catalog.
	_, err := parseCatalog(nil)
	assert.ErrorContains(t, err, "the file is empty")
	_, err = parseCatalog([]byte("# nothing here\n"))
	assert.ErrorContains(t, err, "no services list")
	empty, err := parseCatalog([]byte("services: []\n"))
	require.NoError(t, err, "an explicitly empty catalog")
	assert.Equal(t, 0, empty.size())
}

// TestCatalogReloadOfTruncatedFile: a reload that finds the file empty
// (a writer truncated it and has not written yet) keeps the last good catalog.
func TestCatalogReloadOfTruncatedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(path, []byte("services:\n  - service: checkout\n    version: 1.0.0\n"), 0o600))
	var loads []bool
	w := newCatalogWatcher(path, time.Hour, zap.NewNop(), func(ok bool, _ int) { loads = append(loads, ok) })
	require.NoError(t, w.reload())
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	require.Error(t, w.reload())
	v, ok := w.catalog().lookup("checkout", "")
	require.True(t, ok)
	assert.Equal(t, "1.0.0", v[fieldVersion])
	assert.Equal(t, []bool{true, false}, loads)
}

func TestCatalogTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	require.NoError(t, os.WriteFile(path, make([]byte, maxCatalogBytes+1), 0o600))
	_, err := loadCatalogFile(path)
	assert.ErrorContains(t, err, "larger than")
}

// TestCatalogReload writes a catalog, changes it, corrupts it and fixes it,
// all while one processor keeps running: changes are picked up, a corrupt file
// keeps the last good catalog and is reported, and every load is counted.
func TestCatalogReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	// Written as a deploy pipeline should: a complete file renamed into
	// place, so the watcher never reads a half-written one.
	write := func(content string) {
		require.NoError(t, os.WriteFile(path+".tmp", []byte(content), 0o600))
		require.NoError(t, os.Rename(path+".tmp", path))
	}
	write("services:\n  - service: checkout\n    version: 1.0.0\n")

	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	core, logs := observer.New(zap.InfoLevel)
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zap.New(core)

	cfg := defaultCfg(withCatalog(path), func(c *Config) { c.Catalog.ReloadInterval = 10 * time.Millisecond })
	require.NoError(t, cfg.Validate())
	sink := new(consumertest.TracesSink)
	p, err := NewFactory().CreateTraces(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, p.Shutdown(context.Background())) }()

	// versionNow takes the assert.CollectT of an EventuallyWithT condition,
	// which runs on its own goroutine, or t.
	versionNow := func(t require.TestingT) string {
		td := ptrace.NewTraces()
		td.ResourceSpans().AppendEmpty().Resource().Attributes().PutStr("service.name", "checkout")
		require.NoError(t, p.ConsumeTraces(context.Background(), td))
		all := sink.AllTraces()
		v, _ := all[len(all)-1].ResourceSpans().At(0).Resource().Attributes().Get("service.version")
		return v.Str()
	}
	assert.Equal(t, "1.0.0", versionNow(t))

	write("services:\n  - service: checkout\n    version: 1.1.0\n")
	assert.EventuallyWithT(t, func(c *assert.CollectT) { assert.Equal(c, "1.1.0", versionNow(c)) }, 5*time.Second, 10*time.Millisecond, "change picked up")

	write("services:\n  - service: checkout\n    version: [broken\n")
	assert.Eventually(t, func() bool { return logs.FilterMessageSnippet("reload failed").Len() == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, "1.1.0", versionNow(t), "a corrupt file keeps the last good catalog")
	failure := logs.FilterMessageSnippet("reload failed").All()[0]
	assert.Contains(t, failure.ContextMap()["error"], path)
	assert.Contains(t, failure.ContextMap()["error"], "line 2: did not find expected")

	write("services:\n  - service: checkout\n    version: 1.2.0\n")
	assert.EventuallyWithT(t, func(c *assert.CollectT) { assert.Equal(c, "1.2.0", versionNow(c)) }, 5*time.Second, 10*time.Millisecond, "fixed file picked up")
	assert.Equal(t, 1, logs.FilterMessageSnippet("reload failed").Len(), "a failure is logged once, not on every tick")

	metadatatest.AssertEqualProcessorVersionstampCatalogLoads(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("outcome", "failure")), Value: 1},
		{Attributes: attribute.NewSet(attribute.String("outcome", "success")), Value: 3},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorVersionstampCatalogEntries(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
}

// A catalog that is broken when the collector starts fails the start.
func TestCatalogBrokenAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(path, []byte("services:\n  - service: a\n    version: one\n"), 0o600))
	p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type),
		defaultCfg(withCatalog(path)), consumertest.NewNop())
	require.NoError(t, err)
	err = p.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, path)
	assert.ErrorContains(t, err, `line 2: services[0] (a): version "one"`)
	require.NoError(t, p.Shutdown(context.Background()))
}

func TestTelemetryCountsSources(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	cfg := defaultCfg(func(c *Config) { c.Static = Values{Commit: "abcdef0"} })
	p, err := NewFactory().CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)

	td := ptrace.NewTraces()
	a := td.ResourceSpans().AppendEmpty().Resource().Attributes()
	a.PutStr("service.version", "1.0.0")
	a.PutStr("build_time", "not a time")
	a.PutStr("deployment.environment", "staging")
	b := td.ResourceSpans().AppendEmpty().Resource().Attributes()
	b.PutStr("app.version", "2.0.0")
	require.NoError(t, p.ConsumeTraces(context.Background(), td))

	kv := func(f, s string) attribute.Set {
		return attribute.NewSet(attribute.String("field", f), attribute.String("source", s))
	}
	metadatatest.AssertEqualProcessorVersionstampValues(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: kv("version", "existing"), Value: 1},
		{Attributes: kv("version", "resource"), Value: 1},
		{Attributes: kv("commit", "static"), Value: 2},
		{Attributes: kv("build_time", "unknown"), Value: 2},
		{Attributes: kv("environment", "resource"), Value: 1},
		{Attributes: kv("environment", "unknown"), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorVersionstampValuesInvalid(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: kv("build_time", "resource"), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorVersionstampValuesMissing(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("field", "build_time")), Value: 2},
		{Attributes: attribute.NewSet(attribute.String("field", "environment")), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
}
