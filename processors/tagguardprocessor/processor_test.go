package tagguardprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor/internal/metadatatest"
)

func cfgWith(mods ...func(*Config)) *Config {
	cfg := createDefaultConfig().(*Config)
	for _, m := range mods {
		m(cfg)
	}
	return cfg
}

func scopes(s map[string]ScopeRules) func(*Config) {
	return func(c *Config) { c.Scopes = s }
}

// noisy is an attribute set a careless service sends.
var noisy = map[string]any{
	"service.name":                "checkout",
	"deployment.environment.name": "prod",
	"service.version":             "1.2.3",
	"vcs.ref.head.revision":       "abcdef0",
	"k8s.pod.name":                "checkout-7d9",
	"k8s.node.name":               "node-1",
	"http.route":                  "/cart/{id}",
	"http.url":                    "https://shop.example/cart/123?session=abc",
	"user.id":                     "u-123",
	"user.email":                  "a@example.com",
	"trace_id":                    "0123456789abcdef0123456789abcdef",
	"retry":                       int64(2),
}

func keys(m pcommon.Map) []string {
	var out []string
	m.Range(func(k string, _ pcommon.Value) bool {
		out = append(out, k)
		return true
	})
	return out
}

func TestMatcherRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules ScopeRules
		want  []string
	}{
		{
			name:  "no rules keep everything",
			rules: ScopeRules{},
			want:  []string{"service.name", "deployment.environment.name", "service.version", "vcs.ref.head.revision", "k8s.pod.name", "k8s.node.name", "http.route", "http.url", "user.id", "user.email", "trace_id", "retry"},
		},
		{
			name:  "blueprint allow list in its own words keeps protected keys",
			rules: ScopeRules{Allow: []string{"env", "service", "version", "trace_id"}},
			want:  []string{"service.name", "deployment.environment.name", "service.version", "vcs.ref.head.revision", "trace_id"},
		},
		{
			name:  "glob allow",
			rules: ScopeRules{Allow: []string{"k8s.*", "http.{route,method}"}},
			want:  []string{"service.name", "deployment.environment.name", "service.version", "vcs.ref.head.revision", "k8s.pod.name", "k8s.node.name", "http.route"},
		},
		{
			name:  "deny wins over allow",
			rules: ScopeRules{Allow: []string{"k8s.*", "http.*"}, Deny: []string{"k8s.node.*", "http.url"}},
			want:  []string{"service.name", "deployment.environment.name", "service.version", "vcs.ref.head.revision", "k8s.pod.name", "http.route"},
		},
		{
			name:  "deny only",
			rules: ScopeRules{Deny: []string{"user.*", "http.url", "re?ry"}},
			want:  []string{"service.name", "deployment.environment.name", "service.version", "vcs.ref.head.revision", "k8s.pod.name", "k8s.node.name", "http.route", "trace_id"},
		},
		{
			name:  "a deny glob does not remove protected keys",
			rules: ScopeRules{Deny: []string{"*"}},
			want:  []string{"service.name", "deployment.environment.name", "service.version", "vcs.ref.head.revision"},
		},
		{
			name:  "an explicit deny (by alias) removes a protected key",
			rules: ScopeRules{Deny: []string{"*", "commit", "version"}},
			want:  []string{"service.name", "deployment.environment.name"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := cfgWith().matcher(tc.rules)
			require.NoError(t, err)
			attrs := pcommon.NewMap()
			require.NoError(t, attrs.FromRaw(noisy))
			if m.Active {
				attrs.RemoveIf(func(k string, _ pcommon.Value) bool { return !m.Keep(k) })
			}
			assert.ElementsMatch(t, tc.want, keys(attrs))
		})
	}
}

