package profilelinkexporter

import (
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/xexporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-fabric/otelcol-fabric/exporters/profilelinkexporter/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/internal/pprofconv"
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

// pyroscopeStandIn decodes what arrives at /ingest as Pyroscope would:
// multipart form, "profile" part, gzipped pprof.
type pyroscopeStandIn struct {
	mu       sync.Mutex
	received []ingested
	down     atomic.Bool
	tenant   []string
}

type ingested struct {
	name string
	prof *profile.Profile
}

func (p *pyroscopeStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.down.Load() {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path != "/ingest" || r.URL.Query().Get("format") != "pprof" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "profile" {
		http.Error(w, "no profile part", http.StatusBadRequest)
		return
	}
	data, _ := io.ReadAll(part)
	prof, err := profile.ParseData(data)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.received = append(p.received, ingested{r.URL.Query().Get("name"), prof})
	p.tenant = append(p.tenant, r.Header.Get("X-Scope-OrgID"))
	p.mu.Unlock()
}

func (p *pyroscopeStandIn) all() []ingested {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ingested(nil), p.received...)
}

type pair struct {
	traces   exporter.Traces
	profiles xexporter.Profiles
	tel      *componenttest.Telemetry
}

func startPair(t *testing.T, mod func(*Config)) (*pair, *pyroscopeStandIn) {
	t.Helper()
	standIn := &pyroscopeStandIn{}
	srv := httptest.NewServer(standIn)
	t.Cleanup(srv.Close)
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoint = srv.URL
	cfg.TenantID = "team-a"
	cfg.LinkWait = 2 * time.Second
	cfg.Spool.Directory = t.TempDir()
	cfg.Spool.RetryInterval = 100 * time.Millisecond
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
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
	t.Cleanup(func() {
		_ = te.Shutdown(ctx)
		_ = pe.Shutdown(ctx)
	})
	return &pair{traces: te, profiles: pe, tel: tel}, standIn
}

// cpuProfile is an OTLP profile batch of service checkout with three
// samples: one linked to leafA through the link table, one naming leafB by
// its span_id label, one without a span.
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
	p.SetTime(pcommon.Timestamp(1_764_000_000_000_000_000 + seq))
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

func labels(s *profile.Sample) map[string]string {
	out := map[string]string{}
	for k, v := range s.Label {
		out[k] = strings.Join(v, ",")
	}
	return out
}

func TestJoinOutOfOrder(t *testing.T) {
	ctx := context.Background()
	pr, standIn := startPair(t, nil)
	// The profile arrives first; its spans 300 ms later.
	require.NoError(t, pr.profiles.ConsumeProfiles(ctx, cpuProfile(0)))
	time.Sleep(300 * time.Millisecond)
	assert.Empty(t, standIn.all(), "the profile waits for its spans")
	require.NoError(t, pr.traces.ConsumeTraces(ctx, spans()))
	require.Eventually(t, func() bool { return len(standIn.all()) == 1 }, 5*time.Second, 20*time.Millisecond)

	got := standIn.all()[0]
	assert.Equal(t, "checkout{deployment_environment_name=prod,service_version=1.4.2,vcs_ref_head_revision=3f2c9a1b7d}", got.name,
		"correlation keys as labels; other resource attributes are not")
	require.Len(t, got.prof.Sample, 3)
	byValue := map[int64]map[string]string{}
	for _, s := range got.prof.Sample {
		byValue[s.Value[0]] = labels(s)
	}
	assert.Equal(t, map[string]string{"trace_id": traceA.String(), "span_id": rootA.String(), "span_name": "GET /checkout",
		"root_span_id": rootA.String(), "seq": "a"}, byValue[10_000_000], "linked through the link table to checkout's local root")
	assert.Equal(t, map[string]string{"span_id": rootB.String(), "span_name": "POST /charge", "root_span_id": rootB.String(), "seq": "a"},
		byValue[20_000_000], "payments' local root, whose parent is remote")
	assert.Equal(t, map[string]string{"seq": "a"}, byValue[30_000_000], "no span, no labels")
	assert.Equal(t, "team-a", standIn.tenant[0])
	assert.Equal(t, "cpu", got.prof.SampleType[0].Type)
}

func TestUnlinkedAfterWait(t *testing.T) {
	ctx := context.Background()
	pr, standIn := startPair(t, func(c *Config) { c.LinkWait = 300 * time.Millisecond })
	require.NoError(t, pr.profiles.ConsumeProfiles(ctx, cpuProfile(0)))
	require.Eventually(t, func() bool { return len(standIn.all()) == 1 }, 5*time.Second, 20*time.Millisecond)
	for _, s := range standIn.all()[0].prof.Sample {
		assert.NotContains(t, s.Label, "root_span_id")
	}
}

// TestOutageSpoolsAndReplays: Pyroscope is down for a while; profiles are
// spooled to disk and, when it is back, every one arrives once, in order.
func TestOutageSpoolsAndReplays(t *testing.T) {
	ctx := context.Background()
	pr, standIn := startPair(t, func(c *Config) { c.LinkWait = 0 })
	require.NoError(t, pr.traces.ConsumeTraces(ctx, spans()))
	standIn.down.Store(true)
	for i := range 20 {
		require.NoError(t, pr.profiles.ConsumeProfiles(ctx, cpuProfile(int64(i))))
	}
	time.Sleep(300 * time.Millisecond)
	assert.Empty(t, standIn.all())
	standIn.down.Store(false)
	// New profiles while the spool drains go behind the spooled ones.
	for i := 20; i < 25; i++ {
		require.NoError(t, pr.profiles.ConsumeProfiles(ctx, cpuProfile(int64(i))))
	}
	require.Eventually(t, func() bool { return len(standIn.all()) == 25 }, 10*time.Second, 50*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	got := standIn.all()
	require.Len(t, got, 25, "every profile once")
	var times []int64
	for _, g := range got {
		times = append(times, g.prof.TimeNanos)
	}
	assert.True(t, sort.SliceIsSorted(times, func(i, j int) bool { return times[i] < times[j] }), "in order")
}

func TestSpoolBounded(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 2500)
	require.NoError(t, err)
	var dropped int
	for i := range 10 {
		n, err := s.write(&job{Name: "app{}", From: int64(i), pprof: make([]byte, 1000)})
		require.NoError(t, err)
		dropped += n
	}
	assert.Equal(t, 8, dropped, "two ~1 KB files fit in 2500 bytes; the oldest made room")
	j, _, err := s.oldest()
	require.NoError(t, err)
	assert.Equal(t, int64(8), j.From, "the newest two remain")
	// A restart finds them again.
	s2, err := openSpool(dir, 2500)
	require.NoError(t, err)
	j, _, err = s2.oldest()
	require.NoError(t, err)
	assert.Equal(t, int64(8), j.From)
}
