package tests

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/otelcol-fabric/otelcol-fabric/internal/dashboards"
)

// TestDashboardMetricsExported: every metric a shipped dashboard queries is
// one the gateway binary exports. The collector's own metrics are read from
// its /metrics, after traffic that makes each counter appear (a resource
// without a version, an invalid commit, a dropped attribute, more series
// than tagguard's cap, a Tempo that is down so that backpressure sheds and
// refuses); the benchmark metrics from the real Prometheus the gateway
// remote-writes to, after two benchmark runs.
func TestDashboardMetricsExported(t *testing.T) {
	want := map[string][]string{} // metric -> dashboards
	files, err := filepath.Glob(filepath.Join(repoRoot(t), dashboards.Dir, "*.json"))
	require.NoError(t, err)
	require.Len(t, files, 3)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		qs, err := dashboards.Queries(raw)
		require.NoError(t, err, f)
		for _, q := range qs {
			names, err := dashboards.MetricNames(q)
			require.NoError(t, err, "%s: %s", f, q)
			for _, n := range names {
				want[n] = append(want[n], filepath.Base(f))
			}
		}
	}

	prom := prometheusServer(t)
	tempoDown := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // nothing listens
	env, _ := gatewayEnvLoki(t, prom, "FABRIC_TEMPO_ENDPOINT="+tempoDown, "FABRIC_QUEUE_ITEMS=40",
		"FABRIC_TAIL_DECISION_WAIT=1s", "FABRIC_TRACES_HELD_FOR=6s", "FABRIC_SAMPLE_INITIAL_RATE=1", "FABRIC_SAMPLE_SPANS_PER_SEC=100000000")
	col := startCollectorEnv(t, env, "--config", "configs/gateway.yaml")
	run := fmt.Sprintf("dash-%d", time.Now().UnixNano())

	// Two benchmark runs: the benchmark metrics and their deltas. The
	// 40-item queues this test needs fill with the collector's own scraped
	// metrics too; the receiver answers 503 then and curl retries, as a CI
	// job should.
	for i, work := range []string{"", "2000"} {
		cmd := exec.Command("sh", "-c", `go test -run '^$' -bench 'Sum|Copy' -benchmem -count 5 -benchtime 20ms | curl -sS --fail-with-body --retry 20 --retry-delay 1 --data-binary @- -H "Authorization: Bearer $TOKEN" "http://$GATEWAY/v1/benchmarks?run_id=$CI_RUN&service.name=dash&vcs.ref.head.name=main"`)
		cmd.Dir = benchPkg(t)
		cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "TOKEN="+gwToken, fmt.Sprintf("CI_RUN=%s-%d", run, i), "GATEWAY="+col.Gobench, "BENCHPKG_WORK="+work)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
	}

	// Backpressure: spans for a Tempo that is down stay in its queue (40
	// items). 21 of them (fill 0.525) raise queuewatch's level (to elevated,
	// or high as the queue grows), where bronze is shed; gold, which passes
	// there, fills it to critical, where non-gold is refused.
	seq := 0
	send := func(tier string, n int) {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "dash-"+tier)
		rs.Resource().Attributes().PutStr("service.tier", tier)
		ss := rs.ScopeSpans().AppendEmpty()
		for range n {
			seq++
			s := ss.Spans().AppendEmpty()
			s.SetName("dash")
			s.SetTraceID(pcommon.TraceID{0: 0xda, 12: byte(seq >> 16), 13: byte(seq >> 8), 15: byte(seq)})
			s.SetSpanID(pcommon.SpanID{6: byte(seq >> 8), 7: byte(seq)})
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(-time.Millisecond)))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		}
		b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		require.NoError(t, err)
		postAuth(t, col, "/v1/traces", b, gwToken)
	}
	level := func() float64 { return metricSum(scrape(t, col), "otelcol_queuewatch_level", "") }
	send("silver", 21)
	// Eventually runs its condition on a goroutine of its own.
	var seenMu sync.Mutex
	seen := map[float64]bool{}
	sawLevel := func(l float64) {
		seenMu.Lock()
		seen[l] = true
		seenMu.Unlock()
	}
	defer func() {
		if t.Failed() {
			seenMu.Lock()
			t.Logf("levels seen: %v", seen)
			seenMu.Unlock()
			for _, l := range strings.Split(scrape(t, col), "\n") {
				if strings.Contains(l, "queuewatch_") || strings.Contains(l, "backpressure_items") || strings.Contains(l, "queue_size{") {
					t.Log(l)
				}
			}
		}
	}()
	require.Eventually(t, func() bool { l := level(); sawLevel(l); return l == 1 || l == 2 }, 30*time.Second, 100*time.Millisecond,
		"the level did not rise to elevated or high")
	// Bronze is sent again until it is shed: the 40-item metrics queues can
	// reach critical for a moment with the collector's own scraped metrics
	// (CI saw it once), and at critical bronze is refused, not shed.
	require.Eventually(t, func() bool {
		l := level()
		sawLevel(l)
		if l == 1 || l == 2 {
			send("bronze", 5)
		}
		return strings.Contains(scrape(t, col), "otelcol_processor_backpressure_items_shed_total{")
	}, 40*time.Second, 300*time.Millisecond, "bronze was not shed")
	// Gold passes and fills the queue to critical (36 of 40), where
	// non-gold is refused. One small send per 1.5 s, longer than
	// tail_sampling's 1 s tick: what one tick releases leaves
	// batch/after_sampling as one request, and the 40-item queue refuses a
	// request of more than its free items whole ("sending queue is full",
	// not counted by backpressure), so sends that share a tick, or a send
	// larger than the room left below critical, could leave it stuck short
	// of critical (CI saw the first). From 21, 3 gold and 1 silver a tick
	// reach 36 whether silver passes or is shed.
	require.Eventually(t, func() bool {
		send("gold", 3)
		send("silver", 1)
		return strings.Contains(scrape(t, col), "otelcol_processor_backpressure_items_refused_total{")
	}, 45*time.Second, 1500*time.Millisecond, "nothing was refused with Tempo's queue full")

	// versionstamp and tagguard: a resource with an invalid commit and no
	// version, a denied data point attribute, 2100 series of one metric.
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "dash")
	rm.Resource().Attributes().PutStr("service.instance.id", run)
	rm.Resource().Attributes().PutStr("vcs.ref.head.revision", "not-a-commit!")
	g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("dash.series")
	gauge := g.SetEmptyGauge()
	for i := range 2100 {
		dp := gauge.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("shard", fmt.Sprint(i))
		dp.Attributes().PutStr("user.id", "u-1")
		dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		dp.SetDoubleValue(1)
	}
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)
	// Refused by backpressure (the level is critical now) or by a full
	// 40-item queue: 503 is fine, versionstamp and tagguard ran before.
	status, msg := postAuth(t, col, "/v1/metrics", body, gwToken)
	require.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, status, msg)

	own := scrape(t, col)
	exported := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]`).FindAllStringSubmatch(own, -1) {
		exported[m[1]] = true
	}
	var missing []string
	for name, where := range want {
		if exported[name] {
			continue
		}
		if strings.HasPrefix(name, "gobench_") {
			ok := assert.EventuallyWithT(t, func(c *assert.CollectT) {
				assert.NotEmpty(c, promSeries(c, prom, fmt.Sprintf(`{__name__=%q, service_name="dash"}`, name)))
			}, 60*time.Second, 500*time.Millisecond, "%s (%v) never reached Prometheus", name, where)
			if ok {
				continue
			}
		}
		missing = append(missing, fmt.Sprintf("%s (%v)", name, where))
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "queried by a dashboard, exported by nothing")
	t.Logf("%d metric names checked", len(want))
	require.Equal(t, 0, col.terminate())
}
