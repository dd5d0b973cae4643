package tagguardprocessor

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

type sumPoint struct {
	worker, user string
	start, ts    int64 // seconds
	v            float64
	stale        bool
}

// sendSums sends one cumulative sum "requests" (shard=1 on every point) with
// the points given, each under a resource naming its worker, and returns the
// merged series' last value and time.
func sendSums(t *testing.T, h *harness, monotonic bool, pts ...sumPoint) (float64, int64) {
	t.Helper()
	md := pmetric.NewMetrics()
	byWorker := map[string]pmetric.NumberDataPointSlice{}
	for _, p := range pts {
		dps, ok := byWorker[p.worker]
		if !ok {
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("service.name", "checkout")
			rm.Resource().Attributes().PutStr("service.instance.id", p.worker)
			m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName("requests")
			s := m.SetEmptySum()
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			s.SetIsMonotonic(monotonic)
			dps = s.DataPoints()
			byWorker[p.worker] = dps
		}
		dp := dps.AppendEmpty()
		dp.Attributes().PutStr("user.id", p.user)
		dp.Attributes().PutInt("shard", 1)
		dp.SetStartTimestamp(pcommon.Timestamp(p.start * 1e9))
		dp.SetTimestamp(pcommon.Timestamp(p.ts * 1e9))
		dp.SetDoubleValue(p.v)
		if p.stale {
			dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
			dp.SetDoubleValue(0)
		}
	}
	h.metrics.Reset()
	require.NoError(t, h.mp.ConsumeMetrics(context.Background(), md))
	var last pmetric.NumberDataPoint
	found := false
	for _, b := range h.metrics.AllMetrics() {
		for _, rm := range b.ResourceMetrics().All() {
			for _, dp := range rm.ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().All() {
				if !found || dp.Timestamp() >= last.Timestamp() {
					last, found = dp, true
				}
			}
		}
	}
	require.True(t, found)
	return last.DoubleValue(), int64(last.Timestamp())
}

// A staleness marker (a failed scrape) of a merged series is not a reset:
// the next real value adds only its increase.
func TestCollapseStalenessMarkerIsNotAReset(t *testing.T) {
	h := newHarness(t, cfgWith(dropUserID))
	v, _ := sendSums(t, h, true, sumPoint{"w", "u1", 1, 10, 1000, false}, sumPoint{"w", "u2", 1, 10, 10, false})
	assert.InDelta(t, 1010.0, v, 0)
	_, _ = sendSums(t, h, true, sumPoint{"w", "u1", 1, 20, 0, true}, sumPoint{"w", "u2", 1, 20, 10, false})
	v, _ = sendSums(t, h, true, sumPoint{"w", "u1", 1, 30, 1001, false}, sumPoint{"w", "u2", 1, 30, 10, false})
	assert.InDelta(t, 1011.0, v, 0, "the staleness marker was counted as a reset")
}

// An up-down counter that restarts replaces its old value.
func TestCollapseUpDownCounterRestart(t *testing.T) {
	h := newHarness(t, cfgWith(dropUserID))
	v, _ := sendSums(t, h, false, sumPoint{"w", "u1", 1, 10, 50, false}, sumPoint{"w", "u2", 1, 10, 10, false})
	assert.InDelta(t, 60.0, v, 0)
	v, _ = sendSums(t, h, false, sumPoint{"w", "u1", 15, 20, 3, false}, sumPoint{"w", "u2", 1, 20, 10, false})
	assert.InDelta(t, 13.0, v, 0, "the restarted series' new value replaces its old one")
}

// Two processes that the resource rule makes alike (service.instance.id
// dropped) are different original series of one merged series.
func TestCollapseAcrossResources(t *testing.T) {
	h := newHarness(t, cfgWith(dropUserID, func(c *Config) {
		c.Scopes["resource"] = ScopeRules{Allow: []string{"service"}}
	}))
	for r := range 4 {
		v, _ := sendSums(t, h, true,
			sumPoint{"w1", "u1", 1, int64(10 + 10*r), float64(1000 + r), false},
			sumPoint{"w1", "u2", 1, int64(10 + 10*r), 1, false},
			sumPoint{"w2", "u1", 1, int64(10 + 10*r), float64(10 + r), false})
		assert.InDelta(t, float64(1011+2*r), v, 0, "round %d", r)
	}
}

// With the remembered points full, values that do not change do not make
// the merged total grow from one report to the next.
func TestCollapseBudgetFullDoesNotRecount(t *testing.T) {
	h := newHarness(t, cfgWith(dropUserID, func(c *Config) { c.Metrics.MemoryLimitMiB = 1 }))
	var first float64
	for r := range 3 {
		pts := make([]sumPoint, 0, 20000)
		for u := range 20000 {
			pts = append(pts, sumPoint{"w", fmt.Sprintf("u%d", u), 1, int64(10 + 10*r), 1, false})
		}
		v, _ := sendSums(t, h, true, pts...)
		if r == 0 {
			first = v
			continue
		}
		assert.InDelta(t, first, v, 0, "round %d: the total grew though nothing increased", r)
	}
	assert.Positive(t, first)
}
