package tagguardprocessor

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor/internal/metadata"
)

// BenchmarkStateMemory measures what the metric state really holds, per
// entry and for a full budget, and compares it with the estimate the budget
// is enforced on (the cost constants in metrics.go). The README's memory
// figures come from:
//
//	go test -run '^$' -bench StateMemory -benchtime 1x -count 3 ./processors/tagguardprocessor/
//
// Reported: heap-B/series (heap held by the state per series sent, after
// GC), est-B/series (the tracker's estimate), heap/est (the ratio; above 1
// means the budget under-counts), and for the full-budget case heap-MiB.
func BenchmarkStateMemory(b *testing.B) {
	shapes := []struct {
		name string
		// users per identity: 1 means nothing collapses (entries only,
		// no remembered points); 2 means pairs of series collapse, so each
		// original series has a remembered point and each identity a total.
		users   int
		buckets int // 0: a sum; otherwise an explicit histogram with this many bounds
		series  int
		budget  int // MiB
	}{
		{name: "entries/cumulative_sum", users: 1, series: 200_000, budget: 1024},
		{name: "collapsed/cumulative_sum", users: 2, series: 100_000, budget: 1024},
		{name: "collapsed/histogram_10_buckets", users: 2, series: 100_000, budget: 1024},
		{name: "default_budget_filled/collapsed_sum", users: 2, series: 400_000, budget: 64},
	}
	for _, s := range shapes {
		if s.name == "collapsed/histogram_10_buckets" {
			s.buckets = 10
		}
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				heap, est := fillState(b, s.users, s.buckets, s.series, s.budget)
				b.ReportMetric(float64(heap)/float64(s.series), "heap-B/series")
				b.ReportMetric(float64(est)/float64(s.series), "est-B/series")
				b.ReportMetric(float64(heap)/float64(est), "heap/est")
				b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
			}
		})
	}
}

// fillState sends `series` cumulative series in batches of 1000 points (100
// streams, one per service) through a guard that drops user.id, and returns
// the heap the guard holds afterwards and its own estimate.
func fillState(b *testing.B, users, buckets, series, budgetMiB int) (heap, est int64) {
	cfg := cfgWith(dropUserID, func(c *Config) {
		c.Metrics.MemoryLimitMiB = budgetMiB
		c.Metrics.MaxSeriesPerMetric = series
	})
	set := processortest.NewNopSettings(metadata.Type)
	g, err := newGuard(set, cfg)
	require.NoError(b, err)
	const streams = 100
	perStream := series / streams
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ctx := context.Background()
	for s := range streams {
		for first := 0; first < perStream; first += 1000 {
			md := pmetric.NewMetrics()
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", s))
			m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName("requests")
			for i := first; i < min(first+1000, perStream); i++ {
				var attrs interface {
					PutStr(string, string)
					PutInt(string, int64)
				}
				if buckets == 0 {
					sum := sumOf(m)
					sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
					sum.SetIsMonotonic(true)
					dp := sum.DataPoints().AppendEmpty()
					dp.SetIntValue(int64(i))
					dp.SetTimestamp(1e9)
					a := dp.Attributes()
					attrs = a
				} else {
					h := histogramOf(m)
					h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
					dp := h.DataPoints().AppendEmpty()
					bs := make([]float64, buckets)
					for j := range bs {
						bs[j] = float64(j + 1)
					}
					dp.ExplicitBounds().FromRaw(bs)
					counts := make([]uint64, buckets+1)
					counts[i%(buckets+1)] = 1
					dp.BucketCounts().FromRaw(counts)
					dp.SetCount(1)
					dp.SetTimestamp(1e9)
					a := dp.Attributes()
					attrs = a
				}
				attrs.PutStr("user.id", fmt.Sprintf("u-%d", i))
				attrs.PutInt("shard", int64(i/users))
			}
			if _, err := g.ProcessMetrics(ctx, md); err != nil {
				b.Fatal(err)
			}
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	g.series.mu.Lock()
	est = g.series.usedBytes()
	g.series.mu.Unlock()
	heap = int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(g)
	return heap, est
}

// BenchmarkCollapse measures the merge of collapsed series: batches of 100
// points of one metric, every point with its own user.id, which the allow
// list drops, so they collapse into `identities` series per batch. Compare
// with BenchmarkAllowList's metrics, where no series collapse.
//
//	go test -run '^$' -bench Collapse -benchmem -count 6 ./processors/tagguardprocessor/
func BenchmarkCollapse(b *testing.B) {
	for _, temporality := range []pmetric.AggregationTemporality{pmetric.AggregationTemporalityDelta, pmetric.AggregationTemporalityCumulative} {
		for _, identities := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/identities_%d", temporality, identities), func(b *testing.B) {
				ctx := context.Background()
				g, err := newGuard(processortest.NewNopSettings(metadata.Type), cfgWith(dropUserID))
				require.NoError(b, err)
				md := pmetric.NewMetrics()
				m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
				m.SetName("requests")
				sum := m.SetEmptySum()
				sum.SetAggregationTemporality(temporality)
				sum.SetIsMonotonic(true)
				for i := range benchItems {
					dp := sum.DataPoints().AppendEmpty()
					dp.Attributes().PutStr("user.id", fmt.Sprintf("u-%d", i))
					dp.Attributes().PutInt("shard", int64(i%identities))
					dp.SetIntValue(int64(i))
				}
				// Cumulative values grow batch by batch; the values are set
				// and the batch copied outside the timer.
				work := pmetric.NewMetrics()
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					for _, dp := range sum.DataPoints().All() {
						dp.SetIntValue(dp.IntValue() + 1)
					}
					md.CopyTo(work)
					b.StartTimer()
					if _, err := g.ProcessMetrics(ctx, work); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchItems), "ns/item")
			})
		}
	}
}
