package tagguardprocessor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor/internal/metadatatest"
)

// kind is one metric shape of the property test.
type kind struct {
	name string
	// fill sets series i's point for round r (values grow with r for
	// cumulative kinds, are per-round increments for delta kinds).
	fill func(m pmetric.Metric, i, r int, start, ts pcommon.Timestamp)
	// total is what the test checks is preserved: the sum over every series
	// of the last cumulative value, or of every delta value sent.
	cumulative bool
}

// Series i sends i%7+1 per round; histograms put each observation in bucket i%4.
func incr(i int) int64 { return int64(i%7 + 1) }

var bounds = []float64{10, 100, 1000}

var kinds = []kind{
	{name: "cumulative int sum", cumulative: true, fill: func(m pmetric.Metric, i, r int, start, ts pcommon.Timestamp) {
		s := sumOf(m)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		s.SetIsMonotonic(true)
		dp := s.DataPoints().AppendEmpty()
		setPoint(dp, i, start, ts)
		dp.SetIntValue(incr(i) * int64(r+1))
	}},
	{name: "delta double sum", fill: func(m pmetric.Metric, i, r int, start, ts pcommon.Timestamp) {
		s := sumOf(m)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		s.SetIsMonotonic(true)
		dp := s.DataPoints().AppendEmpty()
		setPoint(dp, i, start, ts)
		dp.SetDoubleValue(float64(incr(i)) / 4)
	}},
	{name: "cumulative histogram", cumulative: true, fill: func(m pmetric.Metric, i, r int, start, ts pcommon.Timestamp) {
		h := histogramOf(m)
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := h.DataPoints().AppendEmpty()
		setPoint(dp, i, start, ts)
		fillHistogram(dp, i, int64(r+1))
	}},
	{name: "delta histogram", fill: func(m pmetric.Metric, i, r int, start, ts pcommon.Timestamp) {
		h := histogramOf(m)
		h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		dp := h.DataPoints().AppendEmpty()
		setPoint(dp, i, start, ts)
		fillHistogram(dp, i, 1)
	}},
	{name: "cumulative exponential histogram", cumulative: true, fill: func(m pmetric.Metric, i, r int, start, ts pcommon.Timestamp) {
		h := expOf(m)
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := h.DataPoints().AppendEmpty()
		setPoint(dp, i, start, ts)
		// Different series use different scales, so folding has to rescale.
		n := uint64(incr(i)) * uint64(r+1)
		dp.SetScale(int32(i % 3))
		dp.SetCount(2 * n)
		dp.SetSum(float64(3 * n))
		dp.SetZeroCount(n)
		dp.Positive().SetOffset(int32(i % 5))
		dp.Positive().BucketCounts().FromRaw([]uint64{n})
	}},
}

func sumOf(m pmetric.Metric) pmetric.Sum {
	if m.Type() == pmetric.MetricTypeEmpty {
		m.SetEmptySum()
	}
	return m.Sum()
}

func histogramOf(m pmetric.Metric) pmetric.Histogram {
	if m.Type() == pmetric.MetricTypeEmpty {
		m.SetEmptyHistogram()
	}
	return m.Histogram()
}

func expOf(m pmetric.Metric) pmetric.ExponentialHistogram {
	if m.Type() == pmetric.MetricTypeEmpty {
		m.SetEmptyExponentialHistogram()
	}
	return m.ExponentialHistogram()
}

func setPoint(dp interface {
	Attributes() pcommon.Map
	SetStartTimestamp(pcommon.Timestamp)
	SetTimestamp(pcommon.Timestamp)
}, i int, start, ts pcommon.Timestamp,
) {
	dp.Attributes().PutStr("user.id", fmt.Sprintf("u-%05d", i))
	dp.Attributes().PutInt("shard", int64(i%3))
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(ts)
}

func fillHistogram(dp pmetric.HistogramDataPoint, i int, times int64) {
	n := uint64(incr(i) * times)
	buckets := make([]uint64, len(bounds)+1)
	buckets[i%4] = n
	dp.ExplicitBounds().FromRaw(bounds)
	dp.BucketCounts().FromRaw(buckets)
	dp.SetCount(n)
	dp.SetSum(float64(n) * 2)
}

// totals is what must be preserved: sum of values, or count, sum and bucket
// counts.
type totals struct {
	value   float64
	count   uint64
	sum     float64
	buckets [8]uint64
	zero    uint64
}

