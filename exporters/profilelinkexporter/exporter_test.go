package profilelinkexporter

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/xexporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-fabric/otelcol-fabric/exporters/profilelinkexporter/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/internal/pprofconv"
	"github.com/otelcol-fabric/otelcol-fabric/internal/pyroscopetest"
)

var (
	traceA = pcommon.TraceID{0xa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	rootA  = pcommon.SpanID{0xa, 0, 0, 0, 0, 0, 0, 1}
	childA = pcommon.SpanID{0xa, 0, 0, 0, 0, 0, 0, 2}
	leafA  = pcommon.SpanID{0xa, 0, 0, 0, 0, 0, 0, 3}
	// In service B, the local root has a remote parent (childA in service A).
	rootB = pcommon.SpanID{0xb, 0, 0, 0, 0, 0, 0, 1}
	leafB = pcommon.SpanID{0xb, 0, 0, 0, 0, 0, 0, 2}
)

func spans() ptrace.Traces {
	td := ptrace.NewTraces()
	add := func(svc string, id, parent pcommon.SpanID, name string, remote bool) {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetTraceID(traceA)
		s.SetSpanID(id)
		s.SetParentSpanID(parent)
		s.SetName(name)
		if remote {
			s.SetFlags(flagHasIsRemote | flagIsRemote)
		} else if !parent.IsEmpty() {
			s.SetFlags(flagHasIsRemote)
		}
	}
	add("checkout", rootA, pcommon.SpanID{}, "GET /checkout", false)
	add("checkout", childA, rootA, "reserve", false)
	add("checkout", leafA, childA, "db.query", false)
	add("payments", rootB, childA, "POST /charge", true)
	add("payments", leafB, rootB, "sign", false)
	return td
}

func TestSpanIndexLocalRoots(t *testing.T) {
	ix := newSpanIndex(100, time.Minute)
	now := time.Now().UnixNano()
	_, _, ok := ix.root(leafA, now)
	assert.False(t, ok, "unknown before the spans arrive")
	ix.add(spans(), now)
	for _, tc := range []struct {
		span pcommon.SpanID
		root pcommon.SpanID
		name string
	}{
		{leafA, rootA, "GET /checkout"}, {childA, rootA, "GET /checkout"}, {rootA, rootA, "GET /checkout"},
		{leafB, rootB, "POST /charge"}, {rootB, rootB, "POST /charge"},
	} {
		root, name, ok := ix.root(tc.span, now)
		require.True(t, ok, tc.span.String())
		assert.Equal(t, tc.root, root, tc.span.String())
		assert.Equal(t, tc.name, name)
	}
	_, _, ok = ix.root(leafA, now+int64(2*time.Minute))
	assert.False(t, ok, "expired")
}

func TestSpanIndexBounded(t *testing.T) {
	ix := newSpanIndex(3, time.Minute)
	now := time.Now().UnixNano()
	ix.add(spans(), now) // five spans into three slots
	assert.Equal(t, 3, ix.len())
	_, _, ok := ix.root(rootA, now)
	assert.False(t, ok, "the oldest were evicted")
	_, _, ok = ix.root(leafB, now)
	assert.True(t, ok)
}

type pair struct {
	traces   exporter.Traces
	profiles xexporter.Profiles
	tel      *componenttest.Telemetry
	closed   bool // the test shut the exporter down itself
}

// startPair starts the traces and profiles sides of one exporter against a
// stand-in Pyroscope built on the Push API's generated handler.
func startPair(t *testing.T, mod func(*Config)) (*pair, *pyroscopetest.Server) {
	t.Helper()
	standIn := pyroscopetest.New()
	srv := httptest.NewServer(standIn.Handler())
	t.Cleanup(srv.Close)
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoint = srv.URL
	cfg.TenantID = "team-a"
	cfg.LinkWait = 2 * time.Second
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.BackOffConfig.InitialInterval = 20 * time.Millisecond
	cfg.BackOffConfig.MaxInterval = 50 * time.Millisecond
	if mod != nil {
		mod(cfg)
	}
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := exportertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	f := NewFactory()
	ctx := context.Background()
	te, err := f.CreateTraces(ctx, set, cfg)
	require.NoError(t, err)
	pe, err := f.CreateProfiles(ctx, set, cfg)
	require.NoError(t, err)
	require.NoError(t, te.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, pe.Start(ctx, componenttest.NewNopHost()))
	pr := &pair{traces: te, profiles: pe, tel: tel}
	t.Cleanup(func() {
		if !pr.closed {
			_ = te.Shutdown(ctx)
			_ = pe.Shutdown(ctx)
		}
	})
	return pr, standIn
}

// cpuProfile is an OTLP profile batch of service checkout with three
// samples: one linked to leafA through the link table, one naming leafB by
// its span_id label, one without a span. Its time is now, so Pyroscope's
// ingestion window takes it.
func cpuProfile(seq int64) pprofile.Profiles {
	pd := pprofile.NewProfiles()
	dict := pprofconv.NewDict(pd)
	rp := pd.ResourceProfiles().AppendEmpty()
	rp.Resource().Attributes().PutStr("service.name", "checkout")
	rp.Resource().Attributes().PutStr("deployment.environment.name", "prod")
	rp.Resource().Attributes().PutStr("service.version", "1.4.2")
	rp.Resource().Attributes().PutStr("vcs.ref.head.revision", "3f2c9a1b7d")
	rp.Resource().Attributes().PutStr("k8s.pod.uid", "not-a-label")
	p := rp.ScopeProfiles().AppendEmpty().Profiles().AppendEmpty()
	p.SampleType().SetTypeStrindex(dict.Str("cpu"))
	p.SampleType().SetUnitStrindex(dict.Str("nanoseconds"))
	p.SetTime(pcommon.NewTimestampFromTime(time.Now().Add(-10*time.Second + time.Duration(seq))))
	p.SetDurationNano(uint64(10 * time.Second))
	fn := dict.Str("main.work")
	pd.Dictionary().FunctionTable().AppendEmpty().SetNameStrindex(fn)
	loc := pd.Dictionary().LocationTable().AppendEmpty()
	loc.Lines().AppendEmpty().SetFunctionIndex(1)
	pd.Dictionary().StackTable().AppendEmpty().LocationIndices().Append(1)
	for i, mk := range []func(s pprofile.Sample){
		func(s pprofile.Sample) { s.SetLinkIndex(dict.Link(traceA, leafA)) },
		func(s pprofile.Sample) { s.AttributeIndices().Append(dict.Attr(pprofconv.LabelSpanID, leafB.String())) },
		func(pprofile.Sample) {},
	} {
		s := p.Samples().AppendEmpty()
		s.SetStackIndex(1)
		s.Values().Append(int64((i + 1) * 10_000_000))
		s.AttributeIndices().Append(dict.Attr("seq", string(rune('a'+seq%26))))
		mk(s)
	}
	return pd
}

// sampleLabels maps each sample's value to its string labels.
func sampleLabels(p *pyroscopetest.Profile) map[int64]map[string]string {
	out := map[int64]map[string]string{}
	for _, s := range p.Profile.Sample {
		m := map[string]string{}
		for _, l := range s.Label {
			m[p.Profile.StringTable[l.Key]] = p.Profile.StringTable[l.Str]
		}
		out[s.Value[0]] = m
	}
	return out
}

func TestJoinOutOfOrder(t *testing.T) {
	ctx := context.Background()
	pr, standIn := startPair(t, nil)
	// The profile arrives first; its spans 300 ms later.
	done := make(chan error, 1)
	go func() { done <- pr.profiles.ConsumeProfiles(ctx, cpuProfile(0)) }()
	require.Eventually(t, func() bool {
		return gaugeValue(t, pr.tel, "otelcol_exporter_profilelink_profiles_waiting") == 1
	}, 5*time.Second, 10*time.Millisecond, "the push waits for its spans")
	assert.Zero(t, standIn.Requests())
	require.NoError(t, pr.traces.ConsumeTraces(ctx, spans()))
	require.NoError(t, <-done)
	require.Len(t, standIn.Profiles(), 1)
	assert.Empty(t, standIn.Rejected())

	got := standIn.Profiles()[0]
	assert.Equal(t, map[string]string{"__name__": "process_cpu", "service_name": "checkout", "deployment_environment_name": "prod",
		"service_version": "1.4.2", "vcs_ref_head_revision": "3f2c9a1b7d"}, got.Labels,
		"correlation keys as series labels; other resource attributes are not")
	assert.Equal(t, "team-a", got.Tenant)
	assert.Equal(t, []string{"cpu/nanoseconds"}, got.SampleTypes())
	byValue := sampleLabels(got)
	assert.Equal(t, map[string]string{"trace_id": traceA.String(), "span_id": rootA.String(), "seq": "a"}, byValue[10_000_000],
		"linked through the link table to checkout's local root")
	assert.Equal(t, map[string]string{"span_id": rootB.String(), "seq": "a"}, byValue[20_000_000],
		"payments' local root, whose parent is remote")
	assert.Equal(t, map[string]string{"seq": "a"}, byValue[30_000_000], "no span, no labels")
	assert.Equal(t, map[string]int{rootA.String(): 1, rootB.String(): 1}, got.SpanSamples)
	assert.Len(t, got.Series, 1, "span ids create no series in Pyroscope: %v", got.Series)
	assert.Equal(t, int64(2), sumValue(t, pr.tel, "otelcol_exporter_profilelink_samples_linked"))
	assert.Zero(t, gaugeValue(t, pr.tel, "otelcol_exporter_profilelink_profiles_waiting"))
}

func TestSpanNameLabelOptIn(t *testing.T) {
	ctx := context.Background()
	pr, standIn := startPair(t, func(c *Config) { c.SpanNameLabel = true })
	require.NoError(t, pr.traces.ConsumeTraces(ctx, spans()))
	require.NoError(t, pr.profiles.ConsumeProfiles(ctx, cpuProfile(0)))
	got := standIn.Profiles()
	require.Len(t, got, 1)
	byValue := sampleLabels(got[0])
	assert.Equal(t, "GET /checkout", byValue[10_000_000]["span_name"])
	assert.Equal(t, "POST /charge", byValue[20_000_000]["span_name"])
	assert.Len(t, got[0].Series, 3, "span_name is a series label in Pyroscope: one series per root span name, and one without")
}

func TestUnlinkedAfterWait(t *testing.T) {
	ctx := context.Background()
	pr, standIn := startPair(t, func(c *Config) { c.LinkWait = 300 * time.Millisecond })
	require.NoError(t, pr.profiles.ConsumeProfiles(ctx, cpuProfile(0)))
	got := standIn.Profiles()
	require.Len(t, got, 1)
	byValue := sampleLabels(got[0])
	assert.Equal(t, leafA.String(), byValue[10_000_000]["span_id"], "sent with the span it named")
	assert.Equal(t, int64(2), sumValue(t, pr.tel, "otelcol_exporter_profilelink_samples_unlinked"))
}

// TestReplayedProfileDoesNotWait: a profile that ended longer than
// link_wait ago (queued during an outage) goes out at once.
func TestReplayedProfileDoesNotWait(t *testing.T) {
	ctx := context.Background()
	pr, standIn := startPair(t, func(c *Config) { c.LinkWait = time.Minute })
	pd := cpuProfile(0)
	p := pd.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0)
	p.SetTime(pcommon.NewTimestampFromTime(time.Now().Add(-2*time.Minute - 10*time.Second)))
	start := time.Now()
	require.NoError(t, pr.profiles.ConsumeProfiles(ctx, pd))
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Len(t, standIn.Profiles(), 1)
}

