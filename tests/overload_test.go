package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

// slowBackend is an OTLP/gRPC trace backend whose export calls take a
// settable time: with the exporter's two consumers, a delay caps the rate it
// accepts. It records every span it receives by tier and sequence number.
type slowBackend struct {
	ptraceotlp.UnimplementedGRPCServer
	delay atomic.Int64 // nanoseconds per export call

	mu       sync.Mutex
	received map[string]map[int]int // tier -> seq -> times received
}

func (b *slowBackend) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	time.Sleep(time.Duration(b.delay.Load()))
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, rs := range req.Traces().ResourceSpans().All() {
		tier, _ := rs.Resource().Attributes().Get("service.tier")
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				seq, _ := s.Attributes().Get("seq")
				m := b.received[tier.Str()]
				if m == nil {
					m = map[int]int{}
					b.received[tier.Str()] = m
				}
				m[int(seq.Int())]++
			}
		}
	}
	return ptraceotlp.NewExportResponse(), nil
}

func (b *slowBackend) count(tier string) (unique, duplicates int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range b.received[tier] {
		unique++
		duplicates += n - 1
	}
	return unique, duplicates
}

// sender is one service sending batches of spans at a fixed rate, retrying
// retryable refusals with backoff as an OTLP SDK does, for up to 30s.
type sender struct {
	tier     string
	interval time.Duration
	spans    int
	token    string // bearer token, for the gateway
	pad      int    // bytes of a "payload" attribute on every span (large spans)

	mu       sync.Mutex
	sent     int         // spans offered
	accepted []int       // seq of spans the collector accepted (HTTP 200)
	refusals []time.Time // when a 503 came back
	bodies   []string    // what the refusals said
	gaveUp   int
	// err is why the sender stopped early (a failed request, an answer
	// that is neither success nor a retryable refusal). run runs on its
	// own goroutine, where require must not be called: the test checks
	// err after the senders stopped.
	err error
}

func (s *sender) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *sender) run(ctx context.Context, url string, wg *sync.WaitGroup) {
	defer wg.Done()
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	seq := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		first := seq
		seq += s.spans
		body := s.batch(first)
		s.mu.Lock()
		s.sent += s.spans
		s.mu.Unlock()
		backoff := 50 * time.Millisecond
		deadline := time.Now().Add(30 * time.Second)
		for {
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				s.fail(err)
				return
			}
			req.Header.Set("Content-Type", "application/x-protobuf")
			if s.token != "" {
				req.Header.Set("Authorization", "Bearer "+s.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				s.fail(fmt.Errorf("%s: %w", s.tier, err))
				return
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.mu.Lock()
				for i := range s.spans {
					s.accepted = append(s.accepted, first+i)
				}
				s.mu.Unlock()
				break
			}
			if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusTooManyRequests {
				s.fail(fmt.Errorf("%s: a refusal must be retryable (503 or 429), got %d %s", s.tier, resp.StatusCode, msg))
				return
			}
			s.mu.Lock()
			s.refusals = append(s.refusals, time.Now())
			s.bodies = append(s.bodies, string(msg))
			s.mu.Unlock()
			if time.Now().After(deadline) {
				s.mu.Lock()
				s.gaveUp += s.spans
				s.mu.Unlock()
				break
			}
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
		}
	}
}

func (s *sender) batch(first int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc-"+s.tier)
	rs.Resource().Attributes().PutStr("service.tier", s.tier)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	now := time.Now()
	for i := range s.spans {
		sp := spans.AppendEmpty()
		sp.SetName("op")
		// One trace per request, its own per tier: tail sampling (in the
		// gateway) decides on whole traces of one service.
		sp.SetTraceID(pcommon.TraceID{1, s.tier[0], byte(first >> 24), byte(first >> 16), byte(first >> 8), byte(first)})
		sp.SetSpanID(pcommon.SpanID{2, byte(i), byte(first >> 24), byte(first >> 16), byte(first >> 8), byte(first)})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		sp.Attributes().PutInt("seq", int64(first+i))
		if s.pad > 0 {
			sp.Attributes().PutStr("payload", strings.Repeat("x", s.pad))
		}
	}
	b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	return b
}

// levelLog polls queuewatch's status and keeps when each level was seen and
// when each tier was first shed.
type levelLog struct {
	mu        sync.Mutex
	seen      []levelAt
	firstShed map[string]time.Time
	maxLevel  string
}