func (a *totals) addPoint(m pmetric.Metric, onlyOverflow bool) (series int) {
	visit := func(attrs pcommon.Map, f func()) {
		_, ov := attrs.Get(overflowKey)
		if onlyOverflow && !ov {
			return
		}
		series++
		f()
	}
	switch m.Type() {
	case pmetric.MetricTypeSum:
		for _, dp := range m.Sum().DataPoints().All() {
			visit(dp.Attributes(), func() {
				if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
					a.value += float64(dp.IntValue())
				} else {
					a.value += dp.DoubleValue()
				}
			})
		}
	case pmetric.MetricTypeHistogram:
		for _, dp := range m.Histogram().DataPoints().All() {
			visit(dp.Attributes(), func() {
				a.count += dp.Count()
				a.sum += dp.Sum()
				for j, c := range dp.BucketCounts().All() {
					a.buckets[j] += c
				}
			})
		}
	case pmetric.MetricTypeExponentialHistogram:
		for _, dp := range m.ExponentialHistogram().DataPoints().All() {
			visit(dp.Attributes(), func() {
				a.count += dp.Count()
				a.sum += dp.Sum()
				a.zero += dp.ZeroCount()
				for _, c := range dp.Positive().BucketCounts().All() {
					a.buckets[0] += c
				}
			})
		}
	}
	return series
}

// TestSeriesCapPreservesTotals feeds N >> cap distinct series over several
// rounds for each aggregating kind, and checks that exactly cap+1 series come
// out of each round and that the totals (of the last cumulative round, or of
// every delta round) equal what was sent.
func TestSeriesCapPreservesTotals(t *testing.T) {
	const (
		limit  = 50
		series = 1000
		rounds = 4
	)
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, cfgWith(func(c *Config) { c.Metrics.MaxSeriesPerMetric = limit }))
			start := pcommon.Timestamp(1_700_000_000_000_000_000)
			var sent, got totals
			for r := range rounds {
				md := pmetric.NewMetrics()
				ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
				// Series arrive in a different order every round, split over
				// two batches, so admission does not depend on order.
				order := rand.New(rand.NewPCG(uint64(r), 7)).Perm(series)
				ts := start + pcommon.Timestamp((r+1)*int(time.Second))
				m := ms.AppendEmpty()
				m.SetName("requests")
				for _, i := range order[:series/2] {
					k.fill(m, i, r, start, ts)
				}
				md2 := pmetric.NewMetrics()
				m2 := md2.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
				m2.SetName("requests")
				for _, i := range order[series/2:] {
					k.fill(m2, i, r, start, ts)
				}
				if k.cumulative {
					sent = totals{}
				}
				sent.addPoint(m, false)
				sent.addPoint(m2, false)

				h.metrics.Reset()
				require.NoError(t, h.mp.ConsumeMetrics(ctx, md))
				require.NoError(t, h.mp.ConsumeMetrics(ctx, md2))
				if k.cumulative {
					// The last point of each series carries its total: the
					// admitted series' own points plus the newest overflow point.
					got = totals{}
				}
				out := map[string]bool{}
				var lastOverflow pmetric.Metric
				for _, b := range h.metrics.AllMetrics() {
					om := b.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
					forEachAttrs(om, func(attrs pcommon.Map) {
						if _, ov := attrs.Get(overflowKey); ov {
							out[overflowKey] = true
							return
						}
						u, _ := attrs.Get("user.id")
						require.False(t, out[u.Str()], "series %s twice", u.Str())
						out[u.Str()] = true
					})
					got.addAdmitted(om)
					if !k.cumulative {
						got.addPoint(om, true)
					} else if hasOverflow(om) {
						lastOverflow = om
					}
				}
				if k.cumulative {
					got.addPoint(lastOverflow, true)
				}
				require.Len(t, out, limit+1, "round %d: cap series plus one overflow series", r)
				assertTotals(t, sent, got, r)
			}
			metadatatest.AssertEqualProcessorTagguardDatapointsFolded(t, h.tel, []metricdata.DataPoint[int64]{
				{Value: int64((series - limit) * rounds), Attributes: attribute.NewSet(attribute.String("mode", "enforce"))},
			}, metricdatatest.IgnoreTimestamp())
			metadatatest.AssertEqualProcessorTagguardSeriesTracked(t, h.tel, []metricdata.DataPoint[int64]{{Value: limit}}, metricdatatest.IgnoreTimestamp())
		})
	}
}

