package tests

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// TestTailSamplingFullWaits sends the shipped gateway twelve times as many
// traces as tail sampling may hold (FABRIC_TAIL_NUM_TRACES=100), back to
// back: every acknowledged span reaches Tempo, and none is evicted before its
// decision. With contrib's default (block_on_overflow false) tail sampling
// evicts the oldest undecided traces to make room, spans the gateway had
// acknowledged; the shipped config makes new traces wait for room instead,
// and the senders with them.
func TestTailSamplingFullWaits(t *testing.T) {
	const (
		numTraces = 100
		requests  = 12
		perReq    = 100 // traces
		spans     = 2   // per trace
	)
	remoteWrite := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	tempoAddr, tempo := otlpGRPCStandIn(t)
	col := startGatewayWith(t, "http://"+remoteWrite, tempoAddr, []string{
		"FABRIC_TAIL_NUM_TRACES=100",
		"FABRIC_SAMPLE_INITIAL_RATE=1", "FABRIC_SAMPLE_SPANS_PER_SEC=100000000", // keep every trace
	})

	sent := map[pcommon.SpanID]bool{}
	start := time.Now()
	for r := range requests {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "checkout")
		rs.Resource().Attributes().PutStr("service.tier", "silver")
		ss := rs.ScopeSpans().AppendEmpty().Spans()
		now := time.Now()
		for i := range perReq {
			tid := pcommon.TraceID{0xfa, byte(r), byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
			for k := range spans {
				s := ss.AppendEmpty()
				s.SetTraceID(tid)
				sid := pcommon.SpanID{byte(r), byte(i), byte(k + 1), 0, 0, 0, 0, 1}
				s.SetSpanID(sid)
				if k > 0 {
					s.SetParentSpanID(pcommon.SpanID{byte(r), byte(i), 1, 0, 0, 0, 0, 1})
				}
				s.SetName("GET /cart")
				s.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
				s.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
				sent[sid] = true
			}
		}
		body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		require.NoError(t, err)
		status, msg := postAuth(t, col, "/v1/traces", body, gwToken)
		require.Equal(t, http.StatusOK, status, msg)
	}
	t.Logf("%d traces (%d spans) acknowledged in %s with room for %d traces", requests*perReq, len(sent), time.Since(start).Round(time.Millisecond), numTraces)

	delivered := map[pcommon.SpanID]int{}
	assert.EventuallyWithT(t, func(ct *assert.CollectT) {
		clear(delivered)
		traces, _, _, _ := tempo.snapshot()
		for _, td := range traces {
			for _, rs := range td.ResourceSpans().All() {
				for _, ss := range rs.ScopeSpans().All() {
					for _, s := range ss.Spans().All() {
						delivered[s.SpanID()]++
					}
				}
			}
		}
		assert.Equal(ct, len(sent), len(delivered), "acknowledged spans in Tempo")
	}, 60*time.Second, 500*time.Millisecond)
	for sid, n := range delivered {
		assert.True(t, sent[sid], "span %s was never sent", sid)
		assert.Equal(t, 1, n, "span %s delivered %d times", sid, n)
	}
	metrics := scrape(t, col)
	assert.Zero(t, metricSum(metrics, "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early_total", ""), "traces evicted before their decision")
	assert.Zero(t, metricSum(metrics, "otelcol_exporter_enqueue_failed_spans_total", ""), "spans refused by a full queue")
	assert.Equal(t, 0, col.terminate())
}
