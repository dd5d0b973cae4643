package adaptivesamplingextension

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/big"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/tailsamplingprocessor/pkg/samplingpolicy"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

// contribProbabilistic is tail_sampling's probabilistic policy as of
// v0.145.0 (processor/tailsamplingprocessor/internal/sampling/probabilistic.go),
// line for line: its package is internal, so it cannot be imported.
type contribProbabilistic struct {
	logger    *zap.Logger
	threshold uint64
	hashSalt  string
}

func newContribProbabilistic(percent float64) *contribProbabilistic {
	boundary := new(big.Float).SetInt(new(big.Int).SetUint64(math.MaxUint64))
	res, _ := boundary.Mul(boundary, big.NewFloat(percent/100)).Uint64()
	return &contribProbabilistic{logger: zap.NewNop(), threshold: res, hashSalt: "default-hash-seed"}
}

func (s *contribProbabilistic) Evaluate(_ context.Context, traceID pcommon.TraceID, _ *samplingpolicy.TraceData) (samplingpolicy.Decision, error) {
	s.logger.Debug("Evaluating spans in probabilistic filter")
	hasher := fnv.New64a()
	_, _ = hasher.Write([]byte(s.hashSalt))
	_, _ = hasher.Write(traceID[:])
	if hasher.Sum64() <= s.threshold {
		return samplingpolicy.Sampled, nil
	}
	return samplingpolicy.NotSampled, nil
}

// benchTraces are n traces of 10 spans each (15 attributes on the root, 10
// on the others), spread over `keys` keys (service x root span name).
func benchTraces(n, keys int) ([]pcommon.TraceID, []*samplingpolicy.TraceData) {
	rng := rand.New(rand.NewPCG(11, 11))
	ids := make([]pcommon.TraceID, n)
	tds := make([]*samplingpolicy.TraceData, n)
	for i := range n {
		k := i % keys
		id, td := makeTrace(rng, fmt.Sprintf("service-%d", k%100), fmt.Sprintf("GET /api/v1/resource-%d", k/100), 10, ptrace.StatusCodeUnset)
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for s := range spans.Len() {
			attrs := spans.At(s).Attributes()
			for a := range 10 {
				attrs.PutStr(fmt.Sprintf("attr.%d", a), "value")
			}
		}
		spans.At(0).Attributes().PutStr("http.route", "/api/v1/resource")
		ids[i], tds[i] = id, &samplingpolicy.TraceData{ReceivedBatches: td, SpanCount: 10}
	}
	return ids, tds
}

// BenchmarkEvaluate: one decision per op, the adaptive policy with 1k and
// 100k keys in its rate table beside contrib's probabilistic policy, on the
// same 4,096 traces (10 spans each). The rate table is filled with keys of
// the same shape first. Kept traces are not marked here (tail_sampling
// decides a trace once, and these are decided over and over): BenchmarkMark
// measures marking.
func BenchmarkEvaluate(b *testing.B) {
	allIDs, allTDs := benchTraces(4096, 4096)
	for _, c := range []struct {
		traces int
		keys   int
	}{{64, 1_000}, {4096, 1_000}, {4096, 100_000}} {
		// 64 traces stay in the CPU caches; 4,096 (about 30 MB of pdata)
		// do not, as the traces a tail_sampling decision tick reads do not.
		ids, tds := allIDs[:c.traces], allTDs[:c.traces]
		keys := c.keys
		b.Run(fmt.Sprintf("policy=probabilistic/traces=%d/keys=%d", c.traces, keys), func(b *testing.B) {
			e := newContribProbabilistic(10)
			runtime.GC()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_, _ = e.Evaluate(context.Background(), ids[i%len(ids)], tds[i%len(tds)])
				i++
			}
		})
		b.Run(fmt.Sprintf("policy=adaptive/traces=%d/keys=%d", c.traces, keys), func(b *testing.B) {
			cfg := testConfig()
			cfg.MaxKeys = 200_000
			cfg.SampleRateAttribute = ""
			cfg.TraceState = false
			a, _ := newTestExtension(b, cfg, nil)
			clock := time.Unix(1_700_000_000, 0)
			a.now = func() time.Time { return clock }
			ev, _ := a.NewEvaluator("bench", nil)
			e := ev.(*evaluator)
			z := newZipfStream(14, 2, 0)
			for k := range keys { // the rest of the table
				e.s.decide(fmt.Appendf(nil, "=service-%d\x1f=GET /api/v1/other-%d\x1f=2xx\x1f=false\x1f", k%100, k), 3, z.randomness(), 1, clock)
			}
			for i := range tds {
				_, _ = ev.Evaluate(context.Background(), ids[i], tds[i])
			}
			clock = clock.Add(cfg.AdjustmentInterval)
			_, _ = ev.Evaluate(context.Background(), ids[0], tds[0]) // rates computed
			runtime.GC()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_, _ = ev.Evaluate(context.Background(), ids[i%len(ids)], tds[i%len(tds)])
				i++
			}
		})
	}
}