func assertTotals(t *testing.T, sent, got totals, round int) {
	t.Helper()
	assert.InDelta(t, sent.value, got.value, 1e-6, "round %d: value total", round)
	assert.Equal(t, sent.count, got.count, "round %d: count total", round)
	assert.InDelta(t, sent.sum, got.sum, 1e-6, "round %d: sum total", round)
	assert.Equal(t, sent.buckets, got.buckets, "round %d: bucket totals", round)
	assert.Equal(t, sent.zero, got.zero, "round %d: zero count total", round)
}

// addAdmitted adds the points that are not the overflow series.
func (a *totals) addAdmitted(m pmetric.Metric) {
	c := pmetric.NewMetric()
	m.CopyTo(c)
	removeOverflow(c)
	a.addPoint(c, false)
}

func removeOverflow(m pmetric.Metric) {
	isOv := func(attrs pcommon.Map) bool { _, ok := attrs.Get(overflowKey); return ok }
	switch m.Type() {
	case pmetric.MetricTypeSum:
		m.Sum().DataPoints().RemoveIf(func(dp pmetric.NumberDataPoint) bool { return isOv(dp.Attributes()) })
	case pmetric.MetricTypeHistogram:
		m.Histogram().DataPoints().RemoveIf(func(dp pmetric.HistogramDataPoint) bool { return isOv(dp.Attributes()) })
	case pmetric.MetricTypeExponentialHistogram:
		m.ExponentialHistogram().DataPoints().RemoveIf(func(dp pmetric.ExponentialHistogramDataPoint) bool { return isOv(dp.Attributes()) })
	}
}

func hasOverflow(m pmetric.Metric) bool {
	found := false
	forEachAttrs(m, func(attrs pcommon.Map) {
		if _, ok := attrs.Get(overflowKey); ok {
			found = true
		}
	})
	return found
}

func forEachAttrs(m pmetric.Metric, f func(pcommon.Map)) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		for _, dp := range m.Gauge().DataPoints().All() {
			f(dp.Attributes())
		}
	case pmetric.MetricTypeSum:
		for _, dp := range m.Sum().DataPoints().All() {
			f(dp.Attributes())
		}
	case pmetric.MetricTypeHistogram:
		for _, dp := range m.Histogram().DataPoints().All() {
			f(dp.Attributes())
		}
	case pmetric.MetricTypeExponentialHistogram:
		for _, dp := range m.ExponentialHistogram().DataPoints().All() {
			f(dp.Attributes())
		}
	case pmetric.MetricTypeSummary:
		for _, dp := range m.Summary().DataPoints().All() {
			f(dp.Attributes())
		}
	}
}

func TestGaugeOverflowKeepsLatest(t *testing.T) {
	h := newHarness(t, cfgWith(func(c *Config) { c.Metrics.MaxSeriesPerMetric = 2 }))
	md := pmetric.NewMetrics()
	g := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge()
	for i, v := range []float64{1, 2, 3, 40, 5} {
		dp := g.DataPoints().AppendEmpty()
		dp.Attributes().PutInt("pod", int64(i))
		dp.SetDoubleValue(v)
		dp.SetTimestamp(pcommon.Timestamp([]int{5, 5, 5, 9, 7}[i]))
	}
	require.NoError(t, h.mp.ConsumeMetrics(context.Background(), md))
	dps := h.metrics.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints()
	require.Equal(t, 3, dps.Len())
	ov := dps.At(2)
	assert.Equal(t, map[string]any{overflowKey: true}, ov.Attributes().AsRaw())
	assert.InDelta(t, 40.0, ov.DoubleValue(), 0, "the newest folded value")
	assert.Equal(t, pcommon.Timestamp(9), ov.Timestamp())
}

