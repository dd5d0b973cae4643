package tagguardprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor"

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-fabric/otelcol-fabric/internal/attrmatch"
	"github.com/otelcol-fabric/otelcol-fabric/internal/sharedprocessor"
	"github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor/internal/metadata"
)

// scope indexes, in knownScopes order.
type scope int

const (
	sResource scope = iota
	sSpan
	sSpanEvent
	sDatapoint
	sLog
	sLogBody
	sProfileSample
	numScopes
)

type signal int

const (
	sigTraces signal = iota
	sigMetrics
	sigLogs
	sigProfiles
	numSignals
)

var signalNames = [numSignals]string{"traces", "metrics", "logs", "profiles"}

// guard is one tagguard processor instance, shared by every signal it is
// configured for (the factory creates one per component ID).
type guard struct {
	logger   *zap.Logger
	observe  bool
	matchers [numScopes]*attrmatch.Matcher // nil: scope has no rules
	caps     map[string]*valueCap
	overflow string
	maxDepth int            // 0: no depth limit
	series   *seriesTracker // nil: no series limit
	report   *reporter
	tb       *metadata.TelemetryBuilder
	boundMu  sync.Mutex
	bound    []*metadata.TelemetryBuilder // one per pipeline (Bind)

	droppedAttrs [numSignals][numScopes]metric.AddOption
	cappedAttrs  [numSignals]metric.AddOption
	modeAttrs    metric.AddOption
	fullAttrs    [numFullOutcomes]metric.AddOption
	now          func() time.Time
}

func newGuard(set processor.Settings, cfg *Config) (*guard, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("tagguard: telemetry: %w", err)
	}
	g := &guard{
		logger:   set.Logger,
		observe:  cfg.Mode == modeObserve,
		caps:     map[string]*valueCap{},
		overflow: cfg.OverflowValue,
		maxDepth: cfg.MaxValueDepth,
		tb:       tb,
		now:      time.Now,
	}
	for i, name := range knownScopes {
		rules, ok := cfg.Scopes[name]
		if !ok {
			continue
		}
		m, err := cfg.matcher(rules)
		if err != nil {
			return nil, fmt.Errorf("scopes::%s: %w", name, err)
		}
		if m.Active {
			g.matchers[i] = m
		}
	}
	for key, n := range cfg.MaxValuesPerKey {
		g.caps[cfg.resolve(key)] = newValueCap(n, cfg.ValuesWindow)
	}
	// The tracker serves the series cap and the merge of series that the
	// datapoint rules and value caps collapse into one.
	if cfg.Metrics.MaxSeriesPerMetric > 0 || g.matchers[sDatapoint] != nil || len(g.caps) > 0 {
		g.series = newSeriesTracker(cfg.Metrics)
	}
	g.report = newReporter(set.Logger, cfg.Report, cfg.Mode)
	mode := attribute.String("mode", cfg.Mode)
	g.modeAttrs = metric.WithAttributeSet(attribute.NewSet(mode))
	for o, name := range fullOutcomeNames {
		g.fullAttrs[o] = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", name)))
	}
	for sig := range numSignals {
		g.cappedAttrs[sig] = metric.WithAttributeSet(attribute.NewSet(mode, attribute.String("signal", signalNames[sig])))
		for sc := range numScopes {
			g.droppedAttrs[sig][sc] = metric.WithAttributeSet(attribute.NewSet(mode,
				attribute.String("signal", signalNames[sig]), attribute.String("scope", knownScopes[sc])))
		}
	}
	return g, nil
}

func (g *guard) Start(context.Context, component.Host) error {
	g.report.start()
	return nil
}

func (g *guard) Shutdown(context.Context) error {
	g.report.stop()
	g.tb.Shutdown()
	g.boundMu.Lock()
	defer g.boundMu.Unlock()
	for _, tb := range g.bound {
		tb.Shutdown()
	}
	g.bound = nil
	return nil
}

// Bind gives a pipeline its own telemetry, built from its settings, so that
// its counters carry its pipeline and signal (sharedprocessor.Binder).
func (g *guard) Bind(set processor.Settings) (any, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("tagguard: telemetry: %w", err)
	}
	g.boundMu.Lock()
	defer g.boundMu.Unlock()
	g.bound = append(g.bound, tb)
	return tb, nil
}

// telemetry is the calling pipeline's telemetry (the instance's own for a
// direct call).
func (g *guard) telemetry(ctx context.Context) *metadata.TelemetryBuilder {
	if tb, ok := sharedprocessor.Bound(ctx).(*metadata.TelemetryBuilder); ok {
		return tb
	}
	return g.tb
}

