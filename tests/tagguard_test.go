package tests

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// noisyAttrs is what a careless service puts on everything.
func noisyAttrs(m pcommon.Map, i int) {
	m.PutStr("user.id", fmt.Sprintf("u-%d", i))
	m.PutStr("http.url", fmt.Sprintf("https://shop.example/cart/%d?session=s%d", i, i))
	m.PutStr("k8s.pod.uid", "0c6e6f0e-1111-4b1d-9f0e-1234567890ab")
}

func tagguardResource(res pcommon.Resource, testCase string) {
	a := res.Attributes()
	a.PutStr("service.name", "checkout")
	a.PutStr("deployment.environment.name", "prod")
	a.PutStr("service.version", "1.4.2")
	a.PutStr("test.case", testCase)
	a.PutStr("host.name", "laptop-of-someone")
	a.PutStr("process.command_line", "/app --token=secret")
}

// TestTagguardThroughBinary runs configs/local.yaml with the blueprint's rule
// merged over it (tests/testdata/tagguard-overlay.yaml) and checks what the
// file exporters wrote: only allowed keys left on resources, spans, data
// points and log records; http.route capped at 5 values; 50 series of a
// cumulative sum folded to 10 plus one overflow series with the total
// preserved; the offenders log line and the telemetry.
func TestTagguardThroughBinary(t *testing.T) {
	col := startCollector(t, "--config", "configs/local.yaml", "--config", "tests/testdata/tagguard-overlay.yaml")
	run := fmt.Sprintf("tagguard-%d", time.Now().UnixNano())

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	tagguardResource(rs.Resource(), run)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range 20 {
		s := spans.AppendEmpty()
		s.SetName("GET")
		s.SetTraceID(pcommon.TraceID{byte(i + 1)})
		s.SetSpanID(pcommon.SpanID{byte(i + 1)})
		noisyAttrs(s.Attributes(), i)
		s.Attributes().PutStr("http.route", fmt.Sprintf("/route/%d", i))
		s.Attributes().PutStr("trace_id", fmt.Sprintf("%032x", i+1))
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	postOTLP(t, col, "/v1/traces", body)

	// Two rounds of a cumulative counter with 50 series (shard 0..49),
	// series i at (i+1)*round.
	const shards = 50
	var sent float64
	for round := 1; round <= 2; round++ {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		tagguardResource(rm.Resource(), run)
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("requests")
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		sent = 0
		for i := range shards {
			dp := sum.DataPoints().AppendEmpty()
			dp.Attributes().PutInt("shard", int64(i))
			noisyAttrs(dp.Attributes(), i)
			dp.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000))
			dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
			dp.SetIntValue(int64((i + 1) * round))
			sent += float64((i + 1) * round)
		}
		body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		require.NoError(t, err)
		postOTLP(t, col, "/v1/metrics", body)
	}

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	tagguardResource(rl.Resource(), run)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr("payment failed for u-7")
	noisyAttrs(lr.Attributes(), 7)
	lr.Attributes().PutStr("trace_id", "0123456789abcdef0123456789abcdef")
	body, err = plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	require.NoError(t, err)
	postOTLP(t, col, "/v1/logs", body)

	// The offenders line comes within the report interval (1s).
	require.Eventually(t, func() bool {
		return containsAll(col.output.String(), "top offending keys", `"name":"checkout"`, `"name":"user.id"`)
	}, 20*time.Second, 200*time.Millisecond, "no offenders log line naming user.id and checkout")

	// Telemetry, from the collector's own metrics.
	waitForMetric(t, col, "otelcol_processor_tagguard_datapoints_folded_total{", `mode="enforce"`, 80)
	metrics := scrape(t, col)
	assert.Regexp(t, `otelcol_processor_tagguard_values_capped_total\{[^}]*signal="traces"[^}]*\} 15\n`, metrics)
	assert.Regexp(t, `otelcol_processor_tagguard_attributes_dropped_total\{[^}]*scope="span"[^}]*signal="traces"[^}]*\} 60\n`, metrics)
	assert.Regexp(t, `otelcol_processor_tagguard_series_tracked\{[^}]*\} 10\n`, metrics)

	require.Equal(t, 0, col.terminate())

	wantResource := []string{"service.name", "deployment.environment.name", "service.version", "test.case",
		"vcs.ref.head.revision", "build.timestamp"} // the last two stamped by versionstamp, protected
	var gotSpans, gotLogs int
	routes := map[string]int{}
	readJSONLines(t, filepath.Join(col.DataDir, "traces.jsonl"), func(line []byte) {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(line)
		require.NoError(t, err)
		for _, rs := range td.ResourceSpans().All() {
			if !isCase(rs.Resource(), run) {
				continue
			}
			assert.ElementsMatch(t, wantResource, mapKeys(rs.Resource().Attributes()))
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					gotSpans++
					assert.ElementsMatch(t, []string{"http.route", "trace_id"}, mapKeys(s.Attributes()))
					r, _ := s.Attributes().Get("http.route")
					routes[r.Str()]++
				}
			}
		}
	})
	assert.Equal(t, 20, gotSpans, "every span arrives")
	assert.Len(t, routes, 6, "5 routes and the overflow value: %v", routes)
	assert.Equal(t, 15, routes["otel.overflow"])

	series := map[string]float64{}
	readJSONLines(t, filepath.Join(col.DataDir, "metrics.jsonl"), func(line []byte) {
		md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(line)
		require.NoError(t, err)
		for _, rm := range md.ResourceMetrics().All() {
			if !isCase(rm.Resource(), run) {
				continue
			}
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					for _, dp := range m.Sum().DataPoints().All() {
						// Cumulative: the last point of each series is its total.
						series[fmt.Sprint(dp.Attributes().AsRaw())] = float64(dp.IntValue())
					}
				}
			}
		}
	})
	assert.Len(t, series, 11, "10 series and the overflow series: %v", series)
	assert.Contains(t, series, "map[otel.metric.overflow:true]")
	var total float64
	for _, v := range series {
		total += v
	}
	assert.InDelta(t, sent, total, 0, "the last round's total over all series is preserved")

	readJSONLines(t, filepath.Join(col.DataDir, "logs.jsonl"), func(line []byte) {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(line)
		require.NoError(t, err)
		for _, rl := range ld.ResourceLogs().All() {
			if !isCase(rl.Resource(), run) {
				continue
			}
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					gotLogs++
					assert.Equal(t, []string{"trace_id"}, mapKeys(lr.Attributes()))
					assert.Equal(t, "payment failed for u-7", lr.Body().Str())
				}
			}
		}
	})
	assert.Equal(t, 1, gotLogs)
}

func isCase(res pcommon.Resource, run string) bool {
	v, ok := res.Attributes().Get("test.case")
	return ok && v.Str() == run
}

func mapKeys(m pcommon.Map) []string {
	var out []string
	for k := range m.All() {
		out = append(out, k)
	}
	return out
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