func TestSeriesWindowFreesSlots(t *testing.T) {
	h := newHarness(t, cfgWith(func(c *Config) {
		c.Metrics.MaxSeriesPerMetric = 3
		c.Metrics.SeriesWindow = time.Minute
	}))
	now := time.Unix(1_800_000_000, 0)
	h.setClock(t, func() time.Time { return now })
	send := func(pods ...string) (kept []string, overflow bool) {
		md := pmetric.NewMetrics()
		s := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptySum()
		s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		for _, p := range pods {
			dp := s.DataPoints().AppendEmpty()
			dp.Attributes().PutStr("pod", p)
			dp.SetIntValue(1)
		}
		h.metrics.Reset()
		require.NoError(t, h.mp.ConsumeMetrics(context.Background(), md))
		for _, dp := range h.metrics.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().All() {
			if _, ok := dp.Attributes().Get(overflowKey); ok {
				overflow = true
				continue
			}
			v, _ := dp.Attributes().Get("pod")
			kept = append(kept, v.Str())
		}
		return kept, overflow
	}
	kept, ov := send("a", "b", "c", "d")
	assert.Equal(t, []string{"a", "b", "c"}, kept)
	assert.True(t, ov)
	now = now.Add(45 * time.Second)
	kept, ov = send("a", "d")
	assert.Equal(t, []string{"a"}, kept, "b and c still hold their slots")
	assert.True(t, ov)
	// b and c have not reported for 75s: their slots are free for d and e.
	now = now.Add(30 * time.Second)
	kept, ov = send("a", "d", "e", "f")
	assert.Equal(t, []string{"a", "d", "e"}, kept)
	assert.True(t, ov)
}

func TestCumulativeResetIsCountedOnce(t *testing.T) {
	h := newHarness(t, cfgWith(func(c *Config) { c.Metrics.MaxSeriesPerMetric = 1 }))
	send := func(start pcommon.Timestamp, values ...int64) float64 {
		md := pmetric.NewMetrics()
		s := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptySum()
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		s.SetIsMonotonic(true)
		for i, v := range values {
			dp := s.DataPoints().AppendEmpty()
			dp.Attributes().PutInt("pod", int64(i))
			dp.SetStartTimestamp(start)
			dp.SetIntValue(v)
		}
		h.metrics.Reset()
		require.NoError(t, h.mp.ConsumeMetrics(context.Background(), md))
		dps := h.metrics.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints()
		ov := dps.At(dps.Len() - 1)
		_, ok := ov.Attributes().Get(overflowKey)
		require.True(t, ok)
		return float64(ov.IntValue())
	}
	// pod 0 is admitted; pods 1 and 2 fold.
	assert.InDelta(t, 30.0, send(1, 5, 10, 20), 0)
	assert.InDelta(t, 45.0, send(1, 6, 15, 30), 0, "increases 5 and 10")
	// pod 2 restarts (its counter went down): its new value is all new.
	assert.InDelta(t, 51.0, send(1, 7, 17, 4), 0, "increases 2 and 4")
	// Every pod reports a new start time: each folded value is all new.
	assert.InDelta(t, 60.0, send(2, 8, 1, 8), 0, "increases 1 and 8")
}

func TestUntrackedPastMaxMetrics(t *testing.T) {
	h := newHarness(t, cfgWith(func(c *Config) {
		c.Metrics.MaxSeriesPerMetric = 1
		c.Metrics.MaxMetrics = 2
	}))
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	for _, name := range []string{"a", "b", "c"} {
		m := ms.AppendEmpty()
		m.SetName(name)
		g := m.SetEmptyGauge()
		for i := range 3 {
			dp := g.DataPoints().AppendEmpty()
			dp.Attributes().PutInt("i", int64(i))
		}
	}
	require.NoError(t, h.mp.ConsumeMetrics(context.Background(), md))
	out := h.metrics.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	assert.Equal(t, 2, out.At(0).Gauge().DataPoints().Len(), "a: one series and the overflow")
	assert.Equal(t, 2, out.At(1).Gauge().DataPoints().Len(), "b: one series and the overflow")
	assert.Equal(t, 3, out.At(2).Gauge().DataPoints().Len(), "c: past max_metrics, passed through")
	metadatatest.AssertEqualProcessorTagguardMetricsUntracked(t, h.tel, []metricdata.DataPoint[int64]{{Value: 3}}, metricdatatest.IgnoreTimestamp())
}

func TestAccumulatorExponentialDownscale(t *testing.T) {
	// Scale 1 buckets at indexes 4,5,6,7 fold into scale 0 indexes 2,2,3,3.
	e := expBuckets{offset: 4, counts: []uint64{1, 2, 3, 4}}
	e.downscale(1)
	assert.Equal(t, expBuckets{offset: 2, counts: []uint64{3, 7}}, e)
	// Negative indexes round down.
	e = expBuckets{offset: -3, counts: []uint64{1, 1, 1}}
	e.downscale(1)
	assert.Equal(t, expBuckets{offset: -2, counts: []uint64{1, 2}}, e, "-3 -> -2; -2, -1 -> -1")
	var total uint64
	for _, c := range e.counts {
		total += c
	}
	assert.Equal(t, uint64(3), total)
}
