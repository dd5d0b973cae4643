package queuewatchextension

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/queuewatchextension/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/internal/pressure"
)

// fakeCollector serves an exposition like the collector's own /metrics,
// with queue sizes the test sets.
type fakeCollector struct {
	mu    sync.Mutex
	sizes map[string]float64 // "exporter/data_type" -> size
}

func (f *fakeCollector) set(key string, size float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sizes[key] = size
}

func (f *fakeCollector) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	b.WriteString("# HELP otelcol_exporter_queue_capacity Fixed capacity of the retry queue (in batches).\n# TYPE otelcol_exporter_queue_capacity gauge\n")
	for key := range f.sizes {
		exp, dt, _ := strings.Cut(key, "|")
		fmt.Fprintf(&b, "otelcol_exporter_queue_capacity{data_type=%q,exporter=%q,otel_scope_name=\"go.opentelemetry.io/collector/exporter/exporterhelper\"} 100\n", dt, exp)
	}
	b.WriteString("# HELP otelcol_exporter_queue_size Current size of the retry queue (in batches).\n# TYPE otelcol_exporter_queue_size gauge\n")
	for key, size := range f.sizes {
		exp, dt, _ := strings.Cut(key, "|")
		fmt.Fprintf(&b, "otelcol_exporter_queue_size{data_type=%q,exporter=%q,otel_scope_name=\"go.opentelemetry.io/collector/exporter/exporterhelper\"} %v\n", dt, exp, size)
	}
	b.WriteString("# TYPE target_info gauge\ntarget_info{service_name=\"otelcol-fabric\"} 1\n")
	_, _ = w.Write([]byte(b.String()))
}

func newTestWatcher(t *testing.T, fc *fakeCollector) (*watcher, *componenttest.Telemetry) {
	t.Helper()
	srv := httptest.NewServer(fc)
	t.Cleanup(srv.Close)
	cfg := createDefaultConfig().(*Config)
	cfg.MetricsEndpoint = srv.URL + "/metrics"
	cfg.Exporters = []string{"otlp_grpc/backend", "otlp_http/vendor"}
	cfg.HoldTime = 0
	cfg.Status.NetAddr.Endpoint = ""
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := extensiontest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	w, err := newWatcher(set, cfg)
	require.NoError(t, err)
	return w, tel
}

func TestMeasureReadsQueues(t *testing.T) {
	fc := &fakeCollector{sizes: map[string]float64{
		"otlp_grpc/backend|traces": 10, "otlp_grpc/backend|logs": 20,
		"otlp_http/vendor|metrics": 5, "otlp_http/other|traces": 99, // not watched
	}}
	w, _ := newTestWatcher(t, fc)
	_, _, ok := w.Room("traces")
	assert.False(t, ok, "no room before a measurement")
	now := time.Now()
	w.measure(now)
	assert.Equal(t, pressure.OK, w.Level())
	assert.InDelta(t, 0.2, w.Fill(), 1e-9, "the fullest watched queue: backend logs")
	// Room per signal, from the watched queues only (capacity 100 each).
	for sig, want := range map[string]float64{"traces": 90, "logs": 80, "metrics": 95} {
		room, at, ok := w.Room(sig)
		require.True(t, ok, sig)
		assert.InDelta(t, want, room, 1e-9, sig)
		assert.Equal(t, now, at, sig)
	}
	_, _, ok = w.Room("profiles")
	assert.False(t, ok, "no watched queue of the signal")

	fc.set("otlp_grpc/backend|logs", 75)
	w.measure(now.Add(time.Second))
	assert.Equal(t, pressure.High, w.Level())
	fc.set("otlp_http/vendor|metrics", 95)
	w.measure(now.Add(2 * time.Second))
	assert.Equal(t, pressure.Critical, w.Level())

	st := w.status(now.Add(2 * time.Second))
	assert.Equal(t, "critical", st.Level)
	require.Len(t, st.Queues, 2)
	assert.InDelta(t, 0.75, st.Queues[0].Fill, 1e-9)
	assert.InDelta(t, 0.95, st.Queues[1].Fill, 1e-9)
	assert.Len(t, st.History, 3)
	assert.InDelta(t, 1.0/3.0, st.SLO.Compliance, 1e-9, "one of three measurements below the 50%% target")
	assert.False(t, st.SLO.Met)
}

// statusHost records the component status events the extension reports.
type statusHost struct {
	component.Host
	mu     sync.Mutex
	events []*componentstatus.Event
}

func (h *statusHost) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

func (h *statusHost) statuses() []componentstatus.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []componentstatus.Status
	for _, ev := range h.events {
		out = append(out, ev.Status())
	}
	return out
}

