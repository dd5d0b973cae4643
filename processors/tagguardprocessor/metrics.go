package tagguardprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor"

import (
	"context"
	"hash/maphash"
	"math"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-fabric/otelcol-fabric/internal/pdatacount"
)

// overflowKey marks the series that data points past a metric's cap are
// folded into, as the OpenTelemetry metrics SDK does.
const overflowKey = "otel.metric.overflow"

func (g *guard) ProcessMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	b := batch{now: g.now().UnixNano()}
	dpRules := g.matchers[sDatapoint] != nil || len(g.caps) > 0
	t := g.series
	if t != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.maybeSweep(b.now)
	}
	for _, rm := range md.ResourceMetrics().All() {
		g.guardResource(rm.Resource(), &b)
		var resHash uint64
		if t != nil {
			resHash = t.hashAttrs(rm.Resource().Attributes())
		}
		for _, sm := range rm.ScopeMetrics().All() {
			var scopeHash uint64
			if t != nil {
				scopeHash = mix(maphash.String(t.seed, sm.Scope().Name()) ^ mix(maphash.String(t.seed, sm.Scope().Version())))
			}
			for _, m := range sm.Metrics().All() {
				if dpRules {
					g.guardDatapoints(m, &b)
				}
				if t != nil {
					key := resHash + mix(scopeHash+maphash.String(t.seed, m.Name())+uint64(m.Type()))
					b.folded += t.limit(m, key, b.now, g.observe)
				}
			}
		}
	}
	g.finish(ctx, sigMetrics, &b)
	return md, nil
}

func (g *guard) guardDatapoints(m pmetric.Metric, b *batch) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		for _, dp := range m.Gauge().DataPoints().All() {
			g.guardMap(dp.Attributes(), sDatapoint, b)
		}
	case pmetric.MetricTypeSum:
		for _, dp := range m.Sum().DataPoints().All() {
			g.guardMap(dp.Attributes(), sDatapoint, b)
		}
	case pmetric.MetricTypeHistogram:
		for _, dp := range m.Histogram().DataPoints().All() {
			g.guardMap(dp.Attributes(), sDatapoint, b)
		}
	case pmetric.MetricTypeExponentialHistogram:
		for _, dp := range m.ExponentialHistogram().DataPoints().All() {
			g.guardMap(dp.Attributes(), sDatapoint, b)
		}
	case pmetric.MetricTypeSummary:
		for _, dp := range m.Summary().DataPoints().All() {
			g.guardMap(dp.Attributes(), sDatapoint, b)
		}
	}
}

// seriesTracker bounds the distinct attribute sets per metric stream (a
// metric name within one resource and instrumentation scope). Callers hold mu
// for a whole batch.
type seriesTracker struct {
	mu         sync.Mutex
	maxSeries  int
	window     int64
	maxMetrics int
	maxFolded  int
	seed       maphash.Seed

	streams   map[uint64]*stream
	total     int64 // series tracked over all streams
	untracked int64 // data points not tracked since the last report
	lastSweep int64
}

// stream is one metric's tracking state.
type stream struct {
	series    map[uint64]int64 // attribute-set hash -> last seen (Unix ns)
	lastSeen  int64
	lastSweep int64

	// Cumulative folding: the last point of each folded series, and the
	// overflow series' running total.
	folded   map[uint64]*foldedPoint
	accStart pcommon.Timestamp
	acc      *accumulator
}

type foldedPoint struct {
	seen  int64
	start pcommon.Timestamp
	last  accumulator
}

func newSeriesTracker(cfg MetricsLimits) *seriesTracker {
	return &seriesTracker{
		maxSeries:  cfg.MaxSeriesPerMetric,
		window:     int64(cfg.SeriesWindow),
		maxMetrics: cfg.MaxMetrics,
		maxFolded:  cfg.MaxFoldedSeries,
		seed:       maphash.MakeSeed(),
		streams:    map[uint64]*stream{},
	}
}

// maybeSweep forgets streams and series that stopped reporting, at most a few
// times per window.
func (t *seriesTracker) maybeSweep(now int64) {
	if now-t.lastSweep < t.window/4 {
		return
	}
	t.lastSweep = now
	for key, st := range t.streams {
		if now-st.lastSeen > t.window {
			t.total -= int64(len(st.series))
			delete(t.streams, key)
			continue
		}
		t.sweepStream(st, now)
	}
}

func (t *seriesTracker) sweepStream(st *stream, now int64) {
	st.lastSweep = now
	for h, seen := range st.series {
		if now-seen > t.window {
			delete(st.series, h)
			t.total--
		}
	}
	for h, f := range st.folded {
		if now-f.seen > t.window {
			delete(st.folded, h)
		}
	}
}