// TestOutageRetriesUntilDelivered: Pyroscope answers 503 for a while; the
// queued profiles are retried and each arrives once when it is back.
func TestOutageRetriesUntilDelivered(t *testing.T) {
	ctx := context.Background()
	pr, standIn := startPair(t, func(c *Config) {
		c.LinkWait = 0
		q := exporterhelper.NewDefaultQueueConfig()
		q.Batch = configoptional.None[exporterhelper.BatchConfig]()
		c.QueueConfig = configoptional.Some(q)
		c.BackOffConfig.MaxElapsedTime = 0
	})
	require.NoError(t, pr.traces.ConsumeTraces(ctx, spans()))
	standIn.Down.Store(true)
	for i := range 20 {
		require.NoError(t, pr.profiles.ConsumeProfiles(ctx, cpuProfile(int64(i))))
	}
	require.Eventually(t, func() bool {
		return sumValue(t, pr.tel, "otelcol_exporter_profilelink_profiles_dropped") == 0 && standIn.Requests() == 0
	},
		time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return standIn.Refused() > 20 }, 5*time.Second, 10*time.Millisecond,
		"more 503s than profiles: the queued profiles are retried against the outage")
	assert.Empty(t, standIn.Profiles())
	standIn.Down.Store(false)
	require.Eventually(t, func() bool { return len(standIn.Profiles()) == 20 }, 10*time.Second, 20*time.Millisecond)
	seen := map[int64]int{}
	for _, p := range standIn.Profiles() {
		seen[p.Profile.TimeNanos]++
	}
	assert.Len(t, seen, 20, "every profile once")
	assert.Zero(t, sumValue(t, pr.tel, "otelcol_exporter_profilelink_profiles_dropped"))
	// The stand-in records a profile before it answers, and the exporter
	// counts after the answer: wait for the last pushes to return. Counting
	// per attempt would be past 40 by now (more 503s than profiles above),
	// and a counter does not go back.
	assert.Eventually(t, func() bool { return sumValue(t, pr.tel, "otelcol_exporter_profilelink_samples_linked") == 20*2 }, 5*time.Second, 10*time.Millisecond,
		"linked samples counted once per delivered profile, not per retry")
}

