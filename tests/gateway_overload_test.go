package tests

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// throttledTempo is a trace store that takes at most rate spans per second
// (a token bucket holding one second, or one full exporter batch, whichever
// is more) and answers every accepted export after latency. Over its rate, or
// while down, it answers UNAVAILABLE at once, as an overloaded Tempo
// distributor does; the exporter retries those. It records every span it
// accepted by tier and sequence number (slowBackend).
type throttledTempo struct {
	ptraceotlp.UnimplementedGRPCServer
	store   *slowBackend
	latency time.Duration

	mu       sync.Mutex
	rate     float64 // spans per second; <0: no limit; 0: down
	tokens   float64
	last     time.Time
	refused  atomic.Int64 // exports answered UNAVAILABLE
	accepted atomic.Int64 // exports accepted
}

// throttleBurst is above what one of the gateway's batches holds (at most
// 3.5 MiB: about 8,000 of the small test spans, 850 of the 4 KiB ones).
const throttleBurst = 20000

func (b *throttledTempo) setRate(r float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rate = r
}

func (b *throttledTempo) admit(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate < 0 {
		return true
	}
	now := time.Now()
	b.tokens = min(max(b.rate, throttleBurst), b.tokens+b.rate*now.Sub(b.last).Seconds())
	b.last = now
	if b.rate == 0 || b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

func (b *throttledTempo) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	if !b.admit(req.Traces().SpanCount()) {
		b.refused.Add(1)
		return ptraceotlp.NewExportResponse(), status.Error(codes.Unavailable, "ingestion rate limit exceeded")
	}
	select {
	case <-time.After(b.latency):
	case <-ctx.Done():
		// The exporter gave up (its timeout): the store still writes it,
		// as a store that already took the request would.
	}
	b.accepted.Add(1)
	return b.store.Export(ctx, req)
}

// gatewayOverloadCase is one run of TestGatewayOverloadByTier.
type gatewayOverloadCase struct {
	name                 string
	long                 bool    // make reliability only
	storeRate            float64 // spans/s the store takes during the overload (0: down)
	gold, silver, bronze int     // spans/s offered, in requests of 10 spans (one trace each)
	pad                  int     // bytes of payload per span
	queueItems           int     // FABRIC_QUEUE_ITEMS
	overload             time.Duration
}

// TestGatewayOverloadByTier drives the shipped configs/gateway.yaml (every
// processor, tail sampling keeping every trace so counts are exact, exporter
// batching in the persistent sending queues) with gold, silver and bronze
// services against a Tempo that takes a fixed span rate and answers each
// accepted write after 6 s (longer than the exporters' old 5 s timeout, which
// turned every slow answer into a duplicate). Then Tempo recovers and the
// queues drain. Cases: 2x and 5x what the store takes, small spans and 4 KiB
// ones, and Tempo down with gold at 500 spans/s against a small queue (the
// reliability issue's row 5, where 7,000 acknowledged gold spans were dropped
// with "sending queue is full"). Every case checks: no gold span lost or
// shed; every acknowledged span delivered or counted as shed; no span
// dropped for a full queue (enqueue_failed 0); no duplicates; refusals
// retryable and only from backpressure. `make test` runs the first case,
// `make reliability` all of them.
func TestGatewayOverloadByTier(t *testing.T) {
	cases := []gatewayOverloadCase{
		{name: "2x small spans", storeRate: 1000, gold: 500, silver: 750, bronze: 750, queueItems: 20000, overload: 30 * time.Second},
		{name: "store down, gold 500 per s, small queue", storeRate: 0, gold: 500, silver: 250, bronze: 250, queueItems: 20000, overload: 45 * time.Second},
		// 5x: the queue sized as docs/deployment.md says, (1 - critical) x
		// queue_size above what tail_sampling can hold (held_for x
		// 5,000 spans/s kept): with 20,000 items, the silver and bronze
		// accepted before the level rose overflowed it (560 gold lost).
		{name: "5x small spans", long: true, storeRate: 1000, gold: 500, silver: 2250, bronze: 2250, queueItems: 200000, overload: 60 * time.Second},
		// Large spans at a fifth of the rate (a 2-core machine's gateway
		// does not decode 5,000 spans of 4 KiB a second beside the senders).
		// The queue sized as docs/deployment.md says: (1 - critical) x
		// queue_size above what tail_sampling can hold (held_for x spans/s).
		{name: "2x 4 KiB spans", long: true, storeRate: 200, gold: 100, silver: 150, bronze: 150, pad: 4096, queueItems: 20000, overload: 45 * time.Second},
		{name: "5x 4 KiB spans", long: true, storeRate: 200, gold: 100, silver: 450, bronze: 450, pad: 4096, queueItems: 40000, overload: 45 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.long && os.Getenv("FABRIC_RELIABILITY_LONG") == "" {
				t.Skip("long: `make reliability` runs it (FABRIC_RELIABILITY_LONG=1)")
			}
			runGatewayOverload(t, c)
		})
	}
}