// batch accumulates one call's counts, recorded once at the end.
type batch struct {
	dropped   [numScopes]int64
	capped    int64
	truncated int64
	// resRemoved hashes what guarding removed from the current resource
	// (metrics): it is part of each of its series' original identity.
	resRemoved uint64
	folded     int64
	now        int64
	off        offenders
}

func (g *guard) finish(ctx context.Context, sig signal, b *batch) {
	tb := g.telemetry(ctx)
	for sc := range numScopes {
		if n := b.dropped[sc]; n > 0 {
			tb.ProcessorTagguardAttributesDropped.Add(ctx, n, g.droppedAttrs[sig][sc])
		}
	}
	if b.capped > 0 {
		tb.ProcessorTagguardValuesCapped.Add(ctx, b.capped, g.cappedAttrs[sig])
	}
	if b.folded > 0 {
		tb.ProcessorTagguardDatapointsFolded.Add(ctx, b.folded, g.modeAttrs)
	}
	if b.truncated > 0 {
		tb.ProcessorTagguardValuesTruncated.Add(ctx, b.truncated, g.cappedAttrs[sig])
	}
	if g.series != nil && sig == sigMetrics {
		// processMetrics holds the tracker's lock until it returns.
		t := g.series
		tb.ProcessorTagguardSeriesTracked.Record(ctx, t.total)
		tb.ProcessorTagguardStateBytes.Record(ctx, t.usedBytes())
		if n := t.untracked; n > 0 {
			t.untracked = 0
			tb.ProcessorTagguardMetricsUntracked.Add(ctx, n)
		}
		if n := t.merged; n > 0 {
			t.merged = 0
			tb.ProcessorTagguardDatapointsMerged.Add(ctx, n, g.modeAttrs)
		}
		for o, n := range t.full {
			if n > 0 {
				t.full[o] = 0
				tb.ProcessorTagguardStateFull.Add(ctx, n, g.fullAttrs[o])
			}
		}
	}
	g.report.merge(&b.off)
}

// guardMap applies a scope's rules, the value caps and the depth limit to one
// attribute map.
func (g *guard) guardMap(attrs pcommon.Map, sc scope, b *batch) {
	m := g.matchers[sc]
	if m == nil && len(g.caps) == 0 {
		g.clampMap(attrs, b)
		return
	}
	if g.observe {
		attrs.Range(func(k string, v pcommon.Value) bool {
			g.clampNested(v, b)
			if m != nil && !m.Keep(k) {
				b.dropped[sc]++
				b.off.key(k)
				return true
			}
			if c := g.caps[k]; c != nil && !c.admit(v, b.now) {
				b.capped++
				b.off.key(k)
			}
			return true
		})
		return
	}
	if len(g.caps) == 0 {
		// The common case, kept lean: allow and deny lists only.
		var dropped int64
		attrs.RemoveIf(func(k string, v pcommon.Value) bool {
			if m.Decide(m.Class(k), k) {
				g.clampNested(v, b)
				return false
			}
			dropped++
			b.off.key(k)
			return true
		})
		b.dropped[sc] += dropped
		return
	}
	attrs.RemoveIf(func(k string, v pcommon.Value) bool {
		if m != nil && !m.Keep(k) {
			b.dropped[sc]++
			b.off.key(k)
			return true
		}
		g.clampNested(v, b)
		if c := g.caps[k]; c != nil && !c.admit(v, b.now) {
			b.capped++
			b.off.key(k)
			v.SetStr(g.overflow)
		}
		return false
	})
}

// truncatedValue replaces what nests deeper than max_value_depth.
const truncatedValue = "[tagguard: nested deeper than max_value_depth, truncated]"

// clampNested applies the depth limit to an attribute value (depth 1). Its
// first check is one type comparison: scalars, the common case, cost nothing
// more.
func (g *guard) clampNested(v pcommon.Value, b *batch) {
	if t := v.Type(); g.maxDepth > 0 && (t == pcommon.ValueTypeMap || t == pcommon.ValueTypeSlice) {
		g.clampValue(v, 1, b)
	}
}

// clampMap applies the depth limit to every value of a map of depth 1.
func (g *guard) clampMap(attrs pcommon.Map, b *batch) {
	if g.maxDepth <= 0 {
		return
	}
	for _, v := range attrs.All() {
		g.clampNested(v, b)
	}
}

// clampValue replaces a map or slice value at depth > maxDepth by a string.
// Its recursion is bounded by maxDepth, so a value nested a million levels
// deep (which the OTLP decoders accept) costs maxDepth frames, and the
// exporters after tagguard never walk it.
func (g *guard) clampValue(v pcommon.Value, depth int, b *batch) {
	switch v.Type() {
	case pcommon.ValueTypeMap:
		if depth > g.maxDepth {
			v.SetStr(truncatedValue)
			b.truncated++
			return
		}
		for _, c := range v.Map().All() {
			g.clampValue(c, depth+1, b)
		}
	case pcommon.ValueTypeSlice:
		if depth > g.maxDepth {
			v.SetStr(truncatedValue)
			b.truncated++
			return
		}
		for _, c := range v.Slice().All() {
			g.clampValue(c, depth+1, b)
		}
	}
}