// TestRejectedIsPermanent: what Pyroscope refuses for good (here a profile
// older than its ingestion window) is dropped and counted, not retried.
func TestRejectedIsPermanent(t *testing.T) {
	ctx := context.Background()
	pr, standIn := startPair(t, func(c *Config) { c.LinkWait = 0 })
	pd := cpuProfile(0)
	pd.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0).SetTime(pcommon.NewTimestampFromTime(time.Now().Add(-2 * time.Hour)))
	err := pr.profiles.ConsumeProfiles(ctx, pd)
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), "%v", err)
	assert.Contains(t, err.Error(), "outside of ingestion window")
	assert.Equal(t, 1, standIn.Requests(), "not retried")
	assert.Equal(t, int64(1), sumValue(t, pr.tel, "otelcol_exporter_profilelink_profiles_dropped"))
}

// TestShutdownEndsTheWait: a push waiting for spans goes out when the
// collector stops instead of holding shutdown for link_wait.
func TestShutdownEndsTheWait(t *testing.T) {
	ctx := context.Background()
	pr, standIn := startPair(t, func(c *Config) { c.LinkWait = time.Minute })
	done := make(chan error, 1)
	go func() { done <- pr.profiles.ConsumeProfiles(ctx, cpuProfile(0)) }()
	require.Eventually(t, func() bool {
		return gaugeValue(t, pr.tel, "otelcol_exporter_profilelink_profiles_waiting") == 1
	}, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, pr.traces.Shutdown(ctx))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting push did not end at shutdown")
	}
	assert.Len(t, standIn.Profiles(), 1)
}

