package adaptivesamplingextension

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/tailsamplingprocessor"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/tailsamplingprocessor/pkg/samplingpolicy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/adaptivesamplingextension/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/extensions/adaptivesamplingextension/internal/metadatatest"
	"github.com/otelcol-fabric/otelcol-fabric/internal/pressure"
)

// fakePressure is a queuewatch stand-in: only the level matters here.
type fakePressure struct{ level atomic.Int32 }

func (f *fakePressure) Level() pressure.Level                     { return pressure.Level(f.level.Load()) }
func (*fakePressure) Fill() float64                               { return 0 }
func (*fakePressure) Room(string) (float64, time.Time, bool)      { return 0, time.Time{}, false }
func (*fakePressure) ReportShed(string, string, string, int)      {}
func (*fakePressure) Start(context.Context, component.Host) error { return nil }
func (*fakePressure) Shutdown(context.Context) error              { return nil }

type testHost struct {
	component.Host
	ext map[component.ID]component.Component
}

func (h testHost) GetExtensions() map[component.ID]component.Component { return h.ext }

// makeTrace is a trace of `spans` spans of service svc, whose root span is
// named op; the trace ID is random in its low 56 bits.
func makeTrace(rng *rand.Rand, svc, op string, spans int, status ptrace.StatusCode) (pcommon.TraceID, ptrace.Traces) {
	var id pcommon.TraceID
	for i := range id {
		id[i] = byte(rng.UintN(256))
	}
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", svc)
	ss := rs.ScopeSpans().AppendEmpty()
	for i := range spans {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(id)
		s.SetSpanID(pcommon.SpanID{byte(i + 1), 1, 2, 3, 4, 5, 6, 7})
		s.SetStartTimestamp(pcommon.Timestamp(1000 + i))
		if i == 0 {
			s.SetName(op)
			s.Attributes().PutInt("http.response.status_code", 200)
		} else {
			s.SetName(fmt.Sprintf("child-%d", i))
			s.SetParentSpanID(pcommon.SpanID{1, 1, 2, 3, 4, 5, 6, 7})
		}
		if i == spans-1 {
			s.Status().SetCode(status)
		}
	}
	return id, td
}

func newTestExtension(t testing.TB, cfg *Config, ext map[component.ID]component.Component) (*adaptive, *componenttest.Telemetry) {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	a, err := newAdaptive(metadatatest.NewSettings(tel), cfg)
	require.NoError(t, err)
	if ext == nil {
		ext = map[component.ID]component.Component{}
	}
	ext[component.NewID(metadata.Type)] = a
	require.NoError(t, a.Start(context.Background(), testHost{Host: componenttest.NewNopHost(), ext: ext}))
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	return a, tel
}

// Two evaluators given the same traces keep the same ones: the decision
// rests on the trace ID, not on a random draw.
func TestEvaluatorsAgree(t *testing.T) {
	cfg := testConfig()
	a, _ := newTestExtension(t, cfg, nil)
	clock := time.Unix(1_700_000_000, 0)
	a.now = func() time.Time { return clock }
	e1, err := a.NewEvaluator("one", nil)
	require.NoError(t, err)
	e2, err := a.NewEvaluator("two", nil)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(7, 7))
	kept, differ := 0, 0
	for i := range 20_000 {
		clock = time.Unix(1_700_000_000, 0).Add(time.Duration(i) * 2 * time.Millisecond)
		id, td := makeTrace(rng, fmt.Sprintf("svc-%d", rng.IntN(5)), fmt.Sprintf("op-%d", rng.IntN(20)), 3, ptrace.StatusCodeUnset)
		td2 := ptrace.NewTraces() // each its own copy: e1 marks what it keeps
		td.CopyTo(td2)
		d1, err := e1.Evaluate(context.Background(), id, &samplingpolicy.TraceData{ReceivedBatches: td})
		require.NoError(t, err)
		d2, err := e2.Evaluate(context.Background(), id, &samplingpolicy.TraceData{ReceivedBatches: td2})
		require.NoError(t, err)
		if d1 != d2 {
			differ++
		}
		if d1 == samplingpolicy.Sampled {
			kept++
		}
	}
	assert.Zero(t, differ)
	assert.Positive(t, kept)
	assert.Less(t, kept, 20_000/2, "the stream is 5x the target: most traces are dropped")
}

