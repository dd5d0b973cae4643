package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

const (
	gwToken   = "gateway-test-token"
	gwCommit  = "3f2c9a1b7d"
	gwVersion = "2.7.1"
)

// gwResource is a service resource with every correlation key but the build
// time, which versionstamp adds (unknown), plus a key tagguard must drop.
func gwResource(res pcommon.Resource, service, tier, run string) {
	a := res.Attributes()
	a.PutStr("service.name", service)
	a.PutStr("deployment.environment.name", "prod")
	a.PutStr("service.version", gwVersion)
	a.PutStr("git.commit.sha", gwCommit) // legacy key, normalised by versionstamp
	a.PutStr("service.tier", tier)
	a.PutStr("service.instance.id", run)
	a.PutStr("process.command_line", "/app --secret=1") // not in the resource allow list
}

// TestGatewayFanOut runs configs/gateway.yaml against stand-ins of Tempo
// (OTLP/gRPC), a vendor (OTLP/HTTP with an API key), Loki (native OTLP path)
// and Elasticsearch (bulk API), and a real Prometheus server (remote-write
// receiver), sends authenticated traces, metrics and logs, and checks that
// each store received its signals with the correlation keys intact, that tail
// sampling kept the error and gold-tier traces and dropped the plain one, and
// that an unauthenticated sender is refused.
func TestGatewayFanOut(t *testing.T) {
	prom := prometheusServer(t)
	tempoAddr, tempo := otlpGRPCStandIn(t)
	vendorURL, vendor := otlpHTTPStandIn(t, "/v1/")
	lokiURL, loki := otlpHTTPStandIn(t, "/otlp/v1/")
	esURL, es := elasticsearchStandIn(t)

	queuewatch := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	col := startCollectorEnv(t, []string{
		"FABRIC_QUEUEWATCH_ENDPOINT=" + queuewatch,
		"FABRIC_INGEST_TOKEN=" + gwToken,
		"FABRIC_QUEUE_DIR=" + t.TempDir(),
		"FABRIC_TEMPO_ENDPOINT=" + tempoAddr,
		"FABRIC_VENDOR_OTLP_ENDPOINT=" + vendorURL,
		"FABRIC_VENDOR_API_KEY=vendor-key-123",
		"FABRIC_LOKI_OTLP_ENDPOINT=" + lokiURL + "/otlp",
		"FABRIC_LOKI_TENANT=team-a",
		"FABRIC_ELASTICSEARCH_ENDPOINT=" + esURL,
		"FABRIC_ELASTICSEARCH_PASSWORD=es-secret",
		"FABRIC_PROMETHEUS_RW_ENDPOINT=" + prom + "/api/v1/write",
		"FABRIC_FLUENTFORWARD_ENDPOINT=127.0.0.1:0",
		"FABRIC_PYROSCOPE_ENDPOINT=127.0.0.1:0",
		"FABRIC_PPROF_ENDPOINT=127.0.0.1:0",
		"FABRIC_ZPAGES_ENDPOINT=127.0.0.1:0",
		"FABRIC_TAIL_DECISION_WAIT=1s",
		"FABRIC_TRACES_HELD_FOR=6s",
		"FABRIC_SAMPLE_INITIAL_RATE=1000000", // the plain trace: dropped before the first adjustment
	}, "--config", "configs/gateway.yaml")
	run := fmt.Sprintf("gw-%d", time.Now().UnixNano())

	// Unauthenticated: refused.
	td := gwTraces(run)
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	status, _ := postAuth(t, col, "/v1/traces", body, "")
	assert.Equal(t, http.StatusUnauthorized, status, "a sender without the token is refused")
	status, _ = postAuth(t, col, "/v1/traces", body, "wrong-token")
	assert.Equal(t, http.StatusUnauthorized, status, "a wrong token is refused")

	status, msg := postAuth(t, col, "/v1/traces", body, gwToken)
	require.Equal(t, http.StatusOK, status, msg)
	body, err = pmetricotlp.NewExportRequestFromMetrics(gwMetrics(run)).MarshalProto()
	require.NoError(t, err)
	status, msg = postAuth(t, col, "/v1/metrics", body, gwToken)
	require.Equal(t, http.StatusOK, status, msg)
	body, err = plogotlp.NewExportRequestFromLogs(gwLogs(run)).MarshalProto()
	require.NoError(t, err)
	status, msg = postAuth(t, col, "/v1/logs", body, gwToken)
	require.Equal(t, http.StatusOK, status, msg)

	// Tempo: the error trace and the gold-tier trace, not the plain one.
	var tempoSpans map[string]ptrace.Span
	require.Eventually(t, func() bool {
		traces, _, _, _ := tempo.snapshot()
		tempoSpans = spansOf(traces, run)
		return len(tempoSpans) >= 2
	}, 60*time.Second, 200*time.Millisecond, "Tempo did not receive the sampled traces")
	assert.Contains(t, tempoSpans, "checkout error")
	assert.Contains(t, tempoSpans, "payments gold")
	// The plain trace must not follow: wait until tail_sampling has decided
	// it (the one trace here no policy samples), instead of a decision period.
	waitForMetric(t, col, "otelcol_processor_tail_sampling_global_count_traces_sampled", `decision="not_sampled"`, 1)
	traces, _, _, _ := tempo.snapshot()
	assert.NotContains(t, spansOf(traces, run), "search plain", "tail sampling at 0% drops the plain bronze trace")
	errSpan := tempoSpans["checkout error"]
	assert.Equal(t, fmt.Sprintf("%032x", 1), errSpan.TraceID().String())
	profileID, _ := errSpan.Attributes().Get("pyroscope.profile.id")
	assert.Equal(t, errSpan.SpanID().String(), profileID.Str(), "root spans carry pyroscope.profile.id for Tempo's link to the profile")
	require.Eventually(t, func() bool {
		traces, _, _, _ := tempo.snapshot()
		_, ok := spansOf(traces, run)["payments remote child"]
		return ok
	}, 30*time.Second, 100*time.Millisecond)
	traces, _, _, _ = tempo.snapshot()
	remoteRoot := spansOf(traces, run)["payments remote child"]
	profileID, _ = remoteRoot.Attributes().Get("pyroscope.profile.id")
	assert.Equal(t, remoteRoot.SpanID().String(), profileID.Str(), "a local root with a remote parent carries it too")

	// Vendor: all three signals, with the API key.
	require.Eventually(t, func() bool {
		tr, me, lo, _ := vendor.snapshot()
		return len(spansOf(tr, run)) >= 2 && len(metricsOf(me, run)) > 0 && len(logsOf(lo, run)) > 0
	}, 60*time.Second, 200*time.Millisecond, "the vendor endpoint did not receive every signal")
	vTraces, vMetrics, vLogs, vHeaders := vendor.snapshot()
	for _, h := range vHeaders {
		assert.Equal(t, "vendor-key-123", h.Get("Api-Key"))
	}
	for _, res := range append(append(resourcesOfTraces(vTraces, run), resourcesOfMetrics(vMetrics, run)...), resourcesOfLogs(vLogs, run)...) {
		assertCorrelated(t, res)
	}

	// Loki: logs on its OTLP path, with the tenant header and trace context.
	require.Eventually(t, func() bool {
		_, _, lo, _ := loki.snapshot()
		return len(logsOf(lo, run)) > 0
	}, 60*time.Second, 200*time.Millisecond, "Loki did not receive the logs")
	_, _, lLogs, lHeaders := loki.snapshot()
	assert.Equal(t, "team-a", lHeaders[0].Get("X-Scope-OrgID"))
	for _, res := range resourcesOfLogs(lLogs, run) {
		assertCorrelated(t, res)
	}
	lr := logsOf(lLogs, run)[0]
	assert.Equal(t, fmt.Sprintf("%032x", 1), lr.TraceID().String(), "the log keeps its trace id")
	_, hasUser := lr.Attributes().Get("user.id")
	assert.False(t, hasUser, "tagguard removed user.id from the log")

	// Elasticsearch: logs and traces into the OTel data streams.
	var docs []esDoc
	require.Eventually(t, func() bool {
		docs, _ = es.snapshot()
		var logs, spans int
		for _, d := range docs {
			if docRun(d) != run {
				continue
			}
			switch {
			case strings.HasPrefix(d.Index, "logs-"):
				logs++
			case strings.HasPrefix(d.Index, "traces-"):
				spans++
			}
		}
		return logs > 0 && spans >= 2
	}, 60*time.Second, 200*time.Millisecond, "Elasticsearch did not receive logs and traces")
	for _, d := range docs {
		if docRun(d) != run {
			continue
		}
		assert.Contains(t, []string{"logs-generic.otel-default", "traces-generic.otel-default"}, d.Index)
		attrs := d.Doc["resource"].(map[string]any)["attributes"].(map[string]any)
		assert.Equal(t, gwVersion, attrs["service.version"], "%s document", d.Index)
		assert.Equal(t, gwCommit, attrs["vcs.ref.head.revision"], "%s document", d.Index)
		assert.Equal(t, "prod", attrs["deployment.environment.name"], "%s document", d.Index)
		assert.NotEmpty(t, d.Doc["trace_id"], "%s document carries trace_id", d.Index)
	}
	_, auth := es.snapshot()
	assert.Equal(t, "Basic ZWxhc3RpYzplcy1zZWNyZXQ=", auth[0], "basic auth elastic:es-secret")

	// Prometheus: the series, with the correlation keys as labels.
	var series []map[string]string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		series = promSeries(c, prom, `{__name__="gw_requests_total", service_instance_id="`+run+`"}`)
		assert.NotEmpty(c, series)
	}, 60*time.Second, 500*time.Millisecond, "Prometheus has no gw_requests_total series of this run")
	for _, s := range series {
		assert.Equal(t, "checkout", s["job"])
		assert.Equal(t, "prod", s["deployment_environment_name"])
		assert.Equal(t, gwVersion, s["service_version"])
		assert.Equal(t, gwCommit, s["vcs_ref_head_revision"])
		assert.Equal(t, "/cart", s["http_route"])
		assert.NotContains(t, s, "user_id", "tagguard removed user.id")
	}

	// Queue watch sees every store's queue, and no pressure.
	var st struct {
		Level  string `json:"level"`
		Queues []struct {
			Exporter  string `json:"exporter"`
			Reporting bool   `json:"reporting"`
		} `json:"queues"`
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + queuewatch + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&st) != nil {
			return false
		}
		for _, q := range st.Queues {
			if !q.Reporting {
				return false
			}
		}
		return len(st.Queues) == 5
	}, 30*time.Second, 200*time.Millisecond, "queuewatch does not see every exporter's queue: %+v", st)
	assert.Equal(t, "ok", st.Level)

	require.Equal(t, 0, col.terminate())
}