// TestProfileNameFromReceiver: the name the pyroscope receiver recorded
// (here mutex, which the sample types alone cannot tell from block) is the
// series' __name__.
func TestProfileNameFromReceiver(t *testing.T) {
	ctx := context.Background()
	pr, standIn := startPair(t, func(c *Config) { c.LinkWait = 0 })
	pd := cpuProfile(0)
	p := pd.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0)
	dict := pd.Dictionary()
	p.SampleType().SetTypeStrindex(int32(dict.StringTable().Len()))
	dict.StringTable().Append("delay")
	kv := dict.AttributeTable().AppendEmpty()
	kv.SetKeyStrindex(int32(dict.StringTable().Len()))
	dict.StringTable().Append(pprofconv.AttrProfileName)
	kv.Value().SetStr("mutex")
	p.AttributeIndices().Append(int32(dict.AttributeTable().Len() - 1))
	require.NoError(t, pr.profiles.ConsumeProfiles(ctx, pd))
	require.Len(t, standIn.Profiles(), 1)
	assert.Equal(t, "mutex", standIn.Profiles()[0].Labels["__name__"])
}

func sumValue(t *testing.T, tel *componenttest.Telemetry, name string) int64 {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	var total int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		total += dp.Value
	}
	return total
}

func gaugeValue(t *testing.T, tel *componenttest.Telemetry, name string) int64 {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	dps := m.Data.(metricdata.Gauge[int64]).DataPoints
	if len(dps) == 0 {
		return 0
	}
	return dps[0].Value
}

// threeProfiles is cpuProfile with two more profiles (other times) in the
// same batch, as a multi-sample-type upload is.
func threeProfiles() pprofile.Profiles {
	pd := cpuProfile(0)
	profiles := pd.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles()
	for i := range 2 {
		p := profiles.AppendEmpty()
		profiles.At(0).CopyTo(p)
		p.SetTime(profiles.At(0).Time() + pcommon.Timestamp(i+1))
	}
	return pd
}