// A kept trace carries its rate on every span, as SampleRate and as the
// OpenTelemetry threshold, and the two agree.
func TestKeptTraceCarriesRate(t *testing.T) {
	cfg := testConfig()
	cfg.InitialSampleRate = 4
	a, _ := newTestExtension(t, cfg, nil)
	e, err := a.NewEvaluator("p", nil)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(8, 8))
	checked := 0
	for range 200 {
		id, td := makeTrace(rng, "svc", "op", 4, ptrace.StatusCodeUnset)
		span0 := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		span0.At(2).TraceState().FromRaw("vendor=x")
		span0.At(3).Attributes().PutInt("SampleRate", 3) // an earlier sampler's
		d, err := e.Evaluate(context.Background(), id, &samplingpolicy.TraceData{ReceivedBatches: td})
		require.NoError(t, err)
		if d != samplingpolicy.Sampled {
			continue
		}
		checked++
		for i := range span0.Len() {
			s := span0.At(i)
			rate, ok := s.Attributes().Get("SampleRate")
			require.True(t, ok, "span %d", i)
			want := int64(4)
			if i == 3 {
				want = 12
			}
			assert.Equal(t, want, rate.Int(), "span %d", i)
			w3c, err := sampling.NewW3CTraceState(s.TraceState().AsRaw())
			require.NoError(t, err, "span %d tracestate %q", i, s.TraceState().AsRaw())
			assert.InDelta(t, 4, w3c.OTelValue().AdjustedCount(), 1e-9, "span %d tracestate %q", i, s.TraceState().AsRaw())
			if i == 2 {
				assert.Contains(t, s.TraceState().AsRaw(), "vendor=x", "other vendors' entries stay")
			}
			// The decision is consistent with the threshold written.
			th, _ := w3c.OTelValue().TValueThreshold()
			assert.True(t, th.ShouldSample(sampling.TraceIDToRandomness(id)))
		}
	}
	assert.Greater(t, checked, 20)
}

// The target follows queuewatch's level: halved at high, back at ok; the
// telemetry says so.
func TestEvaluatorFollowsPressure(t *testing.T) {
	cfg := testConfig()
	cfg.Pressure.Required = true
	src := &fakePressure{}
	a, tel := newTestExtension(t, cfg, map[component.ID]component.Component{component.MustNewID("queuewatch"): src})
	e, err := a.NewEvaluator("p", nil)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(9, 9))
	eval := func() {
		id, td := makeTrace(rng, "svc", "op", 2, ptrace.StatusCodeUnset)
		_, err := e.Evaluate(context.Background(), id, &samplingpolicy.TraceData{ReceivedBatches: td})
		require.NoError(t, err)
	}
	target := func(want, factor float64) {
		t.Helper()
		attrs := attribute.NewSet(attribute.String("policy", "p"), attribute.String("unit", "traces"))
		metadatatest.AssertEqualAdaptiveSamplingTargetRate(t, tel, []metricdata.DataPoint[float64]{{Attributes: attrs, Value: want}}, metricdatatest.IgnoreTimestamp())
		metadatatest.AssertEqualAdaptiveSamplingPressureFactor(t, tel, []metricdata.DataPoint[float64]{{Attributes: attribute.NewSet(attribute.String("policy", "p")), Value: factor}}, metricdatatest.IgnoreTimestamp())
	}
	eval()
	target(100, 1)
	src.level.Store(int32(pressure.High))
	eval()
	target(50, 0.5)
	src.level.Store(int32(pressure.Critical))
	eval()
	target(25, 0.25)
	src.level.Store(int32(pressure.OK))
	eval()
	target(100, 1)
}