// TestScrapeFailureStaleness: while the metrics endpoint fails the level
// holds, then, once the last measurement is older than stale_after, falls
// one step per interval, counted and reported as a recoverable error, until
// a measurement succeeds again. (It used to hold at critical for as long as
// the endpoint failed, refusing all but gold.)
func TestScrapeFailureStaleness(t *testing.T) {
	fc := &fakeCollector{sizes: map[string]float64{"otlp_grpc/backend|traces": 95, "otlp_http/vendor|traces": 0}}
	w, tel := newTestWatcher(t, fc)
	w.cfg.StaleAfter = 5 * time.Second
	host := &statusHost{Host: componenttest.NewNopHost()}
	w.host = host
	t0 := time.Now()
	w.measure(t0)
	require.Equal(t, pressure.Critical, w.Level())
	endpoint := w.cfg.MetricsEndpoint
	w.cfg.MetricsEndpoint = "http://127.0.0.1:1/metrics"
	w.measure(t0.Add(time.Second))
	w.measure(t0.Add(4 * time.Second))
	assert.Equal(t, pressure.Critical, w.Level(), "the level holds within stale_after")
	assert.Equal(t, []componentstatus.Status{componentstatus.StatusRecoverableError}, host.statuses(), "reported once")
	for i, want := range []pressure.Level{pressure.High, pressure.Elevated, pressure.OK, pressure.OK} {
		w.measure(t0.Add(time.Duration(5+i) * time.Second))
		assert.Equal(t, want, w.Level(), "stale step %d", i)
	}
	m, err := tel.GetMetric("otelcol_queuewatch_stale_decays")
	require.NoError(t, err)
	assert.Equal(t, int64(3), m.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
	w.cfg.MetricsEndpoint = endpoint
	w.measure(t0.Add(10 * time.Second))
	assert.Equal(t, pressure.Critical, w.Level(), "a fresh measurement counts again")
	assert.Equal(t, []componentstatus.Status{componentstatus.StatusRecoverableError, componentstatus.StatusOK}, host.statuses())
}

func TestMissingExporterIsReported(t *testing.T) {
	fc := &fakeCollector{sizes: map[string]float64{"otlp_grpc/backend|traces": 1}}
	w, _ := newTestWatcher(t, fc)
	core, logs := observer.New(zap.WarnLevel)
	w.logger = zap.New(core)
	assert.False(t, w.status(time.Now()).Queues[0].Reporting, "nothing measured yet")
	w.measure(time.Now())
	warned := logs.FilterField(zap.String("exporter", "otlp_http/vendor")).All()
	require.Len(t, warned, 1, "missing from the very first measurement: warned")
	assert.Contains(t, warned[0].Message, "reports no queue")
	st := w.status(time.Now())
	assert.True(t, st.Queues[0].Reporting)
	assert.False(t, st.Queues[1].Reporting, "otlp_http/vendor reports no queue")
}

// populated is a watcher with a few minutes of history, shedding and
// latencies, serving its status page.
func populated(t *testing.T) *httptest.Server {
	fc := &fakeCollector{sizes: map[string]float64{"otlp_grpc/backend|traces": 0, "otlp_http/vendor|logs": 0}}
	w, _ := newTestWatcher(t, fc)
	t0 := time.Now().Add(-3 * time.Minute)
	for i := range 180 {
		fill := float64(i) * 0.6
		if fill > 96 {
			fill = 96
		}
		fc.set("otlp_grpc/backend|traces", fill)
		fc.set("otlp_http/vendor|logs", fill/3)
		w.measure(t0.Add(time.Duration(i) * time.Second))
	}
	w.ReportShed("bronze", "traces", "tier_dropped", 1200)
	w.ReportShed("silver", "logs", "below_severity", 300)
	w.ReportShed("silver", "traces", "refused", 40)
	srv := httptest.NewServer(w.statusHandler())
	t.Cleanup(srv.Close)
	return srv
}

func TestStatusJSON(t *testing.T) {
	srv := populated(t)
	resp, err := http.Get(srv.URL + "/status")
	require.NoError(t, err)
	defer resp.Body.Close()
	var st Status
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	assert.Equal(t, "critical", st.Level)
	assert.Len(t, st.Shedding, 3)
	assert.Equal(t, ShedStatus{Tier: "bronze", Signal: "traces", Reason: "tier_dropped", Total: 1200}, st.Shedding[0])
	assert.Len(t, st.History, 180)
}

// TestStatusReportsNoDownstreamLatency: the status once showed the p50/p99
// of the backpressure processor's calls into the next consumer. In every
// shipped pipeline that consumer is tail_sampling or batch, which only
// enqueue, so the figure said nothing about the exporters the SLO is about,
// and exporterhelper v0.145.0 publishes no send duration to read instead.
// Neither the JSON nor the page may show such a figure.
func TestStatusReportsNoDownstreamLatency(t *testing.T) {
	srv := populated(t)
	resp, err := http.Get(srv.URL + "/status")
	require.NoError(t, err)
	defer resp.Body.Close()
	var doc map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	assert.Contains(t, doc, "level")
	_, has := doc["downstream_latency"]
	assert.False(t, has, "the JSON status has a downstream_latency")

	resp, err = http.Get(srv.URL + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(page), `id="slo"`)
	assert.False(t, strings.Contains(strings.ToLower(string(page)), "downstream") || strings.Contains(string(page), "p99"),
		"the status page shows a downstream latency")
}

// TestStatusPageInChromium loads the status page in headless Chromium
// (Debian's chromium package) and checks the DOM it renders: the level, one
// chart per watched queue with its fill line, and the shedding table.
func TestStatusPageInChromium(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("FABRIC_BIN") != "" {
			t.Fatal("chromium is not installed: `make test` installs it (apt-get install -y chromium)")
		}
		t.Skip("chromium is not installed")
	}
	srv := populated(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=1000", "--dump-dom", srv.URL+"/")
	out, err := cmd.Output()
	require.NoError(t, err, "chromium --dump-dom")
	dom := string(out)

	assert.Contains(t, dom, `<span id="level" class="level critical">critical</span>`)
	assert.Equal(t, 2, strings.Count(dom, `<figure class="queue"`), "one chart per watched queue")
	assert.Contains(t, dom, "otlp_grpc/backend: 96% full")
	assert.Contains(t, dom, "otlp_http/vendor: 32% full")
	// The fill line has a point per measurement of the last 3 minutes.
	i := strings.Index(dom, `<polyline points="`)
	require.GreaterOrEqual(t, i, 0)
	points := dom[i+len(`<polyline points="`):]
	points = points[:strings.Index(points, `"`)]
	assert.Len(t, strings.Fields(points), 180)
	assert.Contains(t, dom, `<line class="critical"`)
	assert.Contains(t, dom, "<td>bronze</td><td>traces</td><td>tier_dropped</td><td>1200</td>")
	assert.Contains(t, dom, "(missed)", "the SLO line")

	// And it draws: a screenshot is not blank.
	shot := t.TempDir() + "/status.png"
	cmd = exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--window-size=800,700", "--screenshot="+shot, srv.URL+"/")
	require.NoError(t, cmd.Run())
	fi, err := os.Stat(shot)
	require.NoError(t, err)
	assert.Greater(t, fi.Size(), int64(5000), "the screenshot has content")
}

// manualTicks replaces the loop's ticker, as tail_sampling's tests do: the
// interval is an hour, and tick runs one measurement of the loop and
// returns when it is done.
func manualTicks(w *watcher) (tick func()) {
	w.cfg.Interval = time.Hour
	w.tickChan = make(chan chan struct{})
	return func() {
		done := make(chan struct{})
		w.tickChan <- done
		<-done
	}
}

// TestLoopMeasures: the running extension measures on each tick of its
// loop and publishes the level, and stops with Shutdown.
func TestLoopMeasures(t *testing.T) {
	fc := &fakeCollector{sizes: map[string]float64{"otlp_grpc/backend|traces": 96, "otlp_http/vendor|logs": 10}}
	w, _ := newTestWatcher(t, fc)
	tick := manualTicks(w)
	require.NoError(t, w.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, w.Shutdown(context.Background())) })
	assert.Equal(t, pressure.OK, w.Level(), "nothing measured before the first tick")
	tick()
	assert.Equal(t, pressure.Critical, w.Level())
	assert.InDelta(t, 0.96, w.Fill(), 1e-9)
	fc.set("otlp_grpc/backend|traces", 0)
	tick()
	assert.Equal(t, pressure.High, w.Level(), "one step down per measurement (hold_time 0)")
	assert.InDelta(t, 0.1, w.Fill(), 1e-9)
}