// TestPartialFailureRetriesOnlyTheFailed: each profile is its own push, so
// when Pyroscope throttles one, only that one is retried: nothing stored is
// sent twice.
func TestPartialFailureRetriesOnlyTheFailed(t *testing.T) {
	ctx := context.Background()
	pr, standIn := startPair(t, func(c *Config) { c.LinkWait = 0 })
	standIn.Throttle.Store(1)
	require.NoError(t, pr.profiles.ConsumeProfiles(ctx, threeProfiles()))
	got := standIn.Profiles()
	require.Len(t, got, 3, "every profile stored once")
	seen := map[int64]int{}
	for _, p := range got {
		seen[p.Profile.TimeNanos]++
	}
	assert.Len(t, seen, 3)
	assert.Equal(t, 4, standIn.Requests(), "three pushes and the retry of the throttled one")
}

// TestSampleLabelsPyroscopeWouldRefuse: sample labels become series labels
// in Pyroscope, which refuses the whole profile for one bad name or one
// name too many; the exporter removes those labels (and counts them) so
// the profile is stored.
func TestSampleLabelsPyroscopeWouldRefuse(t *testing.T) {
	ctx := context.Background()
	pr, standIn := startPair(t, func(c *Config) { c.LinkWait = 0 })
	pd := cpuProfile(0)
	p := pd.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0)
	addAttr := func(key, value string) int32 {
		d := pd.Dictionary()
		kv := d.AttributeTable().AppendEmpty()
		kv.SetKeyStrindex(int32(d.StringTable().Len()))
		d.StringTable().Append(key)
		kv.Value().SetStr(value)
		return int32(d.AttributeTable().Len() - 1)
	}
	smp := p.Samples().At(2)
	smp.AttributeIndices().Append(addAttr("http-route", "/cart"))
	for i := range 35 {
		smp.AttributeIndices().Append(addAttr(fmt.Sprintf("k%02d", i), "v"))
	}
	require.NoError(t, pr.profiles.ConsumeProfiles(ctx, pd))
	assert.Empty(t, standIn.Rejected())
	got := standIn.Profiles()
	require.Len(t, got, 1)
	for _, series := range got[0].Series {
		assert.NotContains(t, series, "http-route")
	}
	// 5 series labels leave 25 of Pyroscope's 30 names, taken in name
	// order: k00..k24 stay; k25..k34 and seq (on all three samples) go.
	labels := sampleLabels(got[0])[30_000_000]
	assert.Contains(t, labels, "k24")
	assert.NotContains(t, labels, "k25")
	assert.NotContains(t, labels, "seq")
	assert.Equal(t, int64(1+10+3), sumValue(t, pr.tel, "otelcol_exporter_profilelink_sample_labels_removed"), "http-route, k25..k34, seq x3")
}

// TestProxyStatusErrors: answers that are no connect error are classified by
// their HTTP status: 413 from a proxy is permanent, 502 retryable.
func TestProxyStatusErrors(t *testing.T) {
	for _, tc := range []struct {
		status    int
		permanent bool
	}{
		{http.StatusRequestEntityTooLarge, true},
		{http.StatusBadRequest, true},
		{http.StatusBadGateway, false},
		{http.StatusTooManyRequests, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "proxy says no", tc.status)
		}))
		cfg := createDefaultConfig().(*Config)
		cfg.Endpoint = srv.URL
		p := newPusher(srv.Client(), cfg)
		err := p.push(context.Background(), &pushv1.PushRequest{})
		srv.Close()
		require.Error(t, err)
		assert.Equal(t, tc.permanent, consumererror.IsPermanent(err), "HTTP %d: %v", tc.status, err)
	}
}

// TestPushHeaders: tenant and credentials reach Pyroscope as headers.
func TestPushHeaders(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.BasicAuth = BasicAuth{Username: "u", Password: "p"} }, "Basic dTpw"},
		{func(c *Config) { c.BearerToken = "tok" }, "Bearer tok"},
	} {
		var auth, tenant string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			auth, tenant = r.Header.Get("Authorization"), r.Header.Get("X-Scope-OrgID")
			w.Header().Set("Content-Type", "application/proto")
		}))
		cfg := createDefaultConfig().(*Config)
		cfg.Endpoint = srv.URL
		cfg.TenantID = "team-a"
		tc.mod(cfg)
		_ = newPusher(srv.Client(), cfg).push(context.Background(), &pushv1.PushRequest{})
		srv.Close()
		assert.Equal(t, tc.want, auth)
		assert.Equal(t, "team-a", tenant)
	}
}