func postAuth(t *testing.T, col *collector, path string, body []byte, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+col.HTTP+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-protobuf")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(msg)
}

func gwTraces(run string) ptrace.Traces {
	td := ptrace.NewTraces()
	now := time.Now()
	for i, tc := range []struct{ service, tier, name string }{
		{"checkout", "silver", "checkout error"},
		{"payments", "gold", "payments gold"},
		{"search", "bronze", "search plain"},
	} {
		rs := td.ResourceSpans().AppendEmpty()
		gwResource(rs.Resource(), tc.service, tc.tier, run)
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetName(tc.name)
		s.SetTraceID(pcommon.TraceID{15: byte(i + 1)})
		s.SetSpanID(pcommon.SpanID{7: byte(i + 1)})
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-10 * time.Millisecond)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		s.Attributes().PutStr("http.route", "/cart")
		s.Attributes().PutStr("user.email", "a@example.com")
		if i == 0 {
			s.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	// The local root of payments in a trace that began in another service:
	// its parent is remote (span flags 0x300), and it is gold so sampling keeps it.
	rs := td.ResourceSpans().AppendEmpty()
	gwResource(rs.Resource(), "payments", "gold", run)
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName("payments remote child")
	s.SetTraceID(pcommon.TraceID{15: 9})
	s.SetSpanID(pcommon.SpanID{7: 9})
	s.SetParentSpanID(pcommon.SpanID{7: 8})
	s.SetFlags(0x301)
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-10 * time.Millisecond)))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	return td
}

