package backpressureprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/backpressureprocessor"

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-fabric/otelcol-fabric/internal/attrmatch"
	"github.com/otelcol-fabric/otelcol-fabric/internal/pdatacount"
	"github.com/otelcol-fabric/otelcol-fabric/internal/pressure"
	"github.com/otelcol-fabric/otelcol-fabric/processors/backpressureprocessor/internal/metadata"
)

type tier int

const (
	gold tier = iota
	silver
	bronze
	numTiers
)

var tierNames = [numTiers]string{pressure.Gold, pressure.Silver, pressure.Bronze}

func tierOf(name string) (tier, bool) {
	for i, n := range tierNames {
		if n == name {
			return tier(i), true
		}
	}
	return 0, false
}

type signal int

const (
	sigTraces signal = iota
	sigMetrics
	sigLogs
	numSignals
)

var signalNames = [numSignals]string{"traces", "metrics", "logs"}

type reason int

const (
	reasonTierDropped reason = iota
	reasonNotImportant
	reasonBelowSeverity
	numReasons
)

var reasonNames = [numReasons]string{"tier_dropped", "not_important", "below_severity"}

// shedder is one backpressure processor (one per signal pipeline; they share
// the queuewatch extension).
type shedder struct {
	cfg    *Config
	logger *zap.Logger
	tb     *metadata.TelemetryBuilder
	src    pressure.Source

	tierKey      string
	services     map[string]tier
	defaultTier  tier
	elevatedDrop [numTiers]bool
	highDrop     [numTiers]bool
	elevatedSev  plog.SeverityNumber
	highSev      plog.SeverityNumber
	slowSpan     time.Duration
	refuseGoldAt float64
	logAttrs     *attrmatch.Matcher

	inFlight [numSignals]*inFlight // signals with critical::held_for
	now      func() time.Time

	shedAttrs    [numTiers][numSignals][numReasons]metric.AddOption
	refusedAttrs [numTiers][numSignals]metric.AddOption
}

func newShedder(set processor.Settings, cfg *Config) (*shedder, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("backpressure: telemetry: %w", err)
	}
	s := &shedder{
		cfg:          cfg,
		logger:       set.Logger,
		tb:           tb,
		tierKey:      cfg.TierAttribute,
		services:     map[string]tier{},
		slowSpan:     cfg.High.SlowSpan,
		refuseGoldAt: cfg.Critical.RefuseGoldAt,
		now:          time.Now,
	}
	if d := cfg.Critical.HeldFor[signalNames[sigTraces]]; d > 0 {
		s.inFlight[sigTraces] = newInFlight(d, time.Now())
	}
	s.defaultTier, _ = tierOf(cfg.DefaultTier)
	for svc, t := range cfg.Services {
		s.services[svc], _ = tierOf(t)
	}
	for _, t := range cfg.Elevated.DropTiers {
		tt, _ := tierOf(t)
		s.elevatedDrop[tt] = true
	}
	for _, t := range cfg.High.DropTiers {
		tt, _ := tierOf(t)
		s.highDrop[tt] = true
	}
	s.elevatedSev, _ = parseSeverity(cfg.Elevated.MinLogSeverity)
	s.highSev, _ = parseSeverity(cfg.High.MinLogSeverity)
	if len(cfg.Elevated.LogAttributes) > 0 {
		if s.logAttrs, err = attrmatch.New(attrmatch.Rules{Allow: cfg.Elevated.LogAttributes}); err != nil {
			return nil, fmt.Errorf("elevated::log_attributes: %w", err)
		}
	}
	for t := range numTiers {
		for sig := range numSignals {
			s.refusedAttrs[t][sig] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("tier", tierNames[t]), attribute.String("signal", signalNames[sig])))
			for r := range numReasons {
				s.shedAttrs[t][sig][r] = metric.WithAttributeSet(attribute.NewSet(
					attribute.String("tier", tierNames[t]), attribute.String("signal", signalNames[sig]),
					attribute.String("reason", reasonNames[r])))
			}
		}
	}
	return s, nil
}

// start finds the queuewatch extension.
func (s *shedder) start(_ context.Context, host component.Host) error {
	ext, ok := host.GetExtensions()[s.cfg.Extension]
	if !ok {
		return fmt.Errorf("backpressure: the %q extension is not running: add `%s:` under extensions, with the exporters to watch, and list it in service::extensions",
			s.cfg.Extension, s.cfg.Extension)
	}
	src, ok := ext.(pressure.Source)
	if !ok {
		return fmt.Errorf("backpressure: extension %q does not publish a pressure level; set `extension:` to a queuewatch extension", s.cfg.Extension)
	}
	s.src = src
	return nil
}