type levelAt struct {
	at    time.Time
	level string
}

type statusDoc struct {
	Level    string `json:"level"`
	Shedding []struct {
		Tier   string `json:"tier"`
		Reason string `json:"reason"`
		Total  int64  `json:"total"`
	} `json:"shedding"`
}

func (l *levelLog) poll(ctx context.Context, url string, wg *sync.WaitGroup) {
	defer wg.Done()
	rank := map[string]int{"ok": 0, "elevated": 1, "high": 2, "critical": 3}
	for ctx.Err() == nil {
		resp, err := http.Get(url)
		if err == nil {
			var st statusDoc
			_ = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			now := time.Now()
			l.mu.Lock()
			l.seen = append(l.seen, levelAt{now, st.Level})
			if rank[st.Level] > rank[l.maxLevel] {
				l.maxLevel = st.Level
			}
			for _, s := range st.Shedding {
				if s.Reason != "refused" && s.Total > 0 {
					if _, ok := l.firstShed[s.Tier]; !ok {
						l.firstShed[s.Tier] = now
					}
				}
			}
			l.mu.Unlock()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// levelAround is the highest level seen within d of t.
func (l *levelLog) levelsAround(t time.Time, d time.Duration) map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]bool{}
	for _, s := range l.seen {
		if s.at.After(t.Add(-d)) && s.at.Before(t.Add(d)) {
			out[s.level] = true
		}
	}
	return out
}

// metricSum sums the values of a counter's series whose labels match.
func metricSum(body, name, labelMatch string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{([^}]*)\} (\S+)$`)
	sum := 0.0
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		if labelMatch != "" && !regexp.MustCompile(labelMatch).MatchString(m[1]) {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		sum += v
	}
	return sum
}

// TestOverloadShedsByTier drives the built collector (tests/testdata/overload.yaml:
// backpressure in front of an OTLP/gRPC exporter watched by queuewatch) with
// three services, gold, silver and bronze, sending at fixed rates, against a
// backend that accepts about half the offered rate for 10 seconds and then
// recovers. It checks: no gold span lost; no span dropped for a full queue
// (enqueue_failed stays 0); bronze shed before silver; senders refused
// (HTTP 503, retryable) only around critical; the level back to ok soon
// after the backend recovers; and every span the collector accepted either
// delivered or counted as deliberately shed.
func TestOverloadShedsByTier(t *testing.T) {
	backend := &slowBackend{received: map[string]map[int]int{}}
	l := listen(t)
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, backend)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)

	status := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	col := startCollectorEnv(t, []string{"FABRIC_BACKEND=" + l.Addr().String(), "FABRIC_STATUS_ENDPOINT=" + status},
		"--config", "tests/testdata/overload.yaml")

	// Offered: gold 60, silver 30, bronze 30 requests/s of 10 spans; the
	// backend's two export workers at 33 ms per call take about 60/s.
	backend.delay.Store(int64(33 * time.Millisecond))
	senders := map[string]*sender{
		"gold":   {tier: "gold", interval: 16 * time.Millisecond, spans: 10},
		"silver": {tier: "silver", interval: 33 * time.Millisecond, spans: 10},
		"bronze": {tier: "bronze", interval: 33 * time.Millisecond, spans: 10},
	}
	levels := &levelLog{firstShed: map[string]time.Time{}, maxLevel: "ok"}
	ctx, stop := context.WithCancel(context.Background())
	var wg, pollWG sync.WaitGroup
	pollCtx, stopPoll := context.WithCancel(context.Background())
	pollWG.Add(1)
	go levels.poll(pollCtx, "http://"+status+"/status", &pollWG)
	for _, s := range senders {
		wg.Add(1)
		go s.run(ctx, "http://"+col.HTTP+"/v1/traces", &wg)
	}

	time.Sleep(10 * time.Second)
	backend.delay.Store(0) // the store recovers
	recovered := time.Now()
	time.Sleep(3 * time.Second)
	stop()
	wg.Wait()
	for _, s := range senders {
		require.NoError(t, s.err, "sender %s", s.tier)
	}

	// Back to ok: each level steps down after hold_time (1s) once the queue drained.
	require.Eventually(t, func() bool {
		levels.mu.Lock()
		defer levels.mu.Unlock()
		return len(levels.seen) > 0 && levels.seen[len(levels.seen)-1].level == "ok"
	}, 15*time.Second, 50*time.Millisecond, "the level did not return to ok")
	stopPoll()
	pollWG.Wait()
	var okAt time.Time
	levels.mu.Lock()
	for i := len(levels.seen) - 1; i >= 0 && levels.seen[i].level == "ok"; i-- {
		okAt = levels.seen[i].at
	}
	maxLevel := levels.maxLevel
	firstShed := levels.firstShed
	levels.mu.Unlock()
	t.Logf("highest level %s; back to ok %.1fs after the backend recovered", maxLevel, okAt.Sub(recovered).Seconds())
	assert.Equal(t, "critical", maxLevel, "the overload reached critical")
	assert.Less(t, okAt.Sub(recovered), 8*time.Second, "recovery: queue drained and three 1s hold steps")

	// Everything queued reaches the backend.
	metrics := ""
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		metrics = scrape(c, col)
		assert.Zero(c, metricSum(metrics, "otelcol_exporter_queue_size", ""))
	}, 20*time.Second, 100*time.Millisecond, "the exporter queue did not drain")

	assert.Zero(t, metricSum(metrics, "otelcol_exporter_enqueue_failed_spans_total", ""), "no span dropped for a full queue")
	assert.Zero(t, metricSum(metrics, "otelcol_exporter_send_failed_spans_total", ""), "no span failed to send")

	var table strings.Builder
	table.WriteString("| tier | sent | acknowledged | delivered | shed (counted) | lost | duplicates | refused (retryable) |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	defer func() {
		if !t.Failed() {
			reliability.record("Overload by tier: 2x what the store takes",
				"FABRIC_BIN=bin/otelcol-fabric go test -count=1 -run TestOverloadShedsByTier ./tests/",
				fmt.Sprintf("tests/testdata/overload.yaml (queuewatch + backpressure, a small exporter queue); offered gold 60, silver 30, bronze 30 "+
					"requests/s of 10 spans against a backend that takes about 60/s, for 10 s, then the backend recovers. Highest level %s; "+
					"refusals only at critical; bronze shed first.\n\n%s", maxLevel, table.String()))
		}
	}()
	for _, tier := range []string{"gold", "silver", "bronze"} {
		s := senders[tier]
		s.mu.Lock()
		accepted, sent, gaveUp, refusals := len(s.accepted), s.sent, s.gaveUp, append([]time.Time(nil), s.refusals...)
		bodies := append([]string(nil), s.bodies...)
		s.mu.Unlock()
		delivered, dups := backend.count(tier)
		shed := metricSum(metrics, "otelcol_processor_backpressure_items_shed_total", `tier="`+tier+`"`)
		refused := metricSum(metrics, "otelcol_processor_backpressure_items_refused_total", `tier="`+tier+`"`)
		t.Logf("%-6s sent %5d accepted %5d delivered %5d (dups %d) shed %5.0f refused %5.0f (%d refusals) gave up %d",
			tier, sent, accepted, delivered, dups, shed, refused, len(refusals), gaveUp)
		fmt.Fprintf(&table, "| %s | %d | %d | %d | %.0f | %d | %d | %.0f |\n", tier, sent, accepted, delivered, shed, accepted-delivered-int(shed), dups, refused)
		assert.Zero(t, dups, "%s: no span delivered twice", tier)
		assert.Equal(t, accepted, delivered+int(shed), "%s: every accepted span is delivered or counted as shed", tier)
		for i, at := range refusals {
			assert.Contains(t, bodies[i], "backpressure", "%s: refusals come from backpressure, not a full queue", tier)
			assert.True(t, levels.levelsAround(at, 300*time.Millisecond)["critical"],
				"%s: a refusal at %s came when the level was not critical", tier, at.Format("15:04:05.000"))
		}
		if tier == "gold" {
			assert.Equal(t, sent, delivered, "gold: not one span lost")
			assert.Zero(t, shed, "gold is never shed")
			assert.Zero(t, gaveUp)
		}
	}
	require.Contains(t, firstShed, "bronze", "bronze was shed")
	if silverAt, ok := firstShed["silver"]; ok {
		assert.True(t, firstShed["bronze"].Before(silverAt), "bronze shed before silver")
	}
	require.Equal(t, 0, col.terminate())
}
