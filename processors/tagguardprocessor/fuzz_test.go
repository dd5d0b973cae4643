package tagguardprocessor

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor/internal/metadata"
)

func fuzzGuard(t *testing.T) *guard {
	g, err := newGuard(processortest.NewNopSettings(metadata.Type), cfgWith(blueprint, func(c *Config) {
		c.Metrics.MaxSeriesPerMetric = 3
		c.Metrics.MemoryLimitMiB = 1
		c.MaxValuesPerKey = map[string]int{"http.route": 2}
	}))
	require.NoError(t, err)
	return g
}

// seedMetrics is one batch of every metric type, several series each.
func seedMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	for _, k := range kinds {
		m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName(k.name)
		for i := range 6 {
			k.fill(m, i, 1, 1, 2)
		}
	}
	g := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge()
	for i := range 5 {
		dp := g.DataPoints().AppendEmpty()
		dp.Attributes().PutInt("i", int64(i))
		dp.Attributes().PutStr("http.route", string(rune('a'+i)))
	}
	s := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptySummary()
	for i := range 5 {
		dp := s.DataPoints().AppendEmpty()
		dp.Attributes().PutInt("i", int64(i))
		dp.SetCount(uint64(i))
		dp.SetSum(float64(i))
	}
	return md
}

// FuzzProcessMetrics decodes arbitrary OTLP metrics and runs them through the
// guard twice (so folded state is exercised): no panic, and what comes out
// still encodes.
func FuzzProcessMetrics(f *testing.F) {
	seed, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(seedMetrics())
	require.NoError(f, err)
	f.Add(seed)
	for _, md := range hostileMetrics() {
		b, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(data)
		if err != nil {
			return
		}
		g := fuzzGuard(t)
		for range 2 {
			in := pmetric.NewMetrics()
			md.CopyTo(in)
			out, err := g.ProcessMetrics(context.Background(), in)
			require.NoError(t, err)
			_, err = (&pmetric.ProtoMarshaler{}).MarshalMetrics(out)
			require.NoError(t, err)
		}
	})
}

// FuzzProcessOtherSignals does the same for traces, logs and profiles.
func FuzzProcessOtherSignals(f *testing.F) {
	td := ptrace.NewTraces()
	span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	require.NoError(f, span.Attributes().FromRaw(noisy))
	tb, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	require.NoError(f, lr.Attributes().FromRaw(noisy))
	lb, _ := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	pb, _ := (&pprofile.ProtoMarshaler{}).MarshalProfiles(profileWithSampleAttrs(&testing.T{}, map[string]any{"trace_id": "t", "user.id": "u"}))
	f.Add(uint8(0), tb)
	f.Add(uint8(1), lb)
	f.Add(uint8(2), pb)
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		g := fuzzGuard(t)
		ctx := context.Background()
		switch which % 3 {
		case 0:
			if td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(data); err == nil {
				_, err = g.ProcessTraces(ctx, td)
				require.NoError(t, err)
			}
		case 1:
			if ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(data); err == nil {
				_, err = g.ProcessLogs(ctx, ld)
				require.NoError(t, err)
			}
		case 2:
			if pd, err := (&pprofile.ProtoUnmarshaler{}).UnmarshalProfiles(data); err == nil {
				_, err = g.ProcessProfiles(ctx, pd)
				require.NoError(t, err)
			}
		}
	})
}

// hostileMetrics are the crashers and edge cases of the fold and merge
// paths: exponential histograms with extreme scales and offsets (2^30 apart,
// int32 limits), NaN and Inf values, empty and huge attribute maps, and
// series that collapse when user.id is dropped.
func hostileMetrics() []pmetric.Metrics {
	var out []pmetric.Metrics
	newMetric := func() (pmetric.Metrics, pmetric.Metric) {
		md := pmetric.NewMetrics()
		return md, md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	}
	for _, temporality := range []pmetric.AggregationTemporality{pmetric.AggregationTemporalityDelta, pmetric.AggregationTemporalityCumulative} {
		md, m := newMetric()
		h := m.SetEmptyExponentialHistogram()
		h.SetAggregationTemporality(temporality)
		for i, e := range []struct {
			scale  int32
			offset int32
		}{{20, math.MinInt32}, {20, math.MaxInt32 - 1}, {-10, 1 << 30}, {math.MaxInt32, 0}, {math.MinInt32, -(1 << 30)}, {0, 0}} {
			dp := h.DataPoints().AppendEmpty()
			dp.Attributes().PutStr("user.id", fmt.Sprint(i))
			dp.SetScale(e.scale)
			dp.Positive().SetOffset(e.offset)
			dp.Positive().BucketCounts().FromRaw([]uint64{1, 2, 3})
			dp.Negative().SetOffset(-e.offset)
			dp.Negative().BucketCounts().FromRaw([]uint64{math.MaxUint64, 1})
			dp.SetCount(math.MaxUint64)
			dp.SetSum(math.Inf(1))
		}
		out = append(out, md)
	}
	md, m := newMetric()
	s := m.SetEmptySum()
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -0.0, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		dp := s.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("user.id", fmt.Sprint(i))
		dp.SetDoubleValue(v)
	}
	out = append(out, md)
	md, m = newMetric()
	hist := m.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i := range 4 {
		dp := hist.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("user.id", fmt.Sprint(i))
		dp.ExplicitBounds().FromRaw([]float64{math.NaN(), math.Inf(-1), float64(i), math.Inf(1)})
		dp.BucketCounts().FromRaw([]uint64{1, 2})
		dp.SetMin(math.NaN())
		dp.SetMax(math.Inf(1))
	}
	out = append(out, md)
	md, m = newMetric()
	g := m.SetEmptyGauge()
	g.DataPoints().AppendEmpty() // no attributes at all
	big := g.DataPoints().AppendEmpty()
	for i := range 2000 {
		big.Attributes().PutStr(fmt.Sprintf("k%d", i), fmt.Sprint(i))
	}
	big.Attributes().PutEmptyMap("nested").PutEmptySlice("s").AppendEmpty().SetEmptyBytes().FromRaw([]byte{0xff})
	out = append(out, md)
	return out
}
