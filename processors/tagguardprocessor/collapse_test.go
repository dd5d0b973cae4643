package tagguardprocessor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
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

// dropUserID is the blueprint's metric rule in small: only shard stays on
// data points, so user.id goes and the series of one shard become one.
func dropUserID(c *Config) {
	c.Scopes = map[string]ScopeRules{sDatapointName: {Allow: []string{"shard"}}}
}

const sDatapointName = "datapoint"

// TestCollapsedSeriesMerged sends 600 series (user.id x shard) of every
// aggregating kind over several rounds, each round split over two batches
// with the same timestamps, with user.id dropped: exactly one series per
// shard comes out, without user.id, and its value is the total sent to that
// shard (for cumulative kinds, the newest merged point carries the sum of
// every series' newest value); cumulative merged series keep one start time
// and strictly increasing timestamps.
func TestCollapsedSeriesMerged(t *testing.T) {
	const (
		series = 600
		rounds = 4
		shards = 3
	)
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, cfgWith(dropUserID))
			start := pcommon.Timestamp(1_700_000_000_000_000_000)
			var sent, got [shards]totals
			lastTS := map[int64]pcommon.Timestamp{}
			starts := map[int64]pcommon.Timestamp{}
			for r := range rounds {
				order := rand.New(rand.NewPCG(uint64(r), 11)).Perm(series)
				ts := start + pcommon.Timestamp((r+1)*int(time.Second))
				if k.cumulative {
					sent, got = [shards]totals{}, [shards]totals{}
				}
				h.metrics.Reset()
				for _, part := range [][]int{order[:series/2], order[series/2:]} {
					md := pmetric.NewMetrics()
					m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
					m.SetName("requests")
					for _, i := range part {
						one := pmetric.NewMetric()
						k.fill(one, i, r, start, ts)
						sent[i%shards].addPoint(one, false)
						k.fill(m, i, r, start, ts)
					}
					require.NoError(t, h.mp.ConsumeMetrics(ctx, md))
				}
				for bi, b := range h.metrics.AllMetrics() {
					om := b.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
					seen := map[int64]bool{}
					forEachPoint(om, func(attrs pcommon.Map, startTS, pointTS pcommon.Timestamp, only pmetric.Metric) {
						_, hasUser := attrs.Get("user.id")
						require.False(t, hasUser, "user.id is dropped")
						require.Equal(t, 1, attrs.Len(), "only shard stays: %v", attrs.AsRaw())
						sh, ok := attrs.Get("shard")
						require.True(t, ok)
						s := sh.Int()
						require.False(t, seen[s], "batch %d: shard %d twice", bi, s)
						seen[s] = true
						if k.cumulative {
							// The newest point of a cumulative series is its total.
							got[s] = totals{}
							if prev, ok := starts[s]; ok {
								assert.Equal(t, prev, startTS, "one start time per merged series")
							}
							starts[s] = startTS
							assert.Greater(t, pointTS, lastTS[s], "timestamps strictly increase")
							lastTS[s] = pointTS
						}
						got[s].addPoint(only, false)
					})
					require.Len(t, seen, shards, "batch %d: one series per shard", bi)
				}
				for s := range shards {
					assertTotals(t, sent[s], got[s], r)
				}
			}
			metadatatest.AssertEqualProcessorTagguardDatapointsMerged(t, h.tel, []metricdata.DataPoint[int64]{
				{Value: series * rounds, Attributes: attribute.NewSet(attribute.String("mode", "enforce"))},
			}, metricdatatest.IgnoreTimestamp())
		})
	}
}

// forEachPoint calls f with each data point, copied alone into a metric of
// the same kind (for totals.addPoint).
func forEachPoint(m pmetric.Metric, f func(attrs pcommon.Map, start, ts pcommon.Timestamp, only pmetric.Metric)) {
	one := func() pmetric.Metric {
		c := pmetric.NewMetric()
		c.SetName(m.Name())
		return c
	}
	switch m.Type() {
	case pmetric.MetricTypeSum:
		for _, dp := range m.Sum().DataPoints().All() {
			c := one()
			c.SetEmptySum().SetAggregationTemporality(m.Sum().AggregationTemporality())
			dp.CopyTo(c.Sum().DataPoints().AppendEmpty())
			f(dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), c)
		}
	case pmetric.MetricTypeHistogram:
		for _, dp := range m.Histogram().DataPoints().All() {
			c := one()
			c.SetEmptyHistogram()
			dp.CopyTo(c.Histogram().DataPoints().AppendEmpty())
			f(dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), c)
		}
	case pmetric.MetricTypeExponentialHistogram:
		for _, dp := range m.ExponentialHistogram().DataPoints().All() {
			c := one()
			c.SetEmptyExponentialHistogram()
			dp.CopyTo(c.ExponentialHistogram().DataPoints().AppendEmpty())
			f(dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), c)
		}
	}
}

