package tests

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// TestAdaptiveSamplingThroughGateway runs the shipped gateway config with
// its adaptive sample-the-rest policy, sends a Zipf-distributed stream of
// traces over OTLP at four times the budget, and counts what reaches the
// Tempo stand-in: the output settles on the budget, every kept span says
// what it stands for, the kept traces re-weighted reproduce what was sent,
// keys seen once per interval all come through, and errors are kept whole.
func TestAdaptiveSamplingThroughGateway(t *testing.T) {
	const (
		budget   = 300 // spans/s, FABRIC_SAMPLE_SPANS_PER_SEC
		interval = 2 * time.Second
		spans    = 2 // per trace
		perSec   = 600
		run      = 36 * time.Second
		settle   = 14 * time.Second // the first intervals: not on budget yet
		rareKeys = 8                // one trace each per interval
	)
	remoteWrite := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	tempoAddr, tempo := otlpGRPCStandIn(t)
	col := startGatewayWith(t, "http://"+remoteWrite, tempoAddr, []string{
		"FABRIC_SAMPLE_SPANS_PER_SEC=" + strconv.Itoa(budget),
		"FABRIC_SAMPLE_ADJUST_INTERVAL=" + interval.String(),
		"FABRIC_SAMPLE_INITIAL_RATE=10",
	})

	rng := rand.New(rand.NewPCG(21, 21))
	zipf := rand.NewZipf(rng, 1.3, 1, 79)
	type sentTrace struct {
		key   string
		at    time.Time
		error bool
	}
	sent := map[pcommon.TraceID]sentTrace{}
	start := time.Now()
	const batchEvery = 100 * time.Millisecond
	batches := int(run / batchEvery)
	perBatch := perSec * int(batchEvery) / int(time.Second)
	for b := range batches {
		time.Sleep(time.Until(start.Add(time.Duration(b) * batchEvery)))
		td := ptrace.NewTraces()
		add := func(svc, op string, isErr bool) {
			var id pcommon.TraceID
			for i := range id {
				id[i] = byte(rng.UintN(256))
			}
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", svc)
			rs.Resource().Attributes().PutStr("service.tier", "silver")
			ss := rs.ScopeSpans().AppendEmpty().Spans()
			now := time.Now()
			for i := range spans {
				s := ss.AppendEmpty()
				s.SetTraceID(id)
				s.SetSpanID(pcommon.SpanID{byte(i + 1), 0, 0, 0, 0, 0, 0, 1})
				s.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
				s.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
				if i == 0 {
					s.SetName(op)
					s.Attributes().PutInt("http.response.status_code", 200)
				} else {
					s.SetName("db")
					s.SetParentSpanID(pcommon.SpanID{1, 0, 0, 0, 0, 0, 0, 1})
				}
				if isErr && i == spans-1 {
					s.Status().SetCode(ptrace.StatusCodeError)
				}
			}
			sent[id] = sentTrace{key: svc + " " + op, at: now, error: isErr}
		}
		for range perBatch {
			z := zipf.Uint64()
			add(fmt.Sprintf("svc-%d", z%4), fmt.Sprintf("GET /op-%d", z), rng.IntN(500) == 0)
		}
		if b%int(interval/batchEvery) == 0 {
			for k := range rareKeys {
				add("svc-rare", fmt.Sprintf("GET /rare-%d", k), false)
			}
		}
		body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		require.NoError(t, err)
		status, msg := postAuth(t, col, "/v1/traces", body, gwToken)
		require.Equal(t, http.StatusOK, status, msg)
	}
	end := time.Now()
	time.Sleep(4 * time.Second) // decision_wait 1 s, ticks, export

	// What reached Tempo, by trace.
	type keptTrace struct {
		rate     int64
		hasTH    bool
		adjusted float64
		spans    int
		rated    int // spans with SampleRate and th
	}
	kept := map[pcommon.TraceID]*keptTrace{}
	traces, _, _, _ := tempo.snapshot()
	for _, td := range traces {
		rss := td.ResourceSpans()
		for i := range rss.Len() {
			sss := rss.At(i).ScopeSpans()
			for j := range sss.Len() {
				ss := sss.At(j).Spans()
				for k := range ss.Len() {
					s := ss.At(k)
					kt := kept[s.TraceID()]
					if kt == nil {
						kt = &keptTrace{}
						kept[s.TraceID()] = kt
					}
					kt.spans++
					v, hasRate := s.Attributes().Get("SampleRate")
					if hasRate {
						kt.rate = v.Int()
					}
					w3c, err := sampling.NewW3CTraceState(s.TraceState().AsRaw())
					if err == nil && w3c.OTelValue().TValue() != "" {
						kt.hasTH = true
						kt.adjusted = w3c.OTelValue().AdjustedCount()
						if hasRate {
							kt.rated++
						}
					}
				}
			}
		}
	}
	require.NotEmpty(t, kept, "nothing reached Tempo")

	var sentSteady, keptSteadySpans, reweighted, sentErrors, keptErrors int
	rareSeen := map[string]int{}
	rareSent := map[string]int{}
	for id, st := range sent {
		kt := kept[id]
		if st.error {
			sentErrors++
			if kt != nil {
				keptErrors++
				assert.Zero(t, kt.rate, "an error trace is kept by the errors policy, not sampled: no SampleRate")
			}
			continue
		}
		if kt != nil {
			assert.Equal(t, spans, kt.spans, "a kept trace arrives whole")
			assert.Equal(t, spans, kt.rated, "every span of a kept trace carries SampleRate and th")
			assert.Positive(t, kt.rate, "every kept span of a sampled trace carries SampleRate")
			assert.True(t, kt.hasTH, "and the ot=th threshold")
			assert.InDelta(t, float64(kt.rate), kt.adjusted, 1e-6*float64(kt.rate), "SampleRate and th agree")
		}
		if len(st.key) > 12 && st.key[:12] == "svc-rare GET" && st.at.Sub(start) >= settle {
			rareSent[st.key]++
			if kt != nil {
				rareSeen[st.key]++
			}
		}
		if st.at.Sub(start) < settle {
			continue
		}
		sentSteady++
		if kt != nil {
			keptSteadySpans += kt.spans
			reweighted += int(kt.rate)
		}
	}
	steadySecs := end.Sub(start.Add(settle)).Seconds()
	outRate := float64(keptSteadySpans) / steadySecs
	t.Logf("sent %d traces (%d errors, kept %d); after %v: sent %d traces, kept %d spans = %.0f spans/s (budget %d), re-weighted %d",
		len(sent), sentErrors, keptErrors, settle, sentSteady, keptSteadySpans, outRate, budget, reweighted)
	assert.Equal(t, sentErrors, keptErrors, "every error trace kept")
	assert.InEpsilon(t, budget, outRate, 0.15, "output after the first intervals: on budget")
	assert.InEpsilon(t, sentSteady, reweighted, 0.10, "kept traces re-weighted by SampleRate: what was sent")
	for k, n := range rareSent {
		assert.Equal(t, n, rareSeen[k], "key %q (once per interval) kept every time", k)
	}

	// The extension's own telemetry on the gateway's metrics endpoint.
	metrics := scrape(t, col)
	target := regexp.MustCompile(`(?m)^otelcol_adaptive_sampling_target_rate_per_second\{[^}]*policy="sample-the-rest"[^}]*\} (\S+)$`).FindStringSubmatch(metrics)
	require.NotNil(t, target, "otelcol_adaptive_sampling_target_rate on /metrics")
	assert.Equal(t, strconv.Itoa(budget), target[1])
	assert.Regexp(t, `(?m)^otelcol_adaptive_sampling_keys_tracked[^}]*\} [1-9]`, metrics)
	assert.Regexp(t, `(?m)^otelcol_adaptive_sampling_output_rate_per_second\{[^}]*\} [1-9]`, metrics)
}