func (s *shedder) shutdown(context.Context) error {
	s.tb.Shutdown()
	return nil
}

// tier of a resource: its tier attribute, else its service in the map,
// else the default.
func (s *shedder) tier(res pcommon.Resource) tier {
	attrs := res.Attributes()
	if v, ok := attrs.Get(s.tierKey); ok {
		if t, ok := tierOf(v.Str()); ok {
			return t
		}
	}
	if len(s.services) > 0 {
		if v, ok := attrs.Get("service.name"); ok {
			if t, ok := s.services[v.Str()]; ok {
				return t
			}
		}
	}
	return s.defaultTier
}

// counts accumulates a batch's shed items.
type counts struct {
	shed [numTiers][numReasons]int64
}

func (s *shedder) record(ctx context.Context, sig signal, c *counts) {
	for t := range numTiers {
		for r := range numReasons {
			if n := c.shed[t][r]; n > 0 {
				s.tb.ProcessorBackpressureItemsShed.Add(ctx, n, s.shedAttrs[t][sig][r])
				s.src.ReportShed(tierNames[t], signalNames[sig], reasonNames[r], int(n))
			}
		}
	}
}

// refuse returns the retryable error of a refused batch at critical,
// counting its items by tier, or nil if the batch may pass: it holds only
// gold, the queues are below refuse_gold_at, and it fits in the room left
// once what is on its way arrives (critical::held_for).
func (s *shedder) refuse(ctx context.Context, sig signal, items [numTiers]int64) error {
	fill := s.src.Fill()
	if items[silver]+items[bronze] > 0 {
		s.countRefused(ctx, sig, items)
		return fmt.Errorf("backpressure: critical pressure (fullest exporter queue %.0f%%): refusing non-gold %s, retry later", fill*100, signalNames[sig])
	}
	if fill >= s.refuseGoldAt {
		s.countRefused(ctx, sig, items)
		return fmt.Errorf("backpressure: exporter queue %.0f%% full: refusing %s, retry later", fill*100, signalNames[sig])
	}
	f := s.inFlight[sig]
	if f == nil {
		return nil
	}
	now := s.now()
	room, at, measured := s.src.Room(signalNames[sig])
	if !measured || now.Sub(at) > staleMargin {
		// No usable measurement of the room (none yet, or queuewatch cannot
		// read the queues: its level decays after stale_after).
		f.add(now, items[gold])
		return nil
	}
	// What will still reach the queue after it was measured: everything
	// passed from held_for before the measurement on (spans before
	// sampling: an upper bound of what tail_sampling will release).
	heldFor := s.cfg.Critical.HeldFor[signalNames[sig]]
	onTheirWay, added := f.tryAdd(at.Add(-heldFor), now, items[gold], room)
	if added {
		return nil
	}
	s.countRefused(ctx, sig, items)
	return fmt.Errorf("backpressure: critical pressure: the trace queues have room for %.0f spans and up to %d are still on their way to them (critical::held_for %s): refusing %d gold spans, retry later",
		room, onTheirWay, heldFor, items[gold])
}

func (s *shedder) countRefused(ctx context.Context, sig signal, items [numTiers]int64) {
	for t := range numTiers {
		if items[t] > 0 {
			s.tb.ProcessorBackpressureItemsRefused.Add(ctx, items[t], s.refusedAttrs[t][sig])
			s.src.ReportShed(tierNames[t], signalNames[sig], "refused", int(items[t]))
		}
	}
}

// passed counts a batch forwarded below critical, for a signal with
// critical::held_for (count is called only then).
func (s *shedder) passed(sig signal, count func() int) {
	if f := s.inFlight[sig]; f != nil {
		f.add(s.now(), int64(count()))
	}
}

// dropped: the tier is shed entirely at this level.
func (s *shedder) dropped(level pressure.Level, t tier) bool {
	return level >= pressure.Elevated && s.elevatedDrop[t]
}

// reduced: at high, the tier keeps only what matters.
func (s *shedder) reduced(level pressure.Level, t tier) bool {
	return level >= pressure.High && s.highDrop[t] && !s.dropped(level, t)
}