// BenchmarkMark: writing the rate on a kept trace of 10 spans.
func BenchmarkMark(b *testing.B) {
	ids, tds := benchTraces(1, 1)
	_ = ids
	e := &evaluator{attr: "SampleRate", tracestate: true}
	r := newRate(7)
	b.ReportAllocs()
	for b.Loop() {
		spans := tds[0].ReceivedBatches.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for s := range spans.Len() {
			spans.At(s).TraceState().FromRaw("")
			spans.At(s).Attributes().Remove("SampleRate")
		}
		e.mark(tds[0].ReceivedBatches, r, 1)
	}
}

// BenchmarkAdjust: the end of an interval (averages and rates recomputed),
// on tail_sampling's decision path once per adjustment_interval.
func BenchmarkAdjust(b *testing.B) {
	for _, keys := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			cfg := testConfig()
			cfg.MaxKeys = keys
			t0 := time.Unix(1_700_000_000, 0)
			s := newSampler(cfg, t0)
			z := newZipfStream(12, uint64(keys), 0)
			names := make([][]byte, keys)
			for i := range names {
				names[i] = fmt.Appendf(nil, "=service-%d\x1f=GET /api/v1/resource-%d\x1f", i%100, i)
			}
			for i := range keys * 3 {
				s.decide(names[i%keys], 1, z.randomness(), 1, t0)
			}
			now := t0
			b.ReportAllocs()
			for b.Loop() {
				for i := range keys {
					st := s.keys[string(names[i])]
					st.count, st.traces = 3, 3
				}
				s.inItems = float64(keys * 3)
				now = now.Add(cfg.AdjustmentInterval)
				s.adjust(now)
			}
		})
	}
}

// TestMemoryPerKey measures the heap a tracked key costs, with keys of the
// default fields' size (about 60 bytes), and logs it for the README.
func TestMemoryPerKey(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100k keys")
	}
	cfg := testConfig()
	cfg.MaxKeys = 200_000
	const keys = 100_000
	names := make([][]byte, keys)
	for i := range names {
		names[i] = fmt.Appendf(nil, "=service-%03d\x1f=GET /api/v1/resource-%06d\x1f=2xx\x1f=false\x1f", i%100, i)
	}
	z := newZipfStream(13, 2, 0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	t0 := time.Unix(1_700_000_000, 0)
	s := newSampler(cfg, t0)
	for i := range keys {
		s.decide(names[i], 1, z.randomness(), 1, t0)
	}
	s.adjust(t0.Add(cfg.AdjustmentInterval)) // averages, rates, sort buffers
	runtime.GC()
	runtime.ReadMemStats(&after)
	perKey := float64(after.HeapAlloc-before.HeapAlloc) / keys
	t.Logf("heap per tracked key: %.0f bytes (key string %d bytes), %d keys", perKey, len(names[0]), len(s.keys))
	if perKey > 400 {
		t.Errorf("heap per tracked key %.0f bytes: README says under 400", perKey)
	}
	runtime.KeepAlive(s)
}
