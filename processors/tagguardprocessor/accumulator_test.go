package tagguardprocessor

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func expPoint(scale, offset int32, counts ...uint64) pmetric.ExponentialHistogramDataPoint {
	dp := pmetric.NewExponentialHistogramDataPoint()
	dp.SetScale(scale)
	dp.Positive().SetOffset(offset)
	dp.Positive().BucketCounts().FromRaw(counts)
	dp.Negative().SetOffset(-offset)
	dp.Negative().BucketCounts().FromRaw(counts)
	var n uint64
	for _, c := range counts {
		n += 2 * c
	}
	dp.SetCount(n)
	return dp
}

func total(e expBuckets) (n uint64) {
	for _, c := range e.counts {
		n += c
	}
	return n
}

// TestExponentialFoldBounded: folding exponential histograms whose bucket
// offsets are far apart (what any sender can put in a valid OTLP request)
// used to allocate hi-lo buckets: 2^30 apart is 8 GiB, near the int32 limits
// a negative length and a panic that took the collector down. The merge now
// downscales until the range fits in 160 buckets, as the SDKs do, and keeps
// every count.
func TestExponentialFoldBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b pmetric.ExponentialHistogramDataPoint
	}{
		{"offsets 2^30 apart", expPoint(20, 0, 1, 2, 3), expPoint(20, 1<<30, 4, 5)},
		{"int32 extremes", expPoint(0, math.MinInt32, 1), expPoint(0, math.MaxInt32-1, 1, 1)},
		{"extremes at the lowest scale", expPoint(-10, math.MinInt32, 7), expPoint(-10, math.MaxInt32-2, 1, 2)},
		{"different scales", expPoint(20, 1<<20, 1, 1), expPoint(-5, -3, 2)},
		{"ordinary", expPoint(3, 10, 1, 2, 3, 4), expPoint(3, 12, 1, 1)},
		{"scales outside the data model", expPoint(math.MaxInt32, 5, 1, 2), expPoint(math.MinInt32, -5, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a, b accumulator
			a.addExponential(tc.a)
			b.addExponential(tc.b)
			want := total(a.pos) + total(b.pos)
			require.NotPanics(t, func() { a.add(&b) })
			assert.LessOrEqual(t, len(a.pos.counts), maxExpBuckets)
			assert.LessOrEqual(t, len(a.neg.counts), maxExpBuckets)
			assert.Equal(t, want, total(a.pos), "positive counts kept")
			assert.Equal(t, want, total(a.neg), "negative counts kept")
			assert.Equal(t, tc.a.Count()+tc.b.Count(), a.count)
			assert.GreaterOrEqual(t, a.scale, int32(minExpScale))
			assert.LessOrEqual(t, a.scale, int32(maxExpScale))
		})
	}
	// An ordinary merge keeps the finer shape: no needless downscaling.
	var a, b accumulator
	a.addExponential(expPoint(3, 10, 1, 2, 3, 4))
	b.addExponential(expPoint(3, 12, 1, 1))
	a.add(&b)
	assert.Equal(t, int32(3), a.scale)
	assert.Equal(t, int32(10), a.pos.offset)
	assert.Equal(t, []uint64{1, 2, 4, 5}, a.pos.counts)
}