// TestCollapsedGaugeKeepsNewest: gauges of collapsed series become one point,
// the newest.
func TestCollapsedGaugeKeepsNewest(t *testing.T) {
	h := newHarness(t, cfgWith(dropUserID))
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("queue_depth")
	dps := m.SetEmptyGauge().DataPoints()
	for i, v := range []float64{5, 9, 7} {
		dp := dps.AppendEmpty()
		dp.Attributes().PutStr("user.id", fmt.Sprint(i))
		dp.Attributes().PutInt("shard", 1)
		dp.SetTimestamp(pcommon.Timestamp(1000 + []int{1, 3, 2}[i]))
		dp.SetDoubleValue(v)
	}
	require.NoError(t, h.mp.ConsumeMetrics(context.Background(), md))
	out := h.metrics.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints()
	require.Equal(t, 1, out.Len())
	assert.InDelta(t, 9.0, out.At(0).DoubleValue(), 0, "the newest point")
	assert.Equal(t, map[string]any{"shard": int64(1)}, out.At(0).Attributes().AsRaw())
}

// TestCollapseWithUntouchedSeries: a series that had nothing removed but
// has the identity of series that did (shard=1 with and without user.id) is
// merged with them, in the batch where they first meet and afterwards.
func TestCollapseWithUntouchedSeries(t *testing.T) {
	h := newHarness(t, cfgWith(dropUserID))
	send := func(round int64) pmetric.NumberDataPointSlice {
		md := pmetric.NewMetrics()
		m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("requests")
		s := m.SetEmptySum()
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		s.SetIsMonotonic(true)
		plain := s.DataPoints().AppendEmpty()
		plain.Attributes().PutInt("shard", 1)
		plain.SetIntValue(100 * round)
		plain.SetTimestamp(pcommon.Timestamp(round * 1e9))
		withUser := s.DataPoints().AppendEmpty()
		withUser.Attributes().PutInt("shard", 1)
		withUser.Attributes().PutStr("user.id", "u1")
		withUser.SetIntValue(10 * round)
		withUser.SetTimestamp(pcommon.Timestamp(round * 1e9))
		h.metrics.Reset()
		require.NoError(t, h.mp.ConsumeMetrics(context.Background(), md))
		return h.metrics.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints()
	}
	for round := int64(1); round <= 3; round++ {
		out := send(round)
		require.Equal(t, 1, out.Len(), "round %d: one series", round)
		assert.Equal(t, 110*round, out.At(0).IntValue(), "round %d: both series' totals", round)
	}
}

// TestMemoryBudgetIsGlobal fills the metric state of many streams with
// cumulative series past the budget: the estimated bytes stay within the
// budget, what did not fit is counted, and the heap the state holds stays
// within the budget (with the slack of the estimate).
func TestMemoryBudgetIsGlobal(t *testing.T) {
	const budgetMiB = 2
	h := newHarness(t, cfgWith(dropUserID, func(c *Config) {
		c.Metrics.MemoryLimitMiB = budgetMiB
		c.Metrics.MaxSeriesPerMetric = 20000
	}))
	g, ok := shared.Get(h.cfg)
	require.True(t, ok)
	ctx := context.Background()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// 200 streams x 500 series, each with a user.id: on the old, per-stream
	// bound this held 100,000 remembered points (tens of MB).
	for s := range 200 {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", s))
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("requests")
		sum := m.SetEmptySum()
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		sum.SetIsMonotonic(true)
		for i := range 500 {
			dp := sum.DataPoints().AppendEmpty()
			dp.Attributes().PutStr("user.id", fmt.Sprintf("u-%d", i))
			dp.Attributes().PutInt("shard", int64(i%250)) // two users per shard: collapsed
			dp.SetIntValue(int64(i))
			dp.SetTimestamp(1e9)
		}
		require.NoError(t, h.mp.ConsumeMetrics(ctx, md))
	}
	h.metrics.Reset()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	tr := g.series
	tr.mu.Lock()
	bytes := tr.usedBytes()
	tr.mu.Unlock()
	assert.LessOrEqual(t, bytes, int64(budgetMiB<<20), "estimated state within the budget")
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	assert.Less(t, held, int64(2*budgetMiB<<20), "heap held by the state (%d bytes) within twice the budget", held)
	assert.Greater(t, bytes, int64(budgetMiB<<20)*3/4, "the budget was used")
	var full int64
	for _, dp := range stateFull(t, h) {
		full += dp.Value
	}
	assert.Positive(t, full, "degraded points are counted")
	t.Logf("estimated %d bytes, heap held %d bytes, %d degraded points", bytes, held, full)
}

func stateFull(t *testing.T, h *harness) []metricdata.DataPoint[int64] {
	m, err := h.tel.GetMetric("otelcol_processor_tagguard_state_full")
	require.NoError(t, err)
	return m.Data.(metricdata.Sum[int64]).DataPoints
}
