package tests

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// TestTailSamplingFullWaits sends the shipped gateway many times as many
// traces as tail sampling may hold (FABRIC_TAIL_NUM_TRACES=100), first from
// one sender, then from six at once that retry what is refused, as an
// agent's exporter does. Every acknowledged span reaches Tempo exactly once,
// no trace is evicted before its decision, and a request that waited too
// long for its turn is refused (503, retried) instead of hanging.
//
// With contrib's default (block_on_overflow false) tail_sampling evicts the
// oldest undecided traces to make room: spans the gateway had acknowledged.
// With block_on_overflow alone, a request waits inside tail_sampling however
// long it takes, and is ingested even after its sender gave up.
func TestTailSamplingFullWaits(t *testing.T) {
	const (
		numTraces = 100
		perReq    = 100 // traces per request: each fills tail_sampling
		spans     = 2   // per trace
	)
	remoteWrite := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	tempoAddr, tempo := otlpGRPCStandIn(t)
	col := startGatewayWith(t, "http://"+remoteWrite, tempoAddr, []string{
		"FABRIC_TAIL_NUM_TRACES=100",
		"FABRIC_SAMPLE_INITIAL_RATE=1", "FABRIC_SAMPLE_SPANS_PER_SEC=100000000", // keep every trace
	})

	var mu sync.Mutex
	sent := map[pcommon.SpanID]bool{}
	rng := rand.New(rand.NewPCG(15, 15))
	request := func() []byte {
		mu.Lock()
		defer mu.Unlock()
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "checkout")
		rs.Resource().Attributes().PutStr("service.tier", "silver")
		ss := rs.ScopeSpans().AppendEmpty().Spans()
		now := time.Now()
		for range perReq {
			// Random trace ids: tail_sampling's decision caches key on the
			// right half, so ids that share it would hit the cache instead of
			// taking a place in num_traces.
			var tid pcommon.TraceID
			for i := range tid {
				tid[i] = byte(rng.UintN(256))
			}
			var root pcommon.SpanID
			for k := range spans {
				var sid pcommon.SpanID
				for i := range sid {
					sid[i] = byte(rng.UintN(256))
				}
				s := ss.AppendEmpty()
				s.SetTraceID(tid)
				s.SetSpanID(sid)
				if k == 0 {
					root = sid
				} else {
					s.SetParentSpanID(root)
				}
				s.SetName("GET /cart")
				s.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
				s.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
				sent[sid] = true
			}
		}
		body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		require.NoError(t, err)
		return body
	}

	// One sender, eight requests back to back: each waits for the
	// decisions on the one before to make room.
	start := time.Now()
	for range 8 {
		status, msg := postAuth(t, col, "/v1/traces", request(), gwToken)
		require.Equal(t, http.StatusOK, status, msg)
	}
	alone := time.Since(start)
	t.Logf("one sender: 800 traces acknowledged in %s with room for %d", alone.Round(time.Millisecond), numTraces)
	assert.Greater(t, alone, 4*time.Second, "the requests waited for room (decision_wait 1 s per full tail_sampling)")

	// Six senders at once, two requests each, retrying a refusal.
	var wg sync.WaitGroup
	var refusals, unexpected int
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 {
				body := request()
				for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); {
					status, msg := postAuth(t, col, "/v1/traces", body, gwToken)
					mu.Lock()
					switch status {
					case http.StatusOK:
					case http.StatusServiceUnavailable:
						refusals++
					default:
						unexpected++
						t.Errorf("status %d: %s", status, msg)
					}
					mu.Unlock()
					if status == http.StatusOK {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("six senders: %d refusals (503, retried), %d other answers", refusals, unexpected)
	assert.Positive(t, refusals, "requests that waited admission::max_wait were refused, not held")

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
	dups := 0
	for sid, n := range delivered {
		assert.True(t, sent[sid], "span %s was never sent", sid)
		dups += n - 1
	}
	assert.Zero(t, dups, "spans delivered twice: a refused request was ingested after all")
	metrics := scrape(t, col)
	assert.Zero(t, metricSum(metrics, "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early_total", ""), "traces evicted before their decision")
	assert.Zero(t, metricSum(metrics, "otelcol_processor_tail_sampling_early_releases_from_cache_decision_total", ""), "spans released by a cached decision: every trace must take a place in num_traces")
	assert.Zero(t, metricSum(metrics, "otelcol_exporter_enqueue_failed_spans_total", ""), "spans refused by a full queue")
	assert.Positive(t, metricSum(metrics, "otelcol_processor_backpressure_items_refused_total", `signal="traces"`), "the admission refusals are counted")
	assert.Equal(t, 0, col.terminate())
}
