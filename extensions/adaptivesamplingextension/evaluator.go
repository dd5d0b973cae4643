package adaptivesamplingextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/adaptivesamplingextension"

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/tailsamplingprocessor/pkg/samplingpolicy"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/adaptivesamplingextension/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/internal/pressure"
)

// evaluator is the tail_sampling policy: it keys each trace, counts it in
// the rate table and keeps it at its key's rate, deterministically on the
// trace's randomness, and writes that rate on every span it keeps.
type evaluator struct {
	policy     string
	fields     []field
	maxLen     int
	spans      bool // the target counts spans, not traces
	attr       string
	tracestate bool
	src        pressure.Source // nil: budget alone
	factors    Factors
	now        func() time.Time

	tb        *metadata.TelemetryBuilder
	attrs     metric.MeasurementOption // policy, unit
	policyOpt metric.MeasurementOption // policy

	mu    sync.Mutex
	s     *sampler
	buf   []byte
	level pressure.Level
}

var _ samplingpolicy.Evaluator = (*evaluator)(nil)

func newEvaluator(policy string, cfg *Config, src pressure.Source, tb *metadata.TelemetryBuilder, now func() time.Time) *evaluator {
	fields := make([]field, 0, len(cfg.KeyFields))
	for _, f := range cfg.KeyFields {
		pf, _ := parseField(f) // Validate has parsed them
		fields = append(fields, pf)
	}
	e := &evaluator{
		policy:     policy,
		fields:     fields,
		maxLen:     cfg.MaxValueLength,
		spans:      cfg.Target.SpansPerSecond > 0,
		attr:       cfg.SampleRateAttribute,
		tracestate: cfg.TraceState,
		src:        src,
		factors:    cfg.Pressure.Factors,
		now:        now,
		tb:         tb,
		attrs: metric.WithAttributeSet(attribute.NewSet(
			attribute.String("policy", policy), attribute.String("unit", cfg.unit()))),
		policyOpt: metric.WithAttributeSet(attribute.NewSet(attribute.String("policy", policy))),
		s:         newSampler(cfg, now()),
	}
	e.record(context.Background(), e.s.last)
	return e
}

// Evaluate decides one trace.
func (e *evaluator) Evaluate(ctx context.Context, id pcommon.TraceID, td *samplingpolicy.TraceData) (samplingpolicy.Decision, error) {
	v := view(td.ReceivedBatches)
	items := 1.0
	if e.spans {
		items = float64(v.spans)
	}
	rnd, pUp := randomness(id, &v)

	e.mu.Lock()
	buf := e.buf[:0]
	for _, f := range e.fields {
		buf = f.appendValue(buf, &v, e.maxLen)
	}
	e.buf = buf
	changed := false
	if e.src != nil {
		if lvl := e.src.Level(); lvl != e.level {
			e.level = lvl
			changed = e.s.setFactor(e.factors.at(lvl))
		}
	}
	d := e.s.decide(buf, items, rnd, pUp, e.now())
	st := e.s.last
	e.mu.Unlock()

	if d.adjusted || changed {
		e.record(ctx, st)
	}
	if d.overflowed {
		e.tb.AdaptiveSamplingOverflowTraces.Add(ctx, 1, e.policyOpt)
	}
	if !d.keep {
		return samplingpolicy.NotSampled, nil
	}
	e.mark(td.ReceivedBatches, d.r, pUp)
	return samplingpolicy.Sampled, nil
}

func (e *evaluator) record(ctx context.Context, st stats) {
	e.tb.AdaptiveSamplingTargetRate.Record(ctx, st.target, e.attrs)
	e.tb.AdaptiveSamplingInputRate.Record(ctx, st.inRate, e.attrs)
	e.tb.AdaptiveSamplingOutputRate.Record(ctx, st.outRate, e.attrs)
	e.tb.AdaptiveSamplingKeysTracked.Record(ctx, int64(st.keys), e.policyOpt)
	e.tb.AdaptiveSamplingPressureFactor.Record(ctx, st.factor, e.policyOpt)
}

// randomness is the trace's sampling randomness: the root span's explicit
// rv from its tracestate, else the trace ID's low 56 bits (W3C Trace
// Context level 2 random trace IDs), as the probabilistic sampler reads it.
// Two gateways reading the same trace thus decide the same at a rate. The
// second result is the probability of the root span's th, when an earlier
// consistent sampler set one (1 otherwise).
func randomness(id pcommon.TraceID, v *traceView) (sampling.Randomness, float64) {
	rnd, pUp := sampling.TraceIDToRandomness(id), 1.0
	if !v.found {
		return rnd, pUp
	}
	raw := v.root.TraceState().AsRaw()
	if !strings.Contains(raw, "ot=") {
		return rnd, pUp
	}
	w3c, err := sampling.NewW3CTraceState(raw)
	if err != nil {
		return rnd, pUp
	}
	ot := w3c.OTelValue()
	if r, ok := ot.RValueRandomness(); ok {
		rnd = r
	}
	if th, ok := ot.TValueThreshold(); ok && ot.TValue() != "" {
		if p := th.Probability(); p > 0 && p < 1 {
			pUp = p
		}
	}
	return rnd, pUp
}

// mark writes the rate on every span of a kept trace. The sample rate
// attribute is how many traces the trace stands for: 1 in n, times an
// earlier sampler's integer rate on the span (as Refinery multiplies), or,
// when an earlier consistent sampler set th, the adjusted count of the
// combined threshold (which already holds the earlier rate). The
// tracestate's ot entry gets that threshold (th).
func (e *evaluator) mark(td ptrace.Traces, r rate, pUp float64) {
	th, combined := r.th, int64(0)
	if pUp < 1 {
		if r.n > 1 {
			th = thresholdFor(pUp / float64(r.n))
		} else {
			th = thresholdFor(pUp)
		}
		combined = int64(math.Round(th.AdjustedCount()))
	}
	var lastIn, lastOut string
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				s := spans.At(k)
				if e.attr != "" {
					n := int64(r.n)
					if combined > 0 {
						n = combined
					} else if prev, ok := s.Attributes().Get(e.attr); ok {
						if p := upstreamRate(prev); p > 1 {
							n = saturatingMul(n, p)
						}
					}
					s.Attributes().PutInt(e.attr, n)
				}
				if !e.tracestate {
					continue
				}
				in := s.TraceState().AsRaw()
				if in != lastIn || lastOut == "" {
					lastIn, lastOut = in, withThreshold(in, th)
				}
				if lastOut != in {
					s.TraceState().FromRaw(lastOut)
				}
			}
		}
	}
}

// withThreshold returns the tracestate with the sampling threshold th
// folded into its ot= value; the tracestate unchanged when it does not
// parse, or when it already carries a higher threshold (a stricter earlier
// sampler, whose count stands).
func withThreshold(raw string, th sampling.Threshold) string {
	w3c, err := sampling.NewW3CTraceState(raw)
	if err != nil {
		return raw
	}
	if err := w3c.OTelValue().UpdateTValueWithSampling(th); err != nil {
		return raw
	}
	var b strings.Builder
	if err := w3c.Serialize(&b); err != nil {
		return raw
	}
	return b.String()
}

func upstreamRate(v pcommon.Value) int64 {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeDouble:
		if f := v.Double(); f >= 1 && f < math.MaxInt64 {
			return int64(math.Round(f))
		}
	}
	return 0
}

func saturatingMul(a, b int64) int64 {
	if a > 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}
