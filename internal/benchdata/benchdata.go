// Package benchdata is what the gobench receiver writes and the benchstat
// connector reads: the attribute and metadata names of benchmark metrics,
// and how a Summary data point holds every sample of a run.
package benchdata // import "github.com/otelcol-fabric/otelcol-fabric/internal/benchdata"

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Resource attributes of a benchmark run.
const (
	AttrRunID          = "benchmark.run.id"
	AttrBaselineRunID  = "benchmark.baseline.run.id"
	AttrServiceName    = "service.name"
	AttrRevision       = "vcs.ref.head.revision"
	AttrBranch         = "vcs.ref.head.name"
	AttrBaselineCommit = "benchmark.baseline.vcs.ref.head.revision"
)

// Data point attributes of a benchmark.
const (
	AttrName         = "benchmark.name"
	AttrProcs        = "benchmark.procs"
	AttrPackage      = "benchmark.package"
	AttrGOOS         = "benchmark.goos"
	AttrGOARCH       = "benchmark.goarch"
	AttrCPU          = "benchmark.cpu"
	AttrConfigPrefix = "benchmark.config."
	AttrUnit         = "benchmark.unit"
)

// Metric metadata (not attributes, so not labels): the benchfmt unit of a
// metric (sec/op, B/op, ...) and its Unit-line metadata.
const (
	MetaUnit   = "benchfmt.unit"
	MetaAssume = "benchfmt.assume"
	MetaBetter = "benchfmt.better"
)

// MaxSamples is the most samples a data point may carry: Samples refuses
// more, and the gobench receiver's max_samples_per_benchmark may not exceed
// it.
const MaxSamples = 1 << 16

// RankQuantiles returns the quantiles a data point of n samples carries:
// i/(n-1) for every rank i (each sample exactly, sorted), and 0.5 (the
// median, which for an even n lies between two ranks).
func RankQuantiles(n int) []float64 {
	if n <= 1 {
		return []float64{0, 0.5, 1}
	}
	qs := make([]float64, 0, n+1)
	for i := range n {
		qs = append(qs, float64(i)/float64(n-1))
	}
	if n%2 == 0 {
		qs = append(qs, 0.5)
		sort.Float64s(qs)
	}
	return qs
}

// Quantile is the linear-interpolation quantile of sorted values (the
// median of an even count is the mean of the two middle values, as
// benchmath computes it).
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(lo)
	if frac == 0 {
		return sorted[lo]
	}
	return sorted[lo] + (sorted[lo+1]-sorted[lo])*frac
}

// Fill sets count, sum and the rank quantiles of dp from the samples.
func Fill(dp pmetric.SummaryDataPoint, values []float64) {
	sorted := append([]float64(nil), values...)
	sort.Float64s(sorted)
	var sum float64
	for _, v := range sorted {
		sum += v
	}
	dp.SetCount(uint64(len(sorted)))
	dp.SetSum(sum)
	qv := dp.QuantileValues()
	qv.EnsureCapacity(len(sorted) + 1)
	n := len(sorted)
	for _, q := range RankQuantiles(n) {
		e := qv.AppendEmpty()
		e.SetQuantile(q)
		// The rank's sample itself: q*(n-1) computed in floating point
		// can miss the integer i by an ulp, and interpolating would then
		// change the sample.
		if i := int(math.Round(q * float64(n-1))); n > 1 && float64(i)/float64(n-1) == q {
			e.SetValue(sorted[i])
		} else {
			e.SetValue(Quantile(sorted, q))
		}
	}
}

// ErrNoSamples says a data point does not hold its samples: it was not
// written by the gobench receiver, or its rank quantiles were removed.
var ErrNoSamples = errors.New("the data point does not hold its samples as rank quantiles")

// Samples reads back the samples Fill wrote, sorted.
func Samples(dp pmetric.SummaryDataPoint) ([]float64, error) {
	n := int(dp.Count())
	if n == 0 || n > MaxSamples {
		return nil, fmt.Errorf("%w (count %d)", ErrNoSamples, n)
	}
	byQ := make(map[float64]float64, dp.QuantileValues().Len())
	for _, q := range dp.QuantileValues().All() {
		byQ[q.Quantile()] = q.Value()
	}
	out := make([]float64, n)
	if n == 1 {
		v, ok := byQ[0]
		if !ok {
			return nil, ErrNoSamples
		}
		out[0] = v
		return out, nil
	}
	for i := range n {
		v, ok := byQ[float64(i)/float64(n-1)]
		if !ok {
			return nil, fmt.Errorf("%w (count %d, no quantile %d/%d)", ErrNoSamples, n, i, n-1)
		}
		out[i] = v
	}
	return out, nil
}