// guardResource applies the resource scope and notes the service for the report.
func (g *guard) guardResource(res pcommon.Resource, b *batch) {
	attrs := res.Attributes()
	b.off.resource(attrs)
	g.guardMap(attrs, sResource, b)
}

func (g *guard) ProcessTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	b := batch{now: g.now().UnixNano()}
	deep := g.maxDepth > 0
	for _, rs := range td.ResourceSpans().All() {
		g.guardResource(rs.Resource(), &b)
		spanRules := g.matchers[sSpan] != nil || len(g.caps) > 0
		eventRules := g.matchers[sSpanEvent] != nil || len(g.caps) > 0
		if !spanRules && !eventRules && !deep {
			continue
		}
		for _, ss := range rs.ScopeSpans().All() {
			g.clampMap(ss.Scope().Attributes(), &b)
			for _, span := range ss.Spans().All() {
				// guardMap applies the depth limit without rules too.
				g.guardMap(span.Attributes(), sSpan, &b)
				for _, ev := range span.Events().All() {
					g.guardMap(ev.Attributes(), sSpanEvent, &b)
				}
				for _, l := range span.Links().All() {
					g.clampMap(l.Attributes(), &b)
				}
			}
		}
	}
	g.finish(ctx, sigTraces, &b)
	return td, nil
}

func (g *guard) ProcessLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	b := batch{now: g.now().UnixNano()}
	logRules := g.matchers[sLog] != nil || len(g.caps) > 0
	bodyRules := g.matchers[sLogBody] != nil
	deep := g.maxDepth > 0
	for _, rl := range ld.ResourceLogs().All() {
		g.guardResource(rl.Resource(), &b)
		if !logRules && !bodyRules && !deep {
			continue
		}
		for _, sl := range rl.ScopeLogs().All() {
			g.clampMap(sl.Scope().Attributes(), &b)
			for _, lr := range sl.LogRecords().All() {
				g.guardMap(lr.Attributes(), sLog, &b)
				body := lr.Body()
				switch {
				case bodyRules && body.Type() == pcommon.ValueTypeMap:
					g.guardMap(body.Map(), sLogBody, &b)
				case deep:
					g.clampValue(body, 0, &b) // a body map's values count from level 1, as an attribute map's
				}
			}
		}
	}
	g.finish(ctx, sigLogs, &b)
	return ld, nil
}

func (g *guard) ProcessProfiles(ctx context.Context, pd pprofile.Profiles) (pprofile.Profiles, error) {
	b := batch{now: g.now().UnixNano()}
	for _, rp := range pd.ResourceProfiles().All() {
		g.guardResource(rp.Resource(), &b)
	}
	if g.maxDepth > 0 {
		for _, kv := range pd.Dictionary().AttributeTable().All() {
			g.clampNested(kv.Value(), &b)
		}
	}
	if m := g.matchers[sProfileSample]; m != nil {
		g.guardProfileSamples(pd, m, &b)
	}
	g.finish(ctx, sigProfiles, &b)
	return pd, nil
}

// guardProfileSamples filters sample attributes. They are indices into the
// batch's shared attribute table, so each table entry is judged once.
func (g *guard) guardProfileSamples(pd pprofile.Profiles, m *attrmatch.Matcher, b *batch) {
	dict := pd.Dictionary()
	table := dict.AttributeTable()
	strs := dict.StringTable()
	keep := make([]bool, table.Len())
	for i, kv := range table.All() {
		idx := int(kv.KeyStrindex())
		keep[i] = idx < 0 || idx >= strs.Len() || m.Keep(strs.At(idx))
	}
	dropIdx := func(idx int32) bool {
		drop := idx >= 0 && int(idx) < len(keep) && !keep[idx]
		if drop {
			b.dropped[sProfileSample]++
			b.off.keyFunc(func() string { return strs.At(int(table.At(int(idx)).KeyStrindex())) })
		}
		return drop
	}
	for _, rp := range pd.ResourceProfiles().All() {
		for _, sp := range rp.ScopeProfiles().All() {
			for _, p := range sp.Profiles().All() {
				for _, s := range p.Samples().All() {
					if g.observe {
						for _, idx := range s.AttributeIndices().All() {
							dropIdx(idx)
						}
						continue
					}
					s.AttributeIndices().RemoveIf(dropIdx)
				}
			}
		}
	}
}