func gwMetrics(run string) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	gwResource(rm.Resource(), "checkout", "silver", run)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("gw.requests")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := sum.DataPoints().AppendEmpty()
	dp.Attributes().PutStr("http.route", "/cart")
	dp.Attributes().PutStr("user.id", "u-1")
	dp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(-time.Minute)))
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	dp.SetIntValue(42)
	return md
}

func gwLogs(run string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	gwResource(rl.Resource(), "checkout", "silver", run)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	lr.SetSeverityNumber(plog.SeverityNumberError)
	lr.Body().SetStr("payment declined")
	lr.SetTraceID(pcommon.TraceID{15: 1})
	lr.SetSpanID(pcommon.SpanID{7: 1})
	lr.Attributes().PutStr("user.id", "u-1")
	lr.Attributes().PutStr("http.route", "/cart")
	return ld
}

// assertCorrelated checks the correlation keys on a resource that went
// through the gateway: normalised commit, version, environment, build time
// (unknown: the sender had none), and no key outside the allow list.
func assertCorrelated(t *testing.T, res pcommon.Resource) {
	t.Helper()
	a := res.Attributes()
	assert.Equal(t, gwVersion, mustStr(a, "service.version"))
	assert.Equal(t, gwCommit, mustStr(a, "vcs.ref.head.revision"))
	assert.Equal(t, "prod", mustStr(a, "deployment.environment.name"))
	assert.Equal(t, "unknown", mustStr(a, "build.timestamp"))
	_, legacy := a.Get("git.commit.sha")
	assert.False(t, legacy, "the legacy key was normalised away")
	_, cmdline := a.Get("process.command_line")
	assert.False(t, cmdline, "tagguard removed process.command_line")
}