func (t *seriesTracker) stream(key uint64, now int64) *stream {
	st, ok := t.streams[key]
	if !ok {
		if len(t.streams) >= t.maxMetrics {
			return nil
		}
		st = &stream{series: map[uint64]int64{}}
		t.streams[key] = st
	}
	st.lastSeen = now
	return st
}

// admit reports whether the series may pass as itself, registering it while
// the stream has room.
func (t *seriesTracker) admit(st *stream, h uint64, now int64) bool {
	if seen, ok := st.series[h]; ok {
		// Refresh the last-seen time only when it is noticeably old: a map
		// write per data point would cost as much as the rest of the check.
		if now-seen > t.window/32 {
			st.series[h] = now
		}
		return true
	}
	if len(st.series) >= t.maxSeries && now-st.lastSweep > t.window/8 {
		t.sweepStream(st, now)
	}
	if len(st.series) < t.maxSeries {
		st.series[h] = now
		t.total++
		return true
	}
	return false
}

// hashAttrs is an order-independent hash of an attribute set; it does not
// allocate for string, int, double and bool values.
func (t *seriesTracker) hashAttrs(m pcommon.Map) uint64 {
	sum := uint64(m.Len())
	m.Range(func(k string, v pcommon.Value) bool {
		sum += mix(maphash.String(t.seed, k)*0x9E3779B97F4A7C15 ^ t.hashValue(v))
		return true
	})
	return sum
}

func (t *seriesTracker) hashValue(v pcommon.Value) uint64 {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return maphash.String(t.seed, v.Str())
	case pcommon.ValueTypeInt:
		return mix(uint64(v.Int()) ^ 1)
	case pcommon.ValueTypeDouble:
		return mix(math.Float64bits(v.Double()) ^ 2)
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return 3
		}
		return 4
	default:
		return maphash.String(t.seed, v.Type().String()+":"+v.AsString())
	}
}

// mix is the splitmix64 finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// limit applies the series cap to one metric and returns the number of data
// points folded (or, observing, that would be folded).
func (t *seriesTracker) limit(m pmetric.Metric, key uint64, now int64, observe bool) int64 {
	st := t.stream(key, now)
	if st == nil {
		t.untracked += int64(pdatacount.Metric(m)) // reported by the caller
		return 0
	}
	var f folder
	f.observe = observe
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		dps.RemoveIf(func(dp pmetric.NumberDataPoint) bool {
			if t.admit(st, t.hashAttrs(dp.Attributes()), now) {
				return false
			}
			f.gauge(dp)
			return !observe
		})
		if f.n > 0 && !observe {
			dp := dps.AppendEmpty()
			f.latest.MoveTo(dp)
			dp.Attributes().Clear()
			dp.Attributes().PutBool(overflowKey, true)
		}
	// The per-type blocks below look alike on purpose: a generic version over
	// the data point slice types makes the RemoveIf closures (and the folder
	// they capture) escape to the heap, two allocations per metric per batch.
	case pmetric.MetricTypeSum:
		sum := m.Sum()
		cumulative := sum.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		dps := sum.DataPoints()
		dps.RemoveIf(func(dp pmetric.NumberDataPoint) bool {
			h := t.hashAttrs(dp.Attributes())
			if t.admit(st, h, now) {
				return false
			}
			var delta accumulator
			delta.addNumber(dp)
			if cumulative {
				delta = t.cumulativeDelta(st, h, dp.StartTimestamp(), delta, now, sum.IsMonotonic())
			}
			f.fold(&delta, dp.StartTimestamp(), dp.Timestamp())
			return !observe
		})
		if f.n > 0 && !observe {
			dp := dps.AppendEmpty()
			f.result(st, cumulative).numberTo(dp)
			f.stamp(st, cumulative, dp)
		}
	case pmetric.MetricTypeHistogram:
		hist := m.Histogram()
		cumulative := hist.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		dps := hist.DataPoints()
		dps.RemoveIf(func(dp pmetric.HistogramDataPoint) bool {
			h := t.hashAttrs(dp.Attributes())
			if t.admit(st, h, now) {
				return false
			}
			var delta accumulator
			delta.addHistogram(dp)
			if cumulative {
				delta = t.cumulativeDelta(st, h, dp.StartTimestamp(), delta, now, true)
			}
			f.fold(&delta, dp.StartTimestamp(), dp.Timestamp())
			return !observe
		})
		if f.n > 0 && !observe {
			dp := dps.AppendEmpty()
			f.result(st, cumulative).histogramTo(dp)
			f.stamp(st, cumulative, dp)
		}
	case pmetric.MetricTypeExponentialHistogram:
		hist := m.ExponentialHistogram()
		cumulative := hist.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		dps := hist.DataPoints()
		dps.RemoveIf(func(dp pmetric.ExponentialHistogramDataPoint) bool {
			h := t.hashAttrs(dp.Attributes())
			if t.admit(st, h, now) {
				return false
			}
			var delta accumulator
			delta.addExponential(dp)
			if cumulative {
				delta = t.cumulativeDelta(st, h, dp.StartTimestamp(), delta, now, true)
			}
			f.fold(&delta, dp.StartTimestamp(), dp.Timestamp())
			return !observe
		})
		if f.n > 0 && !observe {
			dp := dps.AppendEmpty()
			f.result(st, cumulative).exponentialTo(dp)
			f.stamp(st, cumulative, dp)
		}
	case pmetric.MetricTypeSummary:
		// Summaries are cumulative; quantiles cannot be merged, so the
		// overflow series carries count and sum only.
		dps := m.Summary().DataPoints()
		dps.RemoveIf(func(dp pmetric.SummaryDataPoint) bool {
			h := t.hashAttrs(dp.Attributes())
			if t.admit(st, h, now) {
				return false
			}
			var delta accumulator
			delta.addSummary(dp)
			delta = t.cumulativeDelta(st, h, dp.StartTimestamp(), delta, now, true)
			f.fold(&delta, dp.StartTimestamp(), dp.Timestamp())
			return !observe
		})
		if f.n > 0 && !observe {
			dp := dps.AppendEmpty()
			f.result(st, true).summaryTo(dp)
			f.stamp(st, true, dp)
		}
	}
	return f.n
}

