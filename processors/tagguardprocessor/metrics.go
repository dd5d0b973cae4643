package tagguardprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor"

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-fabric/otelcol-fabric/internal/pdatacount"
)

// overflowKey marks the series that data points past a metric's cap are
// folded into, as the OpenTelemetry metrics SDK does.
const overflowKey = "otel.metric.overflow"

func (g *guard) ProcessMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	b := batch{now: g.now().UnixNano()}
	t := g.series
	if t != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.maybeSweep(b.now)
	}
	for _, rm := range md.ResourceMetrics().All() {
		if t == nil {
			g.guardResource(rm.Resource(), &b)
			if g.maxDepth > 0 {
				for _, sm := range rm.ScopeMetrics().All() {
					g.clampMap(sm.Scope().Attributes(), &b)
					for _, m := range sm.Metrics().All() {
						g.guardDatapoints(m, &b) // the depth limit only: there are no datapoint rules
						g.clampExemplars(m, &b)
					}
				}
			}
			continue
		}
		// Two resources that guarding makes alike (a dropped instance id)
		// share one stream: what was removed from the resource tells their
		// series apart, as for data points.
		b.off.resource(rm.Resource().Attributes())
		b.resRemoved, _ = g.guardHashed(rm.Resource().Attributes(), sResource, &b, t)
		resHash := t.hashAttrs(rm.Resource().Attributes())
		for _, sm := range rm.ScopeMetrics().All() {
			g.clampMap(sm.Scope().Attributes(), &b)
			scopeHash := mix(maphash.String(t.seed, sm.Scope().Name()) ^ mix(maphash.String(t.seed, sm.Scope().Version())))
			for _, m := range sm.Metrics().All() {
				key := resHash + mix(scopeHash+maphash.String(t.seed, m.Name())+uint64(m.Type()))
				b.folded += t.limit(g, m, key, &b)
				g.clampExemplars(m, &b)
			}
		}
	}
	g.finish(ctx, sigMetrics, &b)
	return md, nil
}