func ofRun(res pcommon.Resource, run string) bool {
	v, ok := res.Attributes().Get("service.instance.id")
	return ok && v.Str() == run
}

func spansOf(traces []ptrace.Traces, run string) map[string]ptrace.Span {
	out := map[string]ptrace.Span{}
	for _, td := range traces {
		for _, rs := range td.ResourceSpans().All() {
			if !ofRun(rs.Resource(), run) {
				continue
			}
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					out[s.Name()] = s
				}
			}
		}
	}
	return out
}

func metricsOf(metrics []pmetric.Metrics, run string) []pmetric.Metric {
	var out []pmetric.Metric
	for _, md := range metrics {
		for _, rm := range md.ResourceMetrics().All() {
			if !ofRun(rm.Resource(), run) {
				continue
			}
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					out = append(out, m)
				}
			}
		}
	}
	return out
}

func logsOf(logs []plog.Logs, run string) []plog.LogRecord {
	var out []plog.LogRecord
	for _, ld := range logs {
		for _, rl := range ld.ResourceLogs().All() {
			if !ofRun(rl.Resource(), run) {
				continue
			}
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					out = append(out, lr)
				}
			}
		}
	}
	return out
}

func resourcesOfTraces(traces []ptrace.Traces, run string) []pcommon.Resource {
	var out []pcommon.Resource
	for _, td := range traces {
		for _, rs := range td.ResourceSpans().All() {
			if ofRun(rs.Resource(), run) {
				out = append(out, rs.Resource())
			}
		}
	}
	return out
}

func resourcesOfMetrics(metrics []pmetric.Metrics, run string) []pcommon.Resource {
	var out []pcommon.Resource
	for _, md := range metrics {
		for _, rm := range md.ResourceMetrics().All() {
			if ofRun(rm.Resource(), run) {
				out = append(out, rm.Resource())
			}
		}
	}
	return out
}

func resourcesOfLogs(logs []plog.Logs, run string) []pcommon.Resource {
	var out []pcommon.Resource
	for _, ld := range logs {
		for _, rl := range ld.ResourceLogs().All() {
			if ofRun(rl.Resource(), run) {
				out = append(out, rl.Resource())
			}
		}
	}
	return out
}

func docRun(d esDoc) string {
	res, _ := d.Doc["resource"].(map[string]any)
	attrs, _ := res["attributes"].(map[string]any)
	s, _ := attrs["service.instance.id"].(string)
	return s
}