func runGatewayOverload(t *testing.T, c gatewayOverloadCase) {
	tempo := &throttledTempo{store: &slowBackend{received: map[string]map[int]int{}}, latency: 6 * time.Second, rate: c.storeRate, last: time.Now()}
	l := listen(t)
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, tempo)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	// Remote write is not under test here: a stand-in that takes everything.
	prw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(prw.Close)

	statusAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	col := startGatewayWith(t, prw.URL, l.Addr().String(), []string{
		"FABRIC_QUEUEWATCH_ENDPOINT=" + statusAddr,
		fmt.Sprintf("FABRIC_QUEUE_ITEMS=%d", c.queueItems),
		"FABRIC_SAMPLE_INITIAL_RATE=1",
		"FABRIC_SAMPLE_SPANS_PER_SEC=100000000",
	})
	rssBefore := peakRSS(t, col.cmd.Process.Pid)

	const spansPerRequest = 10
	every := func(perSecond int) time.Duration {
		return time.Duration(float64(time.Second) * spansPerRequest / float64(perSecond))
	}
	senders := map[string]*sender{
		"gold":   {tier: "gold", interval: every(c.gold), spans: spansPerRequest, token: gwToken, pad: c.pad},
		"silver": {tier: "silver", interval: every(c.silver), spans: spansPerRequest, token: gwToken, pad: c.pad},
		"bronze": {tier: "bronze", interval: every(c.bronze), spans: spansPerRequest, token: gwToken, pad: c.pad},
	}
	levels := &levelLog{firstShed: map[string]time.Time{}, maxLevel: "ok"}
	ctx, stop := context.WithCancel(context.Background())
	pollCtx, stopPoll := context.WithCancel(context.Background())
	var wg, pollWG sync.WaitGroup
	pollWG.Add(1)
	go levels.poll(pollCtx, "http://"+statusAddr+"/status", &pollWG)
	var maxQueue atomic.Int64
	pollWG.Add(1)
	go func() {
		defer pollWG.Done()
		for pollCtx.Err() == nil {
			if resp, err := http.Get("http://" + col.Metrics + "/metrics"); err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if q := int64(metricSum(string(body), "otelcol_exporter_queue_size", `exporter="otlp_grpc/tempo"`)); q > maxQueue.Load() {
					maxQueue.Store(q)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	for _, s := range senders {
		wg.Add(1)
		go s.run(ctx, "http://"+col.HTTP+"/v1/traces", &wg)
	}
	time.Sleep(c.overload)
	tempo.setRate(-1) // the store recovers
	time.Sleep(5 * time.Second)
	stop()
	wg.Wait()
	for _, s := range senders {
		require.NoError(t, s.err, "sender %s", s.tier)
	}

	// Everything acknowledged and not shed reaches Tempo.
	metrics := ""
	assert.EventuallyWithT(t, func(ct *assert.CollectT) {
		metrics = scrape(ct, col)
		assert.Zero(ct, metricSum(metrics, "otelcol_exporter_queue_size", `exporter="otlp_grpc/tempo"`), "tempo's queue drained")
		for tier, s := range senders {
			s.mu.Lock()
			accepted := len(s.accepted)
			s.mu.Unlock()
			delivered, _ := tempo.store.count(tier)
			shed := metricSum(metrics, "otelcol_processor_backpressure_items_shed_total", `tier="`+tier+`",.*signal="traces"|signal="traces",.*tier="`+tier+`"`)
			assert.Equal(ct, accepted, delivered+int(shed), "%s: acknowledged = delivered + shed", tier)
		}
	}, 120*time.Second, time.Second, "the queues did not drain")
	stopPoll()
	pollWG.Wait()
	rssPeak := peakRSS(t, col.cmd.Process.Pid)

	enqueueFailed := metricSum(metrics, "otelcol_exporter_enqueue_failed_spans_total", "")
	sendFailed := metricSum(metrics, "otelcol_exporter_send_failed_spans_total", `exporter="otlp_grpc/tempo"`)
	tooEarly := metricSum(metrics, "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early_total", "")
	assert.Zero(t, enqueueFailed, "no span dropped for a full queue")
	assert.Zero(t, sendFailed, "no span failed to send to Tempo")
	assert.Zero(t, tooEarly, "tail sampling dropped no trace before its decision")

	var table strings.Builder
	table.WriteString("| tier | offered | acknowledged | delivered to Tempo | shed (counted) | lost | duplicates | refused (retryable) | gave up after 30 s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	levels.mu.Lock()
	maxLevel := levels.maxLevel
	levels.mu.Unlock()
	for _, tier := range []string{"gold", "silver", "bronze"} {
		s := senders[tier]
		s.mu.Lock()
		accepted, sent, gaveUp, refusals := len(s.accepted), s.sent, s.gaveUp, append([]time.Time(nil), s.refusals...)
		bodies := append([]string(nil), s.bodies...)
		s.mu.Unlock()
		delivered, dups := tempo.store.count(tier)
		shed := metricSum(metrics, "otelcol_processor_backpressure_items_shed_total", `tier="`+tier+`",.*signal="traces"|signal="traces",.*tier="`+tier+`"`)
		refused := metricSum(metrics, "otelcol_processor_backpressure_items_refused_total", `tier="`+tier+`",.*signal="traces"|signal="traces",.*tier="`+tier+`"`)
		t.Logf("%-6s offered %6d acknowledged %6d delivered %6d (dups %d) shed %6.0f refused %6.0f (%d refusals) gave up %d",
			tier, sent, accepted, delivered, dups, shed, refused, len(refusals), gaveUp)
		fmt.Fprintf(&table, "| %s | %d | %d | %d | %.0f | %d | %d | %.0f | %d |\n", tier, sent, accepted, delivered, shed, accepted-delivered-int(shed), dups, refused, gaveUp)
		assert.Zero(t, dups, "%s: no span delivered twice", tier)
		for i := range refusals {
			assert.Contains(t, bodies[i], "backpressure", "%s: refusals come from backpressure, not a full queue or memory", tier)
		}
		if tier == "gold" {
			assert.Equal(t, accepted, delivered, "gold: every acknowledged span delivered")
			assert.Zero(t, shed, "gold is never shed")
		}
	}
	t.Logf("highest level %s; Tempo's queue peaked at %d of %d items; Tempo answered %d exports UNAVAILABLE and accepted %d; peak RSS %d -> %d MiB",
		maxLevel, maxQueue.Load(), c.queueItems, tempo.refused.Load(), tempo.accepted.Load(), rssBefore>>20, rssPeak>>20)
	if !t.Failed() {
		store := fmt.Sprintf("takes %.0f spans/s", c.storeRate)
		if c.storeRate == 0 {
			store = "is down (UNAVAILABLE)"
		}
		reliability.record("Gateway overload by tier: "+c.name,
			fmt.Sprintf("FABRIC_BIN=bin/otelcol-fabric FABRIC_RELIABILITY_LONG=1 go test -count=1 -run 'TestGatewayOverloadByTier/%s' ./tests/", strings.ReplaceAll(c.name, " ", "_")),
			fmt.Sprintf("configs/gateway.yaml (tail sampling keeping every trace, FABRIC_QUEUE_ITEMS=%d, decision_wait 1 s, held_for 6 s). Offered gold %d, silver %d, bronze %d spans/s "+
				"(traces of 10 spans, %d bytes of payload each) for %s while Tempo %s and answers each accepted write after 6 s; then Tempo takes everything. "+
				"Highest level %s; Tempo's queue peaked at %d items; enqueue_failed %.0f; dropped before decision %.0f; peak RSS %d MiB (%d at start).\n\n%s",
				c.queueItems, c.gold, c.silver, c.bronze, c.pad, c.overload, store, maxLevel, maxQueue.Load(), enqueueFailed, tooEarly, rssPeak>>20, rssBefore>>20, table.String()))
	}
	require.Equal(t, 0, col.terminate())
}