// clampExemplars applies max_value_depth to the filtered attributes of the
// metric's exemplars (the data point rules do not apply to them: they are
// the measurement's own attributes, which the series identity excludes).
func (g *guard) clampExemplars(m pmetric.Metric, b *batch) {
	if g.maxDepth <= 0 {
		return
	}
	clamp := func(ex pmetric.ExemplarSlice) {
		for _, e := range ex.All() {
			g.clampMap(e.FilteredAttributes(), b)
		}
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		for _, dp := range m.Gauge().DataPoints().All() {
			clamp(dp.Exemplars())
		}
	case pmetric.MetricTypeSum:
		for _, dp := range m.Sum().DataPoints().All() {
			clamp(dp.Exemplars())
		}
	case pmetric.MetricTypeHistogram:
		for _, dp := range m.Histogram().DataPoints().All() {
			clamp(dp.Exemplars())
		}
	case pmetric.MetricTypeExponentialHistogram:
		for _, dp := range m.ExponentialHistogram().DataPoints().All() {
			clamp(dp.Exemplars())
		}
	}
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

// seriesTracker holds the state of the metric paths: the series seen per
// metric stream (a metric name within one resource and instrumentation scope)
// for the series cap, and the cumulative state that folding and merging need.
// All of it is bounded by one memory budget (metrics::memory_limit_mib).
// Callers hold mu for a whole batch.
type seriesTracker struct {
	mu         sync.Mutex
	maxSeries  int // 0: no series cap
	window     int64
	maxMetrics int
	budget     int64 // bytes
	seed       maphash.Seed

	streams map[uint64]*stream
	total   int64 // series tracked over all streams
	// Estimated bytes held (see the cost constants): streams, series entries
	// and running totals of merged series take at most half the budget
	// (seriesBytes); the remembered last points of folded and merged series
	// (pointBytes) the other half.
	seriesBytes int64
	pointBytes  int64
	untracked   int64 // data points not tracked since the last report
	full        [numFullOutcomes]int64
	merged      int64 // data points merged into a collapsed series, since the last report
	lastSweep   int64
	// lastEvictScan paces makeRoom's search for stale points.
	lastEvictScan int64

	// Scratch space of one metric, reused (the lock is held).
	ids     []ident
	folders map[uint64]*folder
	order   []uint64
}

// Outcomes of a full memory budget, counted per data point.
const (
	fullUntracked = iota // the metric stream is not tracked: no cap, no merge
	fullFolded           // a new series went to the overflow series
	fullForgotten        // a remembered cumulative point was forgotten to make room
	fullDropped          // a new folded series' value was not counted: no room to remember it
	numFullOutcomes
)

var fullOutcomeNames = [numFullOutcomes]string{"untracked", "folded", "forgotten", "dropped"}

// Estimated heap cost of the tracker's entries, in bytes, including map
// overhead at average load. BenchmarkStateMemory measures the real cost per
// entry and checks these estimates against it (see README, "Memory").
const (
	costStream      = 400
	costSeries      = 88
	costRemembered  = 360 // a foldedPoint or a mergedSeries, without buckets
	costBucketEntry = 8
)

// stream is one metric's tracking state.
type stream struct {
	series    map[uint64]seriesEntry // identity (attribute-set hash after guarding) -> entry
	lastSeen  int64
	lastSweep int64

	// Cumulative state: the last point of each original series (attribute
	// set as received) that is folded or merged, and the running totals of
	// the merged identities and of the overflow series.
	folded   map[uint64]*foldedPoint
	merged   map[uint64]*mergedSeries
	overflow *mergedSeries
}

// seriesEntry is one identity admitted under the series cap.
type seriesEntry struct {
	seen int64
	// orig is the first original series seen with this identity; another
	// one means attribute removal collapsed two series into one identity.
	orig      uint64
	collapsed bool
}

type foldedPoint struct {
	seen  int64
	start pcommon.Timestamp
	last  accumulator
	cost  int64
}

// mergedSeries is the running total of a cumulative series made of several
// (a collapsed identity, or the overflow series).
type mergedSeries struct {
	seen   int64
	start  pcommon.Timestamp
	lastTS pcommon.Timestamp
	acc    accumulator
	cost   int64
}

// ident is one data point's identities within a metric.
type ident struct {
	orig, id uint64
	admitted bool
}

func newSeriesTracker(cfg MetricsLimits) *seriesTracker {
	return &seriesTracker{
		maxSeries:  cfg.MaxSeriesPerMetric,
		window:     int64(cfg.SeriesWindow),
		maxMetrics: cfg.MaxMetrics,
		budget:     int64(cfg.MemoryLimitMiB) << 20,
		seed:       maphash.MakeSeed(),
		streams:    map[uint64]*stream{},
		folders:    map[uint64]*folder{},
	}
}

func accCost(a *accumulator) int64 {
	return costRemembered + costBucketEntry*int64(len(a.bounds)+len(a.buckets)+len(a.pos.counts)+len(a.neg.counts))
}

// seriesRoom reports whether a stream or series entry of this cost fits in
// the half of the budget that entries may take.
func (t *seriesTracker) seriesRoom(cost int64) bool { return t.seriesBytes+cost <= t.budget/2 }

// pointRoom reports whether a remembered point of this cost fits in the
// other half of the budget.
func (t *seriesTracker) pointRoom(cost int64) bool { return t.pointBytes+cost <= t.budget-t.budget/2 }

// usedBytes is the estimated memory held.
func (t *seriesTracker) usedBytes() int64 { return t.seriesBytes + t.pointBytes }

// maybeSweep forgets streams and series that stopped reporting, at most a few
// times per window.
func (t *seriesTracker) maybeSweep(now int64) {
	if now-t.lastSweep < t.window/4 {
		return
	}
	t.lastSweep = now
	for key, st := range t.streams {
		if now-st.lastSeen > t.window {
			t.dropStream(key, st)
			continue
		}
		t.sweepStream(st, now)
	}
}

func (t *seriesTracker) dropStream(key uint64, st *stream) {
	t.total -= int64(len(st.series))
	t.seriesBytes -= costStream + costSeries*int64(len(st.series))
	for _, f := range st.folded {
		t.pointBytes -= f.cost
	}
	for _, ms := range st.merged {
		t.seriesBytes -= ms.cost
	}
	if st.overflow != nil {
		t.seriesBytes -= st.overflow.cost
	}
	delete(t.streams, key)
}

func (t *seriesTracker) sweepStream(st *stream, now int64) {
	st.lastSweep = now
	for h, e := range st.series {
		if now-e.seen > t.window {
			delete(st.series, h)
			t.total--
			t.seriesBytes -= costSeries
		}
	}
	for h, f := range st.folded {
		if now-f.seen > t.window {
			delete(st.folded, h)
			t.pointBytes -= f.cost
		}
	}
	for h, ms := range st.merged {
		if now-ms.seen > t.window {
			delete(st.merged, h)
			t.seriesBytes -= ms.cost
		}
	}
	if st.overflow != nil && now-st.overflow.seen > t.window {
		t.seriesBytes -= st.overflow.cost
		st.overflow = nil
	}
}

func (t *seriesTracker) stream(key uint64, now int64) *stream {
	st, ok := t.streams[key]
	if !ok {
		if len(t.streams) >= t.maxMetrics {
			return nil
		}
		if !t.seriesRoom(costStream) {
			return nil
		}
		st = &stream{series: map[uint64]seriesEntry{}}
		t.streams[key] = st
		t.seriesBytes += costStream
		t.makeRoom(st, 0, false, now)
	}
	st.lastSeen = now
	return st
}

// admit reports whether the identity id may pass as itself (or as the merge
// of the series collapsed into it), registering it while the stream has
// room. A second original series with the same identity marks it collapsed.
func (t *seriesTracker) admit(st *stream, id, orig uint64, now int64) (ok, collapsed bool) {
	if e, ok := st.series[id]; ok {
		// Write the entry back only when something changed or its last-seen
		// time is noticeably old: a map write per data point would cost as
		// much as the rest of the check.
		if e.orig != orig && !e.collapsed {
			e.collapsed = true
			e.seen = now
			st.series[id] = e
		} else if now-e.seen > t.window/32 {
			e.seen = now
			st.series[id] = e
		}
		return true, e.collapsed
	}
	if t.maxSeries > 0 && len(st.series) >= t.maxSeries && now-st.lastSweep > t.window/8 {
		t.sweepStream(st, now)
	}
	if t.maxSeries > 0 && len(st.series) >= t.maxSeries {
		return false, false
	}
	if !t.seriesRoom(costSeries) {
		t.full[fullFolded]++
		return false, false
	}
	st.series[id] = seriesEntry{seen: now, orig: orig}
	t.total++
	t.seriesBytes += costSeries
	t.makeRoom(st, 0, false, now)
	return true, false
}

// hashAttrs is an order-independent hash of an attribute set; it does not
// allocate for string, int, double and bool values.
func (t *seriesTracker) hashAttrs(m pcommon.Map) uint64 {
	sum := uint64(m.Len())
	m.Range(func(k string, v pcommon.Value) bool {
		sum += t.pairHash(k, v)
		return true
	})
	return sum
}

// pairHash is the hash of one attribute.
func (t *seriesTracker) pairHash(k string, v pcommon.Value) uint64 {
	return mix(maphash.String(t.seed, k)*0x9E3779B97F4A7C15 ^ t.hashValue(v))
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

// guardPoint is guardMap for a data point's attributes, which also returns a
// hash of the attributes it removed or whose value it replaced (their
// values as received), and whether it changed anything.
func (g *guard) guardPoint(attrs pcommon.Map, b *batch, t *seriesTracker) (removed uint64, changed bool) {
	return g.guardHashed(attrs, sDatapoint, b, t)
}

// guardHashed is guardMap for one scope, returning a hash of what it removed
// or replaced.
func (g *guard) guardHashed(attrs pcommon.Map, sc scope, b *batch, t *seriesTracker) (removed uint64, changed bool) {
	m := g.matchers[sc]
	if g.observe || (m == nil && len(g.caps) == 0) {
		g.guardMap(attrs, sc, b)
		return 0, false
	}
	if len(g.caps) == 0 {
		var dropped int64
		attrs.RemoveIf(func(k string, v pcommon.Value) bool {
			if m.Decide(m.Class(k), k) {
				g.clampNested(v, b)
				return false
			}
			dropped++
			b.off.key(k)
			g.clampNested(v, b) // before hashing: a nested value hashes by its string form
			removed += t.pairHash(k, v)
			return true
		})
		b.dropped[sc] += dropped
		return removed, dropped > 0
	}
	attrs.RemoveIf(func(k string, v pcommon.Value) bool {
		g.clampNested(v, b) // before hashing: a nested value hashes by its string form
		if m != nil && !m.Keep(k) {
			b.dropped[sc]++
			b.off.key(k)
			removed += t.pairHash(k, v)
			changed = true
			return true
		}
		if c := g.caps[k]; c != nil && !c.admit(v, b.now) {
			b.capped++
			b.off.key(k)
			removed += t.pairHash(k, v)
			changed = true
			v.SetStr(g.overflow)
		}
		return false
	})
	return removed, changed
}

// attributed is a data point of any type.
type attributed interface {
	Attributes() pcommon.Map
}

// dataPoints is a data point slice of any type.
type dataPoints[D attributed] interface {
	Len() int
	At(int) D
}

// identify is the first pass over one metric's data points: it applies the
// datapoint rules and value caps to each point, and notes the point's
// original series (attributes as received), its identity after guarding, and
// whether that identity is admitted under the series cap. It reports whether
// any point needs more than passing through: a point past the cap, or one
// whose identity is collapsed (two original series became one).
func identify[D attributed, S dataPoints[D]](g *guard, t *seriesTracker, st *stream, dps S, b *batch) bool {
	t.ids = t.ids[:0]
	guardPoints := g.matchers[sDatapoint] != nil || len(g.caps) > 0
	special := false
	for i := range dps.Len() {
		attrs := dps.At(i).Attributes()
		var removed uint64
		changed := false
		if guardPoints {
			removed, changed = g.guardPoint(attrs, b, t)
		} else {
			g.clampMap(attrs, b) // before hashing: a nested value hashes by its string form
		}
		// The original series is the identity plus what guarding removed
		// or replaced: hashing only that is cheaper than hashing the whole
		// attribute set as received.
		id := t.hashAttrs(attrs)
		orig := id
		if changed || b.resRemoved != 0 {
			orig = mix(id^removed) + mix(b.resRemoved^0x5bd1e995)
		}
		ok, collapsed := t.admit(st, id, orig, b.now)
		special = special || !ok || collapsed
		t.ids = append(t.ids, ident{orig: orig, id: id, admitted: ok})
	}
	return special
}

// target is where the second pass sends a data point.
type target int

const (
	pass       target = iota // as it is
	toMerged                 // merged with the other series of its collapsed identity
	toOverflow               // folded into the overflow series
)

// targetOf is where point i goes. A collapsed identity of a cumulative metric
// needs a running total; if there is no room for a new one, its points are
// folded into the overflow series instead (totals kept, dimension lost).
func (t *seriesTracker) targetOf(st *stream, i int, observe, cumulative bool, now int64) (target, ident) {
	id := t.ids[i]
	switch {
	case !id.admitted:
		return toOverflow, id
	case !observe && st.series[id.id].collapsed:
		if cumulative && st.merged[id.id] == nil {
			if !t.seriesRoom(costRemembered) {
				t.full[fullFolded]++
				return toOverflow, id
			}
			t.mergedOf(st, id.id, true, now) // charged now, so the next new one sees it
		}
		return toMerged, id
	}
	return pass, id
}

// folderFor is the batch's folder of a collapsed identity, created with the
// identity's attributes (taken from its first point) when first needed.
func (t *seriesTracker) folderFor(id uint64, attrs pcommon.Map) *folder {
	f := t.folders[id]
	if f == nil {
		f = &folder{attrs: pcommon.NewMap(), named: true}
		attrs.CopyTo(f.attrs)
		t.folders[id] = f
		t.order = append(t.order, id)
	}
	return f
}

// limit applies the datapoint rules, the series cap and the merge of
// collapsed series to one metric, and returns the number of data points
// folded into the overflow series (or, observing, that would be folded).
//
// The per-type blocks below look alike on purpose: a generic version over the
// data point slice types makes the RemoveIf closures (and what they capture)
// escape to the heap, two allocations per metric per batch.
func (t *seriesTracker) limit(g *guard, m pmetric.Metric, key uint64, b *batch) int64 {
	st := t.stream(key, b.now)
	if st == nil {
		g.guardDatapoints(m, b)
		n := int64(pdatacount.Metric(m))
		t.untracked += n // reported by the caller
		if len(t.streams) < t.maxMetrics {
			t.full[fullUntracked] += n
		}
		return 0
	}
	observe, now := g.observe, b.now
	var ov folder
	ov.observe = observe
	clear(t.folders)
	t.order = t.order[:0]
	i := 0
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		if !identify(g, t, st, dps, b) {
			return 0
		}
		dps.RemoveIf(func(dp pmetric.NumberDataPoint) bool {
			to, _ := t.targetOf(st, i, observe, false, now)
			i++
			switch to {
			case toOverflow:
				ov.gauge(dp)
				return !observe
			case toMerged:
				t.folderFor(t.ids[i-1].id, dp.Attributes()).gauge(dp)
				return true
			}
			return false
		})
		if observe {
			break
		}
		for _, id := range t.order {
			f := t.folders[id]
			t.merged += f.n
			dp := dps.AppendEmpty()
			f.latest.MoveTo(dp)
		}
		if ov.n > 0 {
			dp := dps.AppendEmpty()
			ov.latest.MoveTo(dp)
			dp.Attributes().Clear()
			dp.Attributes().PutBool(overflowKey, true)
		}
	case pmetric.MetricTypeSum:
		sum := m.Sum()
		cumulative := sum.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		monotonic := sum.IsMonotonic()
		dps := sum.DataPoints()
		if !identify(g, t, st, dps, b) {
			return 0
		}
		dps.RemoveIf(func(dp pmetric.NumberDataPoint) bool {
			to, id := t.targetOf(st, i, observe, cumulative, now)
			i++
			if to == pass {
				return false
			}
			if dp.Flags().NoRecordedValue() || (dp.ValueType() == pmetric.NumberDataPointValueTypeDouble && math.IsNaN(dp.DoubleValue())) {
				// A staleness marker (or NaN) of a folded or merged series:
				// nothing to add, and the merged series goes on.
				return !observe
			}
			var delta accumulator
			delta.addNumber(dp)
			f := &ov
			if to == toMerged {
				f = t.folderFor(id.id, dp.Attributes())
			}
			if cumulative && !observe {
				delta = t.cumulativeDelta(st, id.orig, dp.StartTimestamp(), delta, now, monotonic)
			}
			f.fold(&delta, dp.StartTimestamp(), dp.Timestamp())
			return !observe
		})
		if observe {
			break
		}
		for _, id := range t.order {
			f := t.folders[id]
			t.merged += f.n
			ms := t.mergedOf(st, id, cumulative, now)
			dp := dps.AppendEmpty()
			f.result(t, ms).numberTo(dp)
			f.stamp(ms, dp)
		}
		if ov.n > 0 {
			ms := t.overflowOf(st, cumulative, now)
			dp := dps.AppendEmpty()
			ov.result(t, ms).numberTo(dp)
			ov.stamp(ms, dp)
		}
	case pmetric.MetricTypeHistogram:
		hist := m.Histogram()
		cumulative := hist.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		dps := hist.DataPoints()
		if !identify(g, t, st, dps, b) {
			return 0
		}
		dps.RemoveIf(func(dp pmetric.HistogramDataPoint) bool {
			to, id := t.targetOf(st, i, observe, cumulative, now)
			i++
			if to == pass {
				return false
			}
			if dp.Flags().NoRecordedValue() {
				// A staleness marker (or NaN) of a folded or merged series:
				// nothing to add, and the merged series goes on.
				return !observe
			}
			var delta accumulator
			delta.addHistogram(dp)
			f := &ov
			if to == toMerged {
				f = t.folderFor(id.id, dp.Attributes())
			}
			if cumulative && !observe {
				delta = t.cumulativeDelta(st, id.orig, dp.StartTimestamp(), delta, now, true)
			}
			f.fold(&delta, dp.StartTimestamp(), dp.Timestamp())
			return !observe
		})
		if observe {
			break
		}
		for _, id := range t.order {
			f := t.folders[id]
			t.merged += f.n
			ms := t.mergedOf(st, id, cumulative, now)
			dp := dps.AppendEmpty()
			f.result(t, ms).histogramTo(dp)
			f.stamp(ms, dp)
		}
		if ov.n > 0 {
			ms := t.overflowOf(st, cumulative, now)
			dp := dps.AppendEmpty()
			ov.result(t, ms).histogramTo(dp)
			ov.stamp(ms, dp)
		}
	case pmetric.MetricTypeExponentialHistogram:
		hist := m.ExponentialHistogram()
		cumulative := hist.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		dps := hist.DataPoints()
		if !identify(g, t, st, dps, b) {
			return 0
		}
		dps.RemoveIf(func(dp pmetric.ExponentialHistogramDataPoint) bool {
			to, id := t.targetOf(st, i, observe, cumulative, now)
			i++
			if to == pass {
				return false
			}
			if dp.Flags().NoRecordedValue() {
				// A staleness marker (or NaN) of a folded or merged series:
				// nothing to add, and the merged series goes on.
				return !observe
			}
			var delta accumulator
			delta.addExponential(dp)
			f := &ov
			if to == toMerged {
				f = t.folderFor(id.id, dp.Attributes())
			}
			if cumulative && !observe {
				delta = t.cumulativeDelta(st, id.orig, dp.StartTimestamp(), delta, now, true)
			}
			f.fold(&delta, dp.StartTimestamp(), dp.Timestamp())
			return !observe
		})
		if observe {
			break
		}
		for _, id := range t.order {
			f := t.folders[id]
			t.merged += f.n
			ms := t.mergedOf(st, id, cumulative, now)
			dp := dps.AppendEmpty()
			f.result(t, ms).exponentialTo(dp)
			f.stamp(ms, dp)
		}
		if ov.n > 0 {
			ms := t.overflowOf(st, cumulative, now)
			dp := dps.AppendEmpty()
			ov.result(t, ms).exponentialTo(dp)
			ov.stamp(ms, dp)
		}
	case pmetric.MetricTypeSummary:
		// Summaries are cumulative; quantiles cannot be merged, so merged and
		// overflow series carry count and sum only.
		dps := m.Summary().DataPoints()
		if !identify(g, t, st, dps, b) {
			return 0
		}
		dps.RemoveIf(func(dp pmetric.SummaryDataPoint) bool {
			to, id := t.targetOf(st, i, observe, true, now)
			i++
			if to == pass {
				return false
			}
			if dp.Flags().NoRecordedValue() {
				// A staleness marker (or NaN) of a folded or merged series:
				// nothing to add, and the merged series goes on.
				return !observe
			}
			var delta accumulator
			delta.addSummary(dp)
			f := &ov
			if to == toMerged {
				f = t.folderFor(id.id, dp.Attributes())
			}
			if !observe {
				delta = t.cumulativeDelta(st, id.orig, dp.StartTimestamp(), delta, now, true)
			}
			f.fold(&delta, dp.StartTimestamp(), dp.Timestamp())
			return !observe
		})
		if observe {
			break
		}
		for _, id := range t.order {
			f := t.folders[id]
			t.merged += f.n
			dp := dps.AppendEmpty()
			ms := t.mergedOf(st, id, true, now)
			f.result(t, ms).summaryTo(dp)
			f.stamp(ms, dp)
		}
		if ov.n > 0 {
			ms := t.overflowOf(st, true, now)
			dp := dps.AppendEmpty()
			ov.result(t, ms).summaryTo(dp)
			ov.stamp(ms, dp)
		}
	}
	return ov.n
}

// mergedOf is the running total of a collapsed identity of a cumulative
// metric (nil for a delta metric: its merge needs no state).
func (t *seriesTracker) mergedOf(st *stream, id uint64, cumulative bool, now int64) *mergedSeries {
	if !cumulative {
		return nil
	}
	if st.merged == nil {
		st.merged = map[uint64]*mergedSeries{}
	}
	ms := st.merged[id]
	if ms == nil {
		ms = &mergedSeries{cost: costRemembered}
		st.merged[id] = ms
		t.seriesBytes += ms.cost
		t.makeRoom(st, 0, false, now)
	}
	ms.seen = now
	return ms
}

// overflowOf is the overflow series' running total (nil for a delta metric).
func (t *seriesTracker) overflowOf(st *stream, cumulative bool, now int64) *mergedSeries {
	if !cumulative {
		return nil
	}
	if st.overflow == nil {
		st.overflow = &mergedSeries{cost: costRemembered}
		t.seriesBytes += st.overflow.cost
		t.makeRoom(st, 0, false, now)
	}
	st.overflow.seen = now
	return st.overflow
}

// makeRoom forgets remembered points of folded series that have not
// reported for a quarter of series_window, this stream's first, until the
// tracker is within its budget again. Points in use are never forgotten: a
// forgotten series that reports again would have its whole value counted
// once more, and forgetting points in use turns that into a loop. Running
// totals of merged and overflow series are not forgotten: they are counted
// with the entries, in their half of the budget.
func (t *seriesTracker) makeRoom(st *stream, keep uint64, keeping bool, now int64) {
	full := func() bool { return t.usedBytes() > t.budget || t.pointBytes >= t.budget-t.budget/2 }
	if !full() {
		return
	}
	// A scan that finds nothing stale costs a walk over every remembered
	// point: with the budget full of points in use, scan at most once per
	// 1/16 of the window, not once per new series.
	if now-t.lastEvictScan < t.window/16 {
		return
	}
	t.lastEvictScan = now
	staleBefore := now - t.window/4
	evict := func(s *stream) bool {
		for h, f := range s.folded {
			if (s == st && keeping && h == keep) || f.seen > staleBefore {
				continue
			}
			delete(s.folded, h)
			t.pointBytes -= f.cost
			t.full[fullForgotten]++
			if !full() {
				return true
			}
		}
		return false
	}
	if st != nil && evict(st) {
		return
	}
	for _, other := range t.streams {
		if other != st && evict(other) {
			return
		}
	}
}

// cumulativeDelta turns a cumulative point of the original series orig into
// the increase since its previous point, remembering the point for next
// time. A series seen for the first time, restarted (new start time) or reset
// (a monotonic value went down) contributes its whole value.
func (t *seriesTracker) cumulativeDelta(st *stream, orig uint64, start pcommon.Timestamp, cur accumulator, now int64, monotonic bool) accumulator {
	if st.folded == nil {
		st.folded = map[uint64]*foldedPoint{}
	}
	prev, ok := st.folded[orig]
	if !ok {
		cost := accCost(&cur)
		if !t.pointRoom(cost) {
			t.makeRoom(st, 0, false, now)
		}
		if !t.pointRoom(cost) {
			// No room to remember this series, and every remembered point
			// is in use: its value is not counted (an under-count, counted),
			// rather than counted whole at every report.
			t.full[fullDropped]++
			return accumulator{}
		}
		prev = &foldedPoint{}
		st.folded[orig] = prev
	}
	delta := cur.clone()
	switch {
	case !ok:
	case prev.start == start || (!monotonic && cur.kind == accNumber):
		// The same series (or an up-down counter that restarted, whose new
		// value replaces its old one): its change since the last point.
		if !delta.subtract(&prev.last, monotonic) {
			delta = cur.clone() // reset: the whole value is new
		}
	}
	prev.seen, prev.start, prev.last = now, start, cur.clone()
	cost := accCost(&prev.last)
	t.pointBytes += cost - prev.cost
	prev.cost = cost
	return delta
}

// folder collects, within a batch, one metric's points bound for one merged
// series: the overflow series, or a collapsed identity.
type folder struct {
	observe bool
	n       int64
	latest  pmetric.NumberDataPoint // gauges: the newest point
	acc     accumulator
	start   pcommon.Timestamp
	ts      pcommon.Timestamp
	attrs   pcommon.Map // a collapsed identity's attributes (named); unset for the overflow series
	named   bool
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

// result is what the merged point carries: the batch's deltas, or for
// cumulative metrics the running total they are added to.
func (f *folder) result(t *seriesTracker, ms *mergedSeries) *accumulator {
	if ms == nil {
		return &f.acc
	}
	if ms.acc.kind == accEmpty {
		ms.start = f.start
	}
	ms.acc.add(&f.acc)
	cost := accCost(&ms.acc)
	t.seriesBytes += cost - ms.cost
	ms.cost = cost
	return &ms.acc
}

type stampable interface {
	Attributes() pcommon.Map
	SetStartTimestamp(pcommon.Timestamp)
	SetTimestamp(pcommon.Timestamp)
}

// stamp sets the merged point's times and attributes. A cumulative merged
// series keeps its first start time, and its timestamps strictly increase
// (by at least a millisecond, Prometheus' resolution): two batches with
// points of the same time would otherwise give the store two different values
// for one series and time, and it would reject one.
func (f *folder) stamp(ms *mergedSeries, dp stampable) {
	start, ts := f.start, f.ts
	if ms != nil {
		if ms.start != 0 {
			start = ms.start
		}
		if ms.lastTS != 0 && ts < ms.lastTS+pcommon.Timestamp(time.Millisecond) {
			ts = ms.lastTS + pcommon.Timestamp(time.Millisecond)
		}
		ms.lastTS = ts
	}
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(ts)
	if f.named {
		f.attrs.CopyTo(dp.Attributes())
		return
	}
	dp.Attributes().Clear()
	dp.Attributes().PutBool(overflowKey, true)
}