func TestPressureRequired(t *testing.T) {
	cfg := testConfig()
	cfg.Pressure.Required = true
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(context.Background()) }()
	a, err := newAdaptive(metadatatest.NewSettings(tel), cfg)
	require.NoError(t, err)
	err = a.Start(context.Background(), testHost{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{}})
	require.ErrorContains(t, err, `pressure::extension "queuewatch" is not configured`)

	cfg.Pressure.Required = false
	a2, _ := newTestExtension(t, cfg, nil)
	_, err = a2.NewEvaluator("p", nil)
	require.NoError(t, err, "without queuewatch and not required, the budget alone")
}

// Through contrib's own tail_sampling processor: it finds the extension,
// hands it the policy's keys, and what it releases carries the rate.
func TestThroughTailSampling(t *testing.T) {
	// In a synctest bubble the processor's ticker and the sampler's
	// intervals run on the bubble's clock: the 4 s of traffic are 4 s for
	// the sampler however slow the machine, so the kept count does not
	// depend on the CI machine's load.
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.AdjustmentInterval = time.Second
		cfg.Target = Target{TracesPerSecond: 200}
		cfg.InitialSampleRate = 1
		a, tel := newTestExtension(t, cfg, nil)
		host := testHost{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{component.NewID(metadata.Type): a}}

		f := tailsamplingprocessor.NewFactory()
		pcfg := f.CreateDefaultConfig()
		require.NoError(t, confmap.NewFromStringMap(map[string]any{
			"decision_wait":         "200ms",
			"sample_on_first_match": true,
			"policies": []any{
				map[string]any{"name": "errors", "type": "status_code", "status_code": map[string]any{"status_codes": []any{"ERROR"}}},
				map[string]any{"name": "rest", "type": "adaptive_sampling", "adaptive_sampling": map[string]any{
					"key_fields": []any{"resource.attributes.service.name", "span.name", "trace.error"},
					"target":     map[string]any{"spans_per_second": 400}, // 200 traces/s of 2 spans
				}},
			},
		}).Unmarshal(pcfg))
		sink := new(consumertest.TracesSink)
		proc, err := f.CreateTraces(context.Background(), processortest.NewNopSettings(f.Type()), pcfg, sink)
		require.NoError(t, err)
		require.NoError(t, proc.Start(context.Background(), host))
		defer func() { require.NoError(t, proc.Shutdown(context.Background())) }()

		rng := rand.New(rand.NewPCG(10, 10))
		const rounds, perRound = 40, 100 // 1,000 traces/s for 4 s: 5x the target
		errorsSent := 0
		for r := range rounds {
			for i := range perRound {
				status := ptrace.StatusCodeUnset
				if i == 0 {
					status = ptrace.StatusCodeError
					errorsSent++
				}
				_, td := makeTrace(rng, fmt.Sprintf("svc-%d", r%3), fmt.Sprintf("op-%d", rng.IntN(10)), 2, status)
				require.NoError(t, proc.ConsumeTraces(context.Background(), td))
			}
			time.Sleep(100 * time.Millisecond)
		}
		require.Eventually(t, func() bool { return sink.SpanCount() > 0 }, 5*time.Second, 50*time.Millisecond)
		time.Sleep(2 * time.Second) // the last decisions
		var kept, errorsKept, rated int
		var represented int64 // the sum of the kept traces' SampleRate
		for _, td := range sink.AllTraces() {
			rss := td.ResourceSpans()
			for i := range rss.Len() {
				spans := rss.At(i).ScopeSpans().At(0).Spans()
				for k := range spans.Len() {
					s := spans.At(k)
					if !s.ParentSpanID().IsEmpty() {
						continue
					}
					kept++
					sr, hasRate := s.Attributes().Get("SampleRate")
					if spans.At(spans.Len()-1).Status().Code() == ptrace.StatusCodeError {
						errorsKept++
						assert.False(t, hasRate, "a trace kept by the errors policy carries no adaptive rate")
						continue
					}
					assert.True(t, hasRate, "a trace kept by the adaptive policy carries its rate")
					rated++
					represented += sr.Int()
				}
			}
		}
		assert.Equal(t, errorsSent, errorsKept, "every error trace kept by the always-keep policy")
		assert.Positive(t, rated)
		assert.Less(t, kept, rounds*perRound/2, "the adaptive policy sampled the rest down")
		// The rates written are what the kept traces stand for: their sum
		// estimates the traces the policy saw.
		assert.InEpsilon(t, rounds*perRound-errorsSent, represented, 0.1, "the SampleRate sum estimates the traces the adaptive policy saw")
		t.Logf("sent %d traces, kept %d (%d errors, %d by the adaptive policy, standing for %d)", rounds*perRound, kept, errorsKept, rated, represented)
		// The policy's own keys reached the extension: its target is the
		// override's, in spans.
		metadatatest.AssertEqualAdaptiveSamplingTargetRate(t, tel, []metricdata.DataPoint[float64]{{
			Attributes: attribute.NewSet(attribute.String("policy", "rest"), attribute.String("unit", "spans")), Value: 400,
		}}, metricdatatest.IgnoreTimestamp())
	})
}