// TestShutdownDuringMeasurement: Shutdown while a measurement is under way
// returns promptly (a loop that re-read the stop channel after Shutdown reset
// it blocked forever, and the collector ignored SIGTERM).
func TestShutdownDuringMeasurement(t *testing.T) {
	inScrape := make(chan struct{}, 100)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inScrape <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		(&fakeCollector{sizes: map[string]float64{"otlp_grpc/backend|traces": 1}}).ServeHTTP(w, r)
	})
	srv := httptest.NewServer(slow)
	defer srv.Close()
	cfg := createDefaultConfig().(*Config)
	cfg.MetricsEndpoint = srv.URL
	cfg.Exporters = []string{"otlp_grpc/backend"}
	cfg.Status.NetAddr.Endpoint = ""
	w, err := newWatcher(extensiontest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	tick := manualTicks(w)
	for range 5 {
		require.NoError(t, w.Start(context.Background(), componenttest.NewNopHost()))
		ticked := make(chan struct{})
		go func() { tick(); close(ticked) }()
		<-inScrape // a measurement is in flight
		done := make(chan error, 1)
		go func() { done <- w.Shutdown(context.Background()) }()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("Shutdown did not return while a measurement was in flight")
		}
		<-ticked
		w.tb, _ = metadata.NewTelemetryBuilder(componenttest.NewNopTelemetrySettings())
	}
}
