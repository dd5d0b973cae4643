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
	a.scale = dp.Scale()
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

func (a *accumulator) addExponentialBuckets(o *accumulator) {
	b := o.clone()
	switch {
	case b.scale > a.scale:
		b.pos.downscale(b.scale - a.scale)
		b.neg.downscale(b.scale - a.scale)
	case a.scale > b.scale:
		a.pos.downscale(a.scale - b.scale)
		a.neg.downscale(a.scale - b.scale)
		a.scale = b.scale
	}
	a.pos.add(&b.pos)
	a.neg.add(&b.neg)
	a.zeroCount += b.zeroCount
	a.zeroThreshold = math.Max(a.zeroThreshold, b.zeroThreshold)
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
			p.pos.downscale(p.scale - a.scale)
			p.neg.downscale(p.scale - a.scale)
		case a.scale > p.scale:
			a.pos.downscale(a.scale - p.scale)
			a.neg.downscale(a.scale - p.scale)
			a.scale = p.scale
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

// downscale merges buckets so the scale drops by `by`.
func (e *expBuckets) downscale(by int32) {
	if by <= 0 {
		return
	}
	if len(e.counts) == 0 {
		e.offset >>= by
		return
	}
	first := e.offset >> by
	last := (e.offset + int32(len(e.counts)) - 1) >> by
	out := make([]uint64, last-first+1)
	for i, c := range e.counts {
		out[((e.offset+int32(i))>>by)-first] += c
	}
	e.offset, e.counts = first, out
}

func (e *expBuckets) add(o *expBuckets) {
	if len(o.counts) == 0 {
		return
	}
	if len(e.counts) == 0 {
		e.offset, e.counts = o.offset, slices.Clone(o.counts)
		return
	}
	lo := min(e.offset, o.offset)
	hi := max(e.offset+int32(len(e.counts)), o.offset+int32(len(o.counts)))
	out := make([]uint64, hi-lo)
	for i, c := range e.counts {
		out[e.offset-lo+int32(i)] += c
	}
	for i, c := range o.counts {
		out[o.offset-lo+int32(i)] += c
	}
	e.offset, e.counts = lo, out
}

func (e *expBuckets) subtract(p *expBuckets) bool {
	for i, c := range p.counts {
		if c == 0 {
			continue
		}
		j := p.offset + int32(i) - e.offset
		if j < 0 || int(j) >= len(e.counts) || e.counts[j] < c {
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