type harness struct {
	cfg      *Config
	tel      *componenttest.Telemetry
	traces   *consumertest.TracesSink
	metrics  *consumertest.MetricsSink
	logs     *consumertest.LogsSink
	profiles *consumertest.ProfilesSink
	tp       interface {
		ConsumeTraces(context.Context, ptrace.Traces) error
	}
	mp interface {
		ConsumeMetrics(context.Context, pmetric.Metrics) error
	}
	lp interface {
		ConsumeLogs(context.Context, plog.Logs) error
	}
	pp interface {
		ConsumeProfiles(context.Context, pprofile.Profiles) error
	}
}

func newHarness(t *testing.T, cfg *Config) *harness {
	t.Helper()
	h := &harness{
		tel:      componenttest.NewTelemetry(),
		traces:   new(consumertest.TracesSink),
		metrics:  new(consumertest.MetricsSink),
		logs:     new(consumertest.LogsSink),
		profiles: new(consumertest.ProfilesSink),
	}
	t.Cleanup(func() { require.NoError(t, h.tel.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(h.tel)
	ctx := context.Background()
	f := NewFactory()
	tp, err := f.CreateTraces(ctx, set, cfg, h.traces)
	require.NoError(t, err)
	mp, err := f.CreateMetrics(ctx, set, cfg, h.metrics)
	require.NoError(t, err)
	lp, err := f.CreateLogs(ctx, set, cfg, h.logs)
	require.NoError(t, err)
	pp, err := f.CreateProfiles(ctx, set, cfg, h.profiles)
	require.NoError(t, err)
	host := componenttest.NewNopHost()
	require.NoError(t, tp.Start(ctx, host))
	require.NoError(t, mp.Start(ctx, host))
	require.NoError(t, lp.Start(ctx, host))
	require.NoError(t, pp.Start(ctx, host))
	t.Cleanup(func() {
		for _, s := range []func(context.Context) error{tp.Shutdown, mp.Shutdown, lp.Shutdown, pp.Shutdown} {
			require.NoError(t, s(ctx))
		}
	})
	h.tp, h.mp, h.lp, h.pp = tp, mp, lp, pp
	h.cfg = cfg
	return h
}

var blueprint = scopes(map[string]ScopeRules{
	"resource":       {Allow: []string{"env", "service", "version", "commit", "k8s.pod.name"}},
	"span":           {Allow: []string{"http.route", "trace_id"}},
	"span_event":     {Deny: []string{"user.*"}},
	"datapoint":      {Allow: []string{"http.route"}},
	"log":            {Allow: []string{"trace_id", "http.route"}},
	"profile_sample": {Allow: []string{"trace_id", "span_id", "thread.name"}},
})

var (
	wantResource = []string{"service.name", "deployment.environment.name", "service.version", "vcs.ref.head.revision", "k8s.pod.name"}
	protected    = []string{"service.name", "deployment.environment.name", "service.version", "vcs.ref.head.revision"}
)

func TestEverySignalAndScope(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, cfgWith(blueprint))

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	require.NoError(t, rs.Resource().Attributes().FromRaw(noisy))
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	require.NoError(t, span.Attributes().FromRaw(noisy))
	ev := span.Events().AppendEmpty()
	require.NoError(t, ev.Attributes().FromRaw(map[string]any{"user.id": "u1", "exception.type": "E"}))
	require.NoError(t, h.tp.ConsumeTraces(ctx, td))
	got := h.traces.AllTraces()[0].ResourceSpans().At(0)
	assert.ElementsMatch(t, wantResource, keys(got.Resource().Attributes()))
	gotSpan := got.ScopeSpans().At(0).Spans().At(0)
	assert.ElementsMatch(t, append([]string{"http.route", "trace_id"}, protected...), keys(gotSpan.Attributes()))
	assert.ElementsMatch(t, []string{"exception.type"}, keys(gotSpan.Events().At(0).Attributes()))

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	require.NoError(t, rm.Resource().Attributes().FromRaw(noisy))
	dp := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty()
	require.NoError(t, dp.Attributes().FromRaw(noisy))
	require.NoError(t, h.mp.ConsumeMetrics(ctx, md))
	gotRM := h.metrics.AllMetrics()[0].ResourceMetrics().At(0)
	assert.ElementsMatch(t, wantResource, keys(gotRM.Resource().Attributes()))
	assert.ElementsMatch(t, append([]string{"http.route"}, protected...),
		keys(gotRM.ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0).Attributes()))

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	require.NoError(t, rl.Resource().Attributes().FromRaw(noisy))
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	require.NoError(t, lr.Attributes().FromRaw(noisy))
	require.NoError(t, lr.Body().SetEmptyMap().FromRaw(map[string]any{"user.id": "u1", "msg": "hi"}))
	require.NoError(t, h.lp.ConsumeLogs(ctx, ld))
	gotRL := h.logs.AllLogs()[0].ResourceLogs().At(0)
	assert.ElementsMatch(t, wantResource, keys(gotRL.Resource().Attributes()))
	gotLR := gotRL.ScopeLogs().At(0).LogRecords().At(0)
	assert.ElementsMatch(t, append([]string{"trace_id", "http.route"}, protected...), keys(gotLR.Attributes()))
	assert.Equal(t, map[string]any{"user.id": "u1", "msg": "hi"}, gotLR.Body().Map().AsRaw(), "the body is untouched unless log_body is configured")

	pd := profileWithSampleAttrs(t, map[string]any{"trace_id": "abc", "user.id": "u1", "thread.name": "main", "http.url": "/x?q"})
	require.NoError(t, pd.ResourceProfiles().At(0).Resource().Attributes().FromRaw(noisy))
	require.NoError(t, h.pp.ConsumeProfiles(ctx, pd))
	gotPD := h.profiles.AllProfiles()[0]
	assert.ElementsMatch(t, wantResource, keys(gotPD.ResourceProfiles().At(0).Resource().Attributes()))
	sample := gotPD.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0).Samples().At(0)
	assert.Equal(t, map[string]any{"trace_id": "abc", "thread.name": "main"},
		pprofile.FromAttributeIndices(gotPD.Dictionary().AttributeTable(), sample, gotPD.Dictionary()).AsRaw())

	// Telemetry: every dropped attribute counted by signal and scope.
	n := int64(len(noisy) - len(wantResource))
	metadatatest.AssertEqualProcessorTagguardAttributesDropped(t, h.tel, []metricdata.DataPoint[int64]{
		{Value: n, Attributes: attribute.NewSet(attribute.String("mode", "enforce"), attribute.String("signal", "traces"), attribute.String("scope", "resource"))},
		{Value: int64(len(noisy) - 6), Attributes: attribute.NewSet(attribute.String("mode", "enforce"), attribute.String("signal", "traces"), attribute.String("scope", "span"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("mode", "enforce"), attribute.String("signal", "traces"), attribute.String("scope", "span_event"))},
		{Value: n, Attributes: attribute.NewSet(attribute.String("mode", "enforce"), attribute.String("signal", "metrics"), attribute.String("scope", "resource"))},
		{Value: int64(len(noisy) - 5), Attributes: attribute.NewSet(attribute.String("mode", "enforce"), attribute.String("signal", "metrics"), attribute.String("scope", "datapoint"))},
		{Value: n, Attributes: attribute.NewSet(attribute.String("mode", "enforce"), attribute.String("signal", "logs"), attribute.String("scope", "resource"))},
		{Value: int64(len(noisy) - 6), Attributes: attribute.NewSet(attribute.String("mode", "enforce"), attribute.String("signal", "logs"), attribute.String("scope", "log"))},
		{Value: n, Attributes: attribute.NewSet(attribute.String("mode", "enforce"), attribute.String("signal", "profiles"), attribute.String("scope", "resource"))},
		{Value: 2, Attributes: attribute.NewSet(attribute.String("mode", "enforce"), attribute.String("signal", "profiles"), attribute.String("scope", "profile_sample"))},
	}, metricdatatest.IgnoreTimestamp())
}

// profileWithSampleAttrs builds a profile with one sample carrying attrs
// through the dictionary's attribute table, as pprofile stores them.
func profileWithSampleAttrs(t *testing.T, attrs map[string]any) pprofile.Profiles {
	pd := pprofile.NewProfiles()
	dict := pd.Dictionary()
	dict.StringTable().Append("")
	sample := pd.ResourceProfiles().AppendEmpty().ScopeProfiles().AppendEmpty().Profiles().AppendEmpty().Samples().AppendEmpty()
	sample.Values().Append(10)
	for k, v := range attrs {
		dict.StringTable().Append(k)
		kv := dict.AttributeTable().AppendEmpty()
		kv.SetKeyStrindex(int32(dict.StringTable().Len() - 1))
		require.NoError(t, kv.Value().FromRaw(v))
		sample.AttributeIndices().Append(int32(dict.AttributeTable().Len() - 1))
	}
	return pd
}

func TestLogBodyWhitelist(t *testing.T) {
	h := newHarness(t, cfgWith(scopes(map[string]ScopeRules{"log_body": {Allow: []string{"msg", "level"}}})))
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	require.NoError(t, lr.Body().SetEmptyMap().FromRaw(map[string]any{"user.id": "u1", "msg": "hi", "level": "info", "password": "x"}))
	lr2 := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().AppendEmpty()
	lr2.Body().SetStr("plain text body stays")
	require.NoError(t, h.lp.ConsumeLogs(context.Background(), ld))
	got := h.logs.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	assert.Equal(t, map[string]any{"msg": "hi", "level": "info"}, got.At(0).Body().Map().AsRaw())
	assert.Equal(t, "plain text body stays", got.At(1).Body().Str())
}

func TestObserveModeChangesNothing(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, cfgWith(blueprint, func(c *Config) {
		c.Mode = modeObserve
		c.MaxValuesPerKey = map[string]int{"http.route": 1}
		c.Metrics.MaxSeriesPerMetric = 2
	}))
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	require.NoError(t, rm.Resource().Attributes().FromRaw(noisy))
	sum := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptySum()
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for i := range 5 {
		dp := sum.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("http.route", []string{"/a", "/b", "/c", "/d", "/e"}[i])
		dp.Attributes().PutStr("user.id", "u")
		dp.SetIntValue(1)
	}
	want := pmetric.NewMetrics()
	md.CopyTo(want)
	require.NoError(t, h.mp.ConsumeMetrics(ctx, md))
	assert.Equal(t, want, h.metrics.AllMetrics()[0], "observe mode must not change the data")

	observeMode := attribute.String("mode", "observe")
	metadatatest.AssertEqualProcessorTagguardDatapointsFolded(t, h.tel, []metricdata.DataPoint[int64]{
		{Value: 3, Attributes: attribute.NewSet(observeMode)},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorTagguardValuesCapped(t, h.tel, []metricdata.DataPoint[int64]{
		{Value: 4, Attributes: attribute.NewSet(observeMode, attribute.String("signal", "metrics"))},
	}, metricdatatest.IgnoreTimestamp())
}

func TestMaxValuesPerKey(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, cfgWith(func(c *Config) {
		c.MaxValuesPerKey = map[string]int{"http.route": 3}
		c.ValuesWindow = time.Minute
		c.Metrics.MaxSeriesPerMetric = 0
	}))
	now := time.Unix(1_800_000_000, 0)
	h.setClock(t, func() time.Time { return now })

	send := func(routes ...string) []string {
		td := ptrace.NewTraces()
		spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		for _, r := range routes {
			spans.AppendEmpty().Attributes().PutStr("http.route", r)
		}
		h.traces.Reset()
		require.NoError(t, h.tp.ConsumeTraces(ctx, td))
		var out []string
		for _, s := range h.traces.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().All() {
			v, _ := s.Attributes().Get("http.route")
			out = append(out, v.Str())
		}
		return out
	}
	assert.Equal(t, []string{"/a", "/b", "/c", "otel.overflow", "/a", "otel.overflow"}, send("/a", "/b", "/c", "/d", "/a", "/e"))
	// Within the window the slots stay taken, even by values not seen since.
	now = now.Add(50 * time.Second)
	assert.Equal(t, []string{"/a", "otel.overflow"}, send("/a", "/d"))
	// /b and /c expire (last seen 70s ago); /a was seen 20s ago and stays.
	now = now.Add(20 * time.Second)
	assert.Equal(t, []string{"/d", "/e", "/a", "otel.overflow"}, send("/d", "/e", "/a", "/f"))
}

// setClock replaces the shared guard's clock.
func (h *harness) setClock(t *testing.T, now func() time.Time) {
	t.Helper()
	g, ok := shared.Get(h.cfg)
	require.True(t, ok)
	g.now = now
}

func TestOffendersAreLogged(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	set := metadatatest.NewSettings(componenttest.NewTelemetry())
	set.Logger = zap.New(core)
	cfg := cfgWith(scopes(map[string]ScopeRules{"span": {Deny: []string{"user.*", "http.url"}}}), func(c *Config) {
		c.Report.Interval = time.Hour // flushed by hand below
		c.Report.Top = 2
	})
	g, err := newGuard(set, cfg)
	require.NoError(t, err)
	td := ptrace.NewTraces()
	for _, svc := range []struct {
		name  string
		spans int
	}{{"checkout", 50}, {"search", 10}} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc.name)
		for range svc.spans {
			s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			require.NoError(t, s.Attributes().FromRaw(map[string]any{"user.id": "u", "user.email": "e", "http.url": "/x"}))
		}
	}
	_, err = g.ProcessTraces(context.Background(), td)
	require.NoError(t, err)
	g.report.flush()
	entries := logs.FilterMessageSnippet("top offending keys").All()
	require.Len(t, entries, 1)
	fields := entries[0].ContextMap()
	// 180 attributes dropped, one in sampleEvery sampled and scaled back.
	assert.InDelta(t, 180, fields["sampled_total"], sampleEvery)
	top := toAny(t, fields["top_services"])
	require.Len(t, top, 2)
	assert.Equal(t, "checkout", top[0].(map[string]any)["name"])
	assert.InDelta(t, 150, top[0].(map[string]any)["count"], sampleEvery)
	assert.Equal(t, "search", top[1].(map[string]any)["name"])
	assert.InDelta(t, 30, top[1].(map[string]any)["count"], sampleEvery)
	assert.Len(t, toAny(t, fields["top_keys"]), 2, "top is 2")

	g.report.flush()
	assert.Len(t, logs.FilterMessageSnippet("top offending keys").All(), 1, "nothing new: no second line")
}

func toAny(t *testing.T, v any) []any {
	t.Helper()
	r, ok := v.([]ranked)
	if ok {
		out := make([]any, len(r))
		for i, e := range r {
			out[i] = map[string]any{"name": e.Name, "count": e.Count}
		}
		return out
	}
	return v.([]any)
}

func TestOddAttributesDoNotPanic(t *testing.T) {
	h := newHarness(t, cfgWith(blueprint, func(c *Config) { c.MaxValuesPerKey = map[string]int{"http.route": 1} }))
	td := ptrace.NewTraces()
	attrs := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().Attributes()
	attrs.PutStr("", "empty key")
	attrs.PutEmpty("http.route")
	attrs.PutEmptyMap("nested").PutStr("user.id", "u")
	attrs.PutEmptySlice("list").AppendEmpty().SetInt(1)
	attrs.PutEmptyBytes("bytes").FromRaw([]byte{0, 1})
	attrs.PutDouble("trace_id", 1.5)
	require.NoError(t, h.tp.ConsumeTraces(context.Background(), td))
	got := h.traces.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
	assert.ElementsMatch(t, []string{"http.route", "trace_id"}, keys(got))
}