func (s *shedder) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	level := s.src.Level()
	if level == pressure.OK {
		s.passed(sigTraces, td.SpanCount)
		return td, nil
	}
	if level == pressure.Critical {
		return td, s.refuse(ctx, sigTraces, s.tracesByTier(td))
	}
	var c counts
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		t := s.tier(rs.Resource())
		switch {
		case s.dropped(level, t):
			c.shed[t][reasonTierDropped] += int64(spanCount(rs))
			return true
		case s.reduced(level, t):
			for _, ss := range rs.ScopeSpans().All() {
				ss.Spans().RemoveIf(func(sp ptrace.Span) bool {
					keep := sp.Status().Code() == ptrace.StatusCodeError ||
						(s.slowSpan > 0 && sp.EndTimestamp().AsTime().Sub(sp.StartTimestamp().AsTime()) >= s.slowSpan)
					if !keep {
						c.shed[t][reasonNotImportant]++
					}
					return !keep
				})
			}
			return spanCount(rs) == 0
		}
		return false
	})
	s.record(ctx, sigTraces, &c)
	if td.ResourceSpans().Len() == 0 {
		return td, processorhelper.ErrSkipProcessingData // nothing left to forward
	}
	s.passed(sigTraces, td.SpanCount)
	return td, nil
}

func (s *shedder) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	level := s.src.Level()
	if level == pressure.OK {
		s.passed(sigMetrics, md.DataPointCount)
		return md, nil
	}
	if level == pressure.Critical {
		return md, s.refuse(ctx, sigMetrics, s.metricsByTier(md))
	}
	var c counts
	md.ResourceMetrics().RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		t := s.tier(rm.Resource())
		switch {
		case s.dropped(level, t):
			c.shed[t][reasonTierDropped] += int64(pdatacount.ResourceMetrics(rm))
			return true
		case s.reduced(level, t):
			c.shed[t][reasonNotImportant] += int64(pdatacount.ResourceMetrics(rm))
			return true
		}
		return false
	})
	s.record(ctx, sigMetrics, &c)
	if md.ResourceMetrics().Len() == 0 {
		return md, processorhelper.ErrSkipProcessingData
	}
	s.passed(sigMetrics, md.DataPointCount)
	return md, nil
}

func (s *shedder) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	level := s.src.Level()
	if level == pressure.OK {
		s.passed(sigLogs, ld.LogRecordCount)
		return ld, nil
	}
	if level == pressure.Critical {
		return ld, s.refuse(ctx, sigLogs, s.logsByTier(ld))
	}
	minSev := s.elevatedSev
	if level >= pressure.High && s.highSev > minSev {
		minSev = s.highSev
	}
	var c counts
	ld.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		t := s.tier(rl.Resource())
		switch {
		case t == gold:
			return false
		case s.dropped(level, t):
			c.shed[t][reasonTierDropped] += int64(logCount(rl))
			return true
		}
		for _, sl := range rl.ScopeLogs().All() {
			sl.LogRecords().RemoveIf(func(lr plog.LogRecord) bool {
				sev := lr.SeverityNumber()
				if minSev != plog.SeverityNumberUnspecified && sev != plog.SeverityNumberUnspecified && sev < minSev {
					c.shed[t][reasonBelowSeverity]++
					return true
				}
				if s.logAttrs != nil {
					lr.Attributes().RemoveIf(func(k string, _ pcommon.Value) bool { return !s.logAttrs.Keep(k) })
				}
				return false
			})
		}
		return logCount(rl) == 0
	})
	s.record(ctx, sigLogs, &c)
	if ld.ResourceLogs().Len() == 0 {
		return ld, processorhelper.ErrSkipProcessingData
	}
	s.passed(sigLogs, ld.LogRecordCount)
	return ld, nil
}

func (s *shedder) tracesByTier(td ptrace.Traces) (items [numTiers]int64) {
	for _, rs := range td.ResourceSpans().All() {
		items[s.tier(rs.Resource())] += int64(spanCount(rs))
	}
	return items
}

func (s *shedder) metricsByTier(md pmetric.Metrics) (items [numTiers]int64) {
	for _, rm := range md.ResourceMetrics().All() {
		items[s.tier(rm.Resource())] += int64(pdatacount.ResourceMetrics(rm))
	}
	return items
}

func (s *shedder) logsByTier(ld plog.Logs) (items [numTiers]int64) {
	for _, rl := range ld.ResourceLogs().All() {
		items[s.tier(rl.Resource())] += int64(logCount(rl))
	}
	return items
}

func spanCount(rs ptrace.ResourceSpans) int {
	n := 0
	for _, ss := range rs.ScopeSpans().All() {
		n += ss.Spans().Len()
	}
	return n
}

func logCount(rl plog.ResourceLogs) int {
	n := 0
	for _, sl := range rl.ScopeLogs().All() {
		n += sl.LogRecords().Len()
	}
	return n
}