// cumulativeDelta turns a folded series' cumulative point into the increase
// since its previous point, remembering the point for next time. A series
// seen for the first time, restarted (new start time) or reset (a monotonic
// value went down) contributes its whole value.
func (t *seriesTracker) cumulativeDelta(st *stream, h uint64, start pcommon.Timestamp, cur accumulator, now int64, monotonic bool) accumulator {
	if st.folded == nil {
		st.folded = map[uint64]*foldedPoint{}
	}
	prev, ok := st.folded[h]
	if !ok {
		if len(st.folded) >= t.maxFolded {
			t.sweepStream(st, now)
		}
		if len(st.folded) >= t.maxFolded {
			// Bounded memory wins: forget one series. If it reports again
			// its whole value is counted once more (see README).
			for k := range st.folded {
				delete(st.folded, k)
				break
			}
		}
		prev = &foldedPoint{}
		st.folded[h] = prev
	}
	delta := cur.clone()
	if ok && prev.start == start && !delta.subtract(&prev.last, monotonic) {
		delta = cur.clone() // reset: the whole value is new
	}
	prev.seen, prev.start, prev.last = now, start, cur.clone()
	return delta
}

// folder collects one metric's folded points within a batch.
type folder struct {
	observe bool
	n       int64
	latest  pmetric.NumberDataPoint // gauges: the newest folded point
	acc     accumulator
	start   pcommon.Timestamp
	ts      pcommon.Timestamp
}

func (f *folder) gauge(dp pmetric.NumberDataPoint) {
	f.n++
	if f.observe {
		return
	}
	if f.n == 1 {
		f.latest = pmetric.NewNumberDataPoint()
	}
	if f.n == 1 || dp.Timestamp() >= f.latest.Timestamp() {
		dp.CopyTo(f.latest)
	}
}

func (f *folder) fold(delta *accumulator, start, ts pcommon.Timestamp) {
	f.n++
	if f.observe {
		return
	}
	f.acc.add(delta)
	if f.start == 0 || (start != 0 && start < f.start) {
		f.start = start
	}
	if ts > f.ts {
		f.ts = ts
	}
}

// result is what the overflow point carries: the batch's folded deltas, or
// for cumulative metrics the running total they are added to.
func (f *folder) result(st *stream, cumulative bool) *accumulator {
	if !cumulative {
		return &f.acc
	}
	if st.acc == nil {
		st.acc = &accumulator{}
		st.accStart = f.start
	}
	st.acc.add(&f.acc)
	return st.acc
}

type stampable interface {
	Attributes() pcommon.Map
	SetStartTimestamp(pcommon.Timestamp)
	SetTimestamp(pcommon.Timestamp)
}

func (f *folder) stamp(st *stream, cumulative bool, dp stampable) {
	start := f.start
	if cumulative && st.accStart != 0 {
		start = st.accStart
	}
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(f.ts)
	dp.Attributes().PutBool(overflowKey, true)
}
