package tagguardprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor"

import (
	"math"
	"slices"
	"sort"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

type accKind uint8

const (
	accEmpty accKind = iota
	accNumber
	accHistogram
	accExponential
	accSummary
)

// accumulator is the value of one data point, or the merge of several, of
// any aggregating metric type: what the overflow series carries.
type accumulator struct {
	kind accKind

	// sums
	isDouble bool
	intVal   int64
	dblVal   float64

	// histograms and summaries
	count     uint64
	sum       float64
	hasSum    bool
	min, max  float64
	hasMinMax bool
	bounds    []float64
	buckets   []uint64

	// exponential histograms
	scale         int32
	zeroCount     uint64
	zeroThreshold float64
	pos, neg      expBuckets
}

type expBuckets struct {
	offset int32
	counts []uint64
}

func (a *accumulator) addNumber(dp pmetric.NumberDataPoint) {
	a.kind = accNumber
	if dp.ValueType() == pmetric.NumberDataPointValueTypeDouble {
		a.isDouble = true
		a.dblVal += dp.DoubleValue()
	} else {
		a.intVal += dp.IntValue()
	}
}

func (a *accumulator) addHistogram(dp pmetric.HistogramDataPoint) {
	a.kind = accHistogram
	a.count = dp.Count()
	a.sum, a.hasSum = dp.Sum(), dp.HasSum()
	a.hasMinMax = dp.HasMin() && dp.HasMax()
	a.min, a.max = dp.Min(), dp.Max()
	a.bounds = dp.ExplicitBounds().AsRaw()
	a.buckets = dp.BucketCounts().AsRaw()
}

func (a *accumulator) addExponential(dp pmetric.ExponentialHistogramDataPoint) {
	a.kind = accExponential
	a.count = dp.Count()
	a.sum, a.hasSum = dp.Sum(), dp.HasSum()
	a.hasMinMax = dp.HasMin() && dp.HasMax()
	a.min, a.max = dp.Min(), dp.Max()
	// The data model allows scales -10..20; a sender can put any int32
	// there. Outside that range the buckets keep their counts under the
	// nearest valid scale (totals kept, shape not), so that scale
	// differences stay small.
	a.scale = min(max(dp.Scale(), minExpScale), maxExpScale)
	a.zeroCount = dp.ZeroCount()
	a.zeroThreshold = dp.ZeroThreshold()
	a.pos = expBuckets{dp.Positive().Offset(), dp.Positive().BucketCounts().AsRaw()}
	a.neg = expBuckets{dp.Negative().Offset(), dp.Negative().BucketCounts().AsRaw()}
}

func (a *accumulator) addSummary(dp pmetric.SummaryDataPoint) {
	a.kind = accSummary
	a.count = dp.Count()
	a.sum, a.hasSum = dp.Sum(), true
}

func (a *accumulator) clone() accumulator {
	c := *a
	c.bounds = slices.Clone(a.bounds)
	c.buckets = slices.Clone(a.buckets)
	c.pos.counts = slices.Clone(a.pos.counts)
	c.neg.counts = slices.Clone(a.neg.counts)
	return c
}

// add merges o into a, preserving totals: sums add up, histogram counts and
// sums add up bucket by bucket.
func (a *accumulator) add(o *accumulator) {
	if o.kind == accEmpty {
		return
	}
	if a.kind == accEmpty {
		*a = o.clone()
		return
	}
	switch a.kind {
	case accNumber:
		a.isDouble = a.isDouble || o.isDouble
		a.intVal += o.intVal
		a.dblVal += o.dblVal
		return
	case accHistogram:
		a.addBuckets(o)
	case accExponential:
		a.addExponentialBuckets(o)
	}
	a.count += o.count
	a.sum += o.sum
	a.hasSum = a.hasSum || o.hasSum
	switch {
	case !o.hasMinMax:
	case !a.hasMinMax:
		a.min, a.max, a.hasMinMax = o.min, o.max, true
	default:
		a.min, a.max = math.Min(a.min, o.min), math.Max(a.max, o.max)
	}
}

// addBuckets adds o's explicit buckets to a's. With different bounds, each of
// o's buckets goes to a's bucket that contains its upper bound, so counts are
// kept (the distribution within a bucket cannot be).
func (a *accumulator) addBuckets(o *accumulator) {
	if len(a.buckets) == 0 && len(a.bounds) == 0 {
		a.bounds, a.buckets = slices.Clone(o.bounds), slices.Clone(o.buckets)
		return
	}
	if slices.Equal(a.bounds, o.bounds) && len(a.buckets) == len(o.buckets) {
		for i, c := range o.buckets {
			a.buckets[i] += c
		}
		return
	}
	if len(a.buckets) != len(a.bounds)+1 {
		grown := make([]uint64, len(a.bounds)+1)
		copy(grown, a.buckets)
		a.buckets = grown
	}
	for i, c := range o.buckets {
		upper := math.Inf(1)
		if i < len(o.bounds) {
			upper = o.bounds[i]
		}
		a.buckets[sort.SearchFloat64s(a.bounds, upper)] += c
	}
}

// Exponential-histogram merge bounds, as the OpenTelemetry SDKs' exponential
// aggregation: at most maxExpBuckets buckets per range (the SDK default), and
// no scale below minExpScale (at -10 every float64 falls in three buckets).
const (
	maxExpBuckets = 160
	minExpScale   = -10
	maxExpScale   = 20
)

// addExponentialBuckets merges o's buckets into a's at a common scale,
// downscaling both until each merged range fits in maxExpBuckets: bucket
// offsets come from senders, and a range spanning them naively could ask for
// billions of buckets.
func (a *accumulator) addExponentialBuckets(o *accumulator) {
	b := o.clone()
	switch {
	case b.scale > a.scale:
		b.downscale(b.scale - a.scale)
	case a.scale > b.scale:
		a.downscale(a.scale - b.scale)
	}
	for a.scale > minExpScale && (a.pos.span(&b.pos) > maxExpBuckets || a.neg.span(&b.neg) > maxExpBuckets) {
		a.downscale(1)
		b.downscale(1)
	}
	a.pos.add(&b.pos)
	a.neg.add(&b.neg)
	a.zeroCount += b.zeroCount
	a.zeroThreshold = math.Max(a.zeroThreshold, b.zeroThreshold)
}

// downscale lowers the scale of both bucket ranges by `by`, not below
// minExpScale.
func (a *accumulator) downscale(by int32) {
	by = min(by, a.scale-minExpScale)
	if by <= 0 {
		return
	}
	a.pos.downscale(by)
	a.neg.downscale(by)
	a.scale -= by
}

// subtract turns a cumulative value into its increase over prev. It returns
// false when prev cannot be a predecessor of a (a reset), leaving a undefined.
func (a *accumulator) subtract(prev *accumulator, monotonic bool) bool {
	if prev.kind != a.kind {
		return false
	}
	switch a.kind {
	case accNumber:
		if monotonic && (a.intVal < prev.intVal || a.dblVal < prev.dblVal) {
			return false
		}
		a.intVal -= prev.intVal
		a.dblVal -= prev.dblVal
		return true
	case accHistogram:
		if !slices.Equal(a.bounds, prev.bounds) || len(a.buckets) != len(prev.buckets) {
			return false
		}
		for i, c := range prev.buckets {
			if a.buckets[i] < c {
				return false
			}
			a.buckets[i] -= c
		}
	case accExponential:
		p := prev.clone()
		switch {
		case p.scale > a.scale:
			p.downscale(p.scale - a.scale)
		case a.scale > p.scale:
			a.downscale(a.scale - p.scale)
		}
		if a.zeroCount < p.zeroCount || !a.pos.subtract(&p.pos) || !a.neg.subtract(&p.neg) {
			return false
		}
		a.zeroCount -= p.zeroCount
	}
	if a.count < prev.count {
		return false
	}
	a.count -= prev.count
	a.sum -= prev.sum
	return true
}

// end is one past the last bucket index, in int64: offset+len overflows
// int32 for offsets near its limits.
func (e *expBuckets) end() int64 { return int64(e.offset) + int64(len(e.counts)) }

// span is how many buckets e and o merged would cover.
func (e *expBuckets) span(o *expBuckets) int64 {
	switch {
	case len(o.counts) == 0:
		return int64(len(e.counts))
	case len(e.counts) == 0:
		return int64(len(o.counts))
	}
	return max(e.end(), o.end()) - min(int64(e.offset), int64(o.offset))
}

// downscale merges buckets so the scale drops by `by`. A range of n buckets
// becomes at most n/2^by + 1 buckets.
func (e *expBuckets) downscale(by int32) {
	if by <= 0 {
		return
	}
	if len(e.counts) == 0 {
		e.offset >>= by
		return
	}
	first := int64(e.offset) >> by
	last := (e.end() - 1) >> by
	out := make([]uint64, last-first+1)
	for i, c := range e.counts {
		out[((int64(e.offset)+int64(i))>>by)-first] += c
	}
	e.offset, e.counts = int32(first), out
}

// add merges o into e (same scale). A merged range wider than
// maxExpBuckets (possible only at minExpScale, with offsets no real value
// produces) keeps e's first maxExpBuckets buckets and counts the rest in
// the nearest edge bucket: totals are kept, the shape of such input is not.
func (e *expBuckets) add(o *expBuckets) {
	if len(o.counts) == 0 {
		return
	}
	if len(e.counts) == 0 {
		e.offset, e.counts = o.offset, slices.Clone(o.counts)
		return
	}
	lo := min(int64(e.offset), int64(o.offset))
	n := min(max(e.end(), o.end())-lo, maxExpBuckets)
	if n < int64(len(e.counts)) {
		n = int64(len(e.counts)) // e itself came from one data point
	}
	out := make([]uint64, n)
	put := func(idx int64, c uint64) {
		out[min(max(idx-lo, 0), n-1)] += c
	}
	for i, c := range e.counts {
		put(int64(e.offset)+int64(i), c)
	}
	for i, c := range o.counts {
		put(int64(o.offset)+int64(i), c)
	}
	e.offset, e.counts = int32(lo), out
}

func (e *expBuckets) subtract(p *expBuckets) bool {
	for i, c := range p.counts {
		if c == 0 {
			continue
		}
		j := int64(p.offset) + int64(i) - int64(e.offset)
		if j < 0 || j >= int64(len(e.counts)) || e.counts[j] < c {
			return false
		}
		e.counts[j] -= c
	}
	return true
}

func (a *accumulator) numberTo(dp pmetric.NumberDataPoint) {
	if a.isDouble {
		dp.SetDoubleValue(a.dblVal + float64(a.intVal))
	} else {
		dp.SetIntValue(a.intVal)
	}
}

func (a *accumulator) histogramTo(dp pmetric.HistogramDataPoint) {
	dp.SetCount(a.count)
	if a.hasSum {
		dp.SetSum(a.sum)
	}
	if a.hasMinMax {
		dp.SetMin(a.min)
		dp.SetMax(a.max)
	}
	dp.ExplicitBounds().FromRaw(a.bounds)
	dp.BucketCounts().FromRaw(a.buckets)
}

func (a *accumulator) exponentialTo(dp pmetric.ExponentialHistogramDataPoint) {
	dp.SetCount(a.count)
	if a.hasSum {
		dp.SetSum(a.sum)
	}
	if a.hasMinMax {
		dp.SetMin(a.min)
		dp.SetMax(a.max)
	}
	dp.SetScale(a.scale)
	dp.SetZeroCount(a.zeroCount)
	dp.SetZeroThreshold(a.zeroThreshold)
	dp.Positive().SetOffset(a.pos.offset)
	dp.Positive().BucketCounts().FromRaw(a.pos.counts)
	dp.Negative().SetOffset(a.neg.offset)
	dp.Negative().BucketCounts().FromRaw(a.neg.counts)
}

func (a *accumulator) summaryTo(dp pmetric.SummaryDataPoint) {
	dp.SetCount(a.count)
	dp.SetSum(a.sum)
}