// A trace an earlier consistent sampler kept (th in its tracestate) is
// decided at the combined threshold, and says so: SampleRate is the
// combined adjusted count and agrees with the th written. An explicit rv
// is the randomness the decision uses.
func TestUpstreamTraceState(t *testing.T) {
	cfg := testConfig()
	cfg.InitialSampleRate = 2
	a, _ := newTestExtension(t, cfg, nil)
	e, err := a.NewEvaluator("p", nil)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(12, 12))
	up, _ := sampling.ProbabilityToThreshold(0.25) // th:c
	kept, arrived := 0, 0
	for range 4000 {
		id, td := makeTrace(rng, "svc", "op", 2, ptrace.StatusCodeUnset)
		if !up.ShouldSample(sampling.TraceIDToRandomness(id)) {
			continue // the earlier sampler dropped it
		}
		arrived++
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for i := range spans.Len() {
			spans.At(i).TraceState().FromRaw("ot=th:c")
		}
		d, err := e.Evaluate(context.Background(), id, &samplingpolicy.TraceData{ReceivedBatches: td})
		require.NoError(t, err)
		if d != samplingpolicy.Sampled {
			continue
		}
		kept++
		for i := range spans.Len() {
			s := spans.At(i)
			rate, ok := s.Attributes().Get("SampleRate")
			require.True(t, ok)
			assert.Equal(t, int64(8), rate.Int(), "1 in 2 here, after 1 in 4 upstream")
			w3c, err := sampling.NewW3CTraceState(s.TraceState().AsRaw())
			require.NoError(t, err)
			assert.InDelta(t, 8, w3c.OTelValue().AdjustedCount(), 1e-6, "th: %q", s.TraceState().AsRaw())
		}
	}
	// 1 in 2 of the traces that arrived, not all of them (1/2 < 1/4 would
	// otherwise keep every arrived trace).
	assert.InDelta(t, float64(arrived)/2, float64(kept), float64(arrived)*0.06, "kept %d of %d arrived", kept, arrived)

	// rv decides: the same trace ID with rv 0 (lowest randomness) is never
	// kept at 1 in 2, with rv ff... always.
	for _, c := range []struct {
		rv   string
		keep bool
	}{{"00000000000000", false}, {"ffffffffffffff", true}} {
		id, td := makeTrace(rng, "svc", "op", 1, ptrace.StatusCodeUnset)
		td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceState().FromRaw("ot=rv:" + c.rv)
		d, err := e.Evaluate(context.Background(), id, &samplingpolicy.TraceData{ReceivedBatches: td})
		require.NoError(t, err)
		assert.Equal(t, c.keep, d == samplingpolicy.Sampled, "rv %s", c.rv)
	}
}
