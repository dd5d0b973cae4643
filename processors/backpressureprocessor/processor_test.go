package backpressureprocessor

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-fabric/otelcol-fabric/internal/pdatacount"
	"github.com/otelcol-fabric/otelcol-fabric/internal/pressure"
	"github.com/otelcol-fabric/otelcol-fabric/processors/backpressureprocessor/internal/metadata"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg
}

func TestConfig(t *testing.T) {
	require.NoError(t, xconfmap.Validate(loadConfig(t, "")))
	cfg := loadConfig(t, "tiers")
	require.NoError(t, xconfmap.Validate(cfg))
	assert.Equal(t, map[string]string{"checkout": "gold", "search": "bronze"}, cfg.Services)
	assert.Equal(t, 500*time.Millisecond, cfg.High.SlowSpan)
	for name, want := range map[string]string{
		"unknown_tier":        `services::checkout: unknown tier "platinum" (valid: gold, silver, bronze)`,
		"gold_dropped":        "elevated::drop_tiers[0]: gold is never shed",
		"bad_severity":        `elevated::min_log_severity: "LOUD" is not a severity`,
		"not_increasing":      `high::drop_tiers must include every tier of elevated::drop_tiers (missing "silver")`,
		"severity_decreasing": "high::min_log_severity (INFO) must not be below elevated::min_log_severity (ERROR)",
		"bad_default":         `default_tier: unknown tier "tin"`,
		"bad_refuse":          "critical::refuse_gold_at: must be within (0, 1], got 1.5",
		"held_for_signal":     `critical::held_for: "logs": only traces are held after this processor (by tail_sampling); valid: traces`,
		"held_for_negative":   "critical::held_for::traces: must not be negative, got -1s",
		"admission_negative":  "admission::max_wait: must not be negative, got -2s\nadmission::max_concurrent: must not be negative, got -1",
	} {
		err := xconfmap.Validate(loadConfig(t, name))
		if assert.Error(t, err, name) {
			assert.Contains(t, err.Error(), want, name)
		}
	}
}

// fakeWatch is a pressure.Source with a settable level, registered as the
// queuewatch extension.
type fakeWatch struct {
	component.StartFunc
	component.ShutdownFunc
	mu      sync.Mutex
	level   pressure.Level
	fill    float64
	rooms   map[string]float64
	roomsAt time.Time
	shed    map[string]int
}

func (f *fakeWatch) Room(signal string) (float64, time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.rooms[signal]
	return r, f.roomsAt, ok
}

func (f *fakeWatch) Level() pressure.Level { f.mu.Lock(); defer f.mu.Unlock(); return f.level }
func (f *fakeWatch) Fill() float64         { f.mu.Lock(); defer f.mu.Unlock(); return f.fill }
func (f *fakeWatch) ReportShed(tier, signal, reason string, items int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shed[tier+"/"+signal+"/"+reason] += items
}

type host struct {
	component.Host
	ext map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.ext }

// fakeWatch implements exactly what backpressure may ask of queuewatch:
// the level, the fill and the shed report (no timing of the next consumer,
// which in every shipped pipeline only enqueues).
var (
	_ extension.Extension = (*fakeWatch)(nil)
	_ pressure.Source     = (*fakeWatch)(nil)
)

type pipeline struct {
	watch   *fakeWatch
	traces  *consumertest.TracesSink
	metrics *consumertest.MetricsSink
	logs    *consumertest.LogsSink
	tp      processor.Traces
	mp      processor.Metrics
	lp      processor.Logs
}

func newPipeline(t *testing.T, cfg *Config) *pipeline {
	t.Helper()
	p := &pipeline{
		watch:   &fakeWatch{shed: map[string]int{}},
		traces:  new(consumertest.TracesSink),
		metrics: new(consumertest.MetricsSink),
		logs:    new(consumertest.LogsSink),
	}
	ctx := context.Background()
	set := processortest.NewNopSettings(metadata.Type)
	f := NewFactory()
	var err error
	p.tp, err = f.CreateTraces(ctx, set, cfg, p.traces)
	require.NoError(t, err)
	p.mp, err = f.CreateMetrics(ctx, set, cfg, p.metrics)
	require.NoError(t, err)
	p.lp, err = f.CreateLogs(ctx, set, cfg, p.logs)
	require.NoError(t, err)
	h := host{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{component.MustNewID("queuewatch"): p.watch}}
	for _, c := range []component.Component{p.tp, p.mp, p.lp} {
		require.NoError(t, c.Start(ctx, h))
		t.Cleanup(func() { require.NoError(t, c.Shutdown(ctx)) })
	}
	return p
}

func TestStartWithoutExtension(t *testing.T) {
	tp, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), createDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	err = tp.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `the "queuewatch" extension is not running: add `+"`queuewatch:`"+` under extensions`)
}

// batch builds one resource per tier, each with: an ok span, an error span
// and a slow span; a gauge with 2 points; a DEBUG, an INFO, a WARN and an
// ERROR log record.
func traces() ptrace.Traces {
	td := ptrace.NewTraces()
	for _, tier := range pressure.Tiers {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.tier", tier)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		now := time.Now()
		ok := spans.AppendEmpty()
		ok.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		ok.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		e := spans.AppendEmpty()
		e.Status().SetCode(ptrace.StatusCodeError)
		slow := spans.AppendEmpty()
		slow.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		slow.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(2 * time.Second)))
	}
	return td
}

func metrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	for _, tier := range pressure.Tiers {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.tier", tier)
		g := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge()
		g.DataPoints().AppendEmpty().SetIntValue(1)
		g.DataPoints().AppendEmpty().SetIntValue(2)
	}
	return md
}

func logs() plog.Logs {
	ld := plog.NewLogs()
	for _, tier := range pressure.Tiers {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.tier", tier)
		lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
		for _, sev := range []plog.SeverityNumber{plog.SeverityNumberDebug, plog.SeverityNumberInfo, plog.SeverityNumberWarn, plog.SeverityNumberError} {
			lr := lrs.AppendEmpty()
			lr.SetSeverityNumber(sev)
			lr.Attributes().PutStr("trace_id", "abc")
			lr.Attributes().PutStr("user.id", "u")
		}
	}
	return ld
}

func perTier[T any](n int, items func(i int) (tier string, count int)) map[string]int {
	out := map[string]int{}
	for i := range n {
		tier, c := items(i)
		if c > 0 {
			out[tier] += c
		}
	}
	return out
}

func TestActionsPerLevel(t *testing.T) {
	ctx := context.Background()
	cfg := createDefaultConfig().(*Config)
	cfg.Elevated.LogAttributes = []string{"trace_id"}
	for _, tc := range []struct {
		level         pressure.Level
		fill          float64
		spans         map[string]int
		points        map[string]int
		logs          map[string]int
		refused       bool
		logAttrsWhole bool
	}{
		{level: pressure.OK, spans: map[string]int{"gold": 3, "silver": 3, "bronze": 3}, points: map[string]int{"gold": 2, "silver": 2, "bronze": 2},
			logs: map[string]int{"gold": 4, "silver": 4, "bronze": 4}, logAttrsWhole: true},
		// elevated: bronze gone; silver logs below INFO gone; attributes whitelisted.
		{level: pressure.Elevated, spans: map[string]int{"gold": 3, "silver": 3}, points: map[string]int{"gold": 2, "silver": 2},
			logs: map[string]int{"gold": 4, "silver": 3}},
		// high: silver keeps error and slow spans, no metrics, logs from WARN.
		{level: pressure.High, spans: map[string]int{"gold": 3, "silver": 2}, points: map[string]int{"gold": 2},
			logs: map[string]int{"gold": 4, "silver": 2}},
		{level: pressure.Critical, fill: 0.5, refused: true},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			p := newPipeline(t, cfg)
			p.watch.level, p.watch.fill = tc.level, tc.fill
			errT := p.tp.ConsumeTraces(ctx, traces())
			errM := p.mp.ConsumeMetrics(ctx, metrics())
			errL := p.lp.ConsumeLogs(ctx, logs())
			if tc.refused {
				for _, err := range []error{errT, errM, errL} {
					require.Error(t, err)
					assert.False(t, consumererror.IsPermanent(err), "a refusal is retryable")
					assert.Contains(t, err.Error(), "refusing non-gold")
				}
				assert.Empty(t, p.traces.AllTraces())
				assert.Equal(t, 3, p.watch.shed["silver/traces/refused"])
				return
			}
			require.NoError(t, errT)
			require.NoError(t, errM)
			require.NoError(t, errL)
			td := p.traces.AllTraces()[0]
			assert.Equal(t, tc.spans, perTier[int](td.ResourceSpans().Len(), func(i int) (string, int) {
				rs := td.ResourceSpans().At(i)
				v, _ := rs.Resource().Attributes().Get("service.tier")
				return v.Str(), spanCount(rs)
			}))
			md := p.metrics.AllMetrics()[0]
			assert.Equal(t, tc.points, perTier[int](md.ResourceMetrics().Len(), func(i int) (string, int) {
				rm := md.ResourceMetrics().At(i)
				v, _ := rm.Resource().Attributes().Get("service.tier")
				return v.Str(), pdatacount.ResourceMetrics(rm)
			}))
			ld := p.logs.AllLogs()[0]
			assert.Equal(t, tc.logs, perTier[int](ld.ResourceLogs().Len(), func(i int) (string, int) {
				rl := ld.ResourceLogs().At(i)
				v, _ := rl.Resource().Attributes().Get("service.tier")
				return v.Str(), logCount(rl)
			}))
			for _, rl := range ld.ResourceLogs().All() {
				v, _ := rl.Resource().Attributes().Get("service.tier")
				lr := rl.ScopeLogs().At(0).LogRecords().At(0)
				_, hasUser := lr.Attributes().Get("user.id")
				assert.Equal(t, tc.logAttrsWhole || v.Str() == "gold", hasUser, "%s logs keep user.id", v.Str())
			}
		})
	}
}

func TestCriticalGold(t *testing.T) {
	ctx := context.Background()
	p := newPipeline(t, createDefaultConfig().(*Config))
	gold := func() ptrace.Traces {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.tier", "gold")
		rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		return td
	}
	p.watch.level, p.watch.fill = pressure.Critical, 0.95
	require.NoError(t, p.tp.ConsumeTraces(ctx, gold()), "gold passes at critical while the queue has room")
	p.watch.fill = 0.98
	err := p.tp.ConsumeTraces(ctx, gold())
	require.Error(t, err, "gold is refused, not dropped, when the queue is about to overflow")
	assert.False(t, consumererror.IsPermanent(err))
	assert.Len(t, p.traces.AllTraces(), 1)
	assert.Equal(t, 1, p.watch.shed["gold/traces/refused"])
}

// TestCriticalGoldHeldFor: with critical::held_for, gold is refused at
// critical, although the fill is below refuse_gold_at, once the batch would
// not fit in the room the last measurement left in the queue after what was
// on its way then (passed within held_for before it, at any level) and what
// passed since. Below critical nothing is refused for it; a stale
// measurement is not used; concurrent batches cannot share the last room.
func TestCriticalGoldHeldFor(t *testing.T) {
	ctx := context.Background()
	cfg := createDefaultConfig().(*Config)
	cfg.Critical.HeldFor = map[string]time.Duration{"traces": 2 * time.Second}
	s, err := newShedder(processortest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	watch := &fakeWatch{shed: map[string]int{}, rooms: map[string]float64{"traces": 1000}}
	s.src = watch
	t0 := time.Unix(1000, 0)
	now := t0
	s.now = func() time.Time { return now }
	s.inFlight[sigTraces] = newInFlight(2*time.Second, t0)
	batch := func(tier string, n int) ptrace.Traces {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.tier", tier)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for range n {
			spans.AppendEmpty()
		}
		return td
	}

	// 700 spans pass at ok; below critical the room is never checked.
	_, err = s.processTraces(ctx, batch("gold", 700))
	require.NoError(t, err)
	watch.rooms["traces"], watch.roomsAt = 5, now
	_, err = s.processTraces(ctx, batch("silver", 50))
	require.NoError(t, err, "below critical nothing is refused for the room")
	watch.level, watch.fill = pressure.Critical, 0.9
	now = now.Add(500 * time.Millisecond)
	watch.rooms["traces"], watch.roomsAt = 1050, now // measured now: the 750 are still held
	_, err = s.processTraces(ctx, batch("gold", 300))
	require.NoError(t, err, "750 + 300 fit in a room of 1050")
	_, err = s.processTraces(ctx, batch("gold", 1))
	require.Error(t, err, "1051 would not fit")
	assert.False(t, consumererror.IsPermanent(err))
	assert.Contains(t, err.Error(), "the trace queues have room for 1050 spans and up to 1050 are still on their way to them (critical::held_for 2s): refusing 1 gold spans")
	assert.Equal(t, 1, watch.shed["gold/traces/refused"])

	// Measured 2.1 s after the 750 passed: they reached the queue before
	// the measurement (its room counts them); the 300 had not.
	now = now.Add(1600 * time.Millisecond)
	watch.roomsAt = now
	_, err = s.processTraces(ctx, batch("gold", 750))
	require.NoError(t, err, "300 + 750 fit")
	// The same measurement a second later: the 750 passed since count too.
	now = now.Add(time.Second)
	_, err = s.processTraces(ctx, batch("gold", 1))
	require.Error(t, err, "a measurement taken before the last 750 passed")

	// A measurement older than 30 s is not used (queuewatch's level decays
	// once its reads fail for stale_after).
	now = watch.roomsAt.Add(31 * time.Second)
	_, err = s.processTraces(ctx, batch("gold", 1))
	require.NoError(t, err, "a stale room")

	// Concurrent gold batches share the room: exactly 10 of 20 fit.
	now = now.Add(time.Minute)
	watch.rooms["traces"], watch.roomsAt = 1000, now
	var wg sync.WaitGroup
	var passed atomic.Int64
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.processTraces(ctx, batch("gold", 100)); err == nil {
				passed.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(10), passed.Load())
}

func TestInFlightWindow(t *testing.T) {
	t0 := time.Unix(50, 0)
	f := newInFlight(time.Second, t0)
	f.add(t0, 5)
	f.add(t0.Add(50*time.Millisecond), 7)
	f.add(t0.Add(400*time.Millisecond), 1)
	now := t0.Add(500 * time.Millisecond)
	counted, ok := f.tryAdd(t0, now, 0, 1e9)
	assert.True(t, ok)
	assert.Equal(t, int64(13), counted)
	counted, _ = f.tryAdd(t0.Add(99*time.Millisecond), now, 0, 1e9)
	assert.Equal(t, int64(13), counted, "rounded outwards to whole slots: never under-counts")
	counted, _ = f.tryAdd(t0.Add(100*time.Millisecond), now, 0, 1e9)
	assert.Equal(t, int64(1), counted)
	counted, ok = f.tryAdd(t0, now, 8, 20)
	assert.False(t, ok, "13 + 8 > 20")
	assert.Equal(t, int64(13), counted)
	_, ok = f.tryAdd(t0, now, 7, 20)
	assert.True(t, ok, "13 + 7 = 20")
	counted, _ = f.tryAdd(t0, t0.Add(time.Hour), 0, 1e9)
	assert.Equal(t, int64(0), counted, "older than the ring")
	f.add(t0.Add(time.Hour), 3) // reuses a slot of the ring
	counted, _ = f.tryAdd(t0, t0.Add(time.Hour), 0, 1e9)
	assert.Equal(t, int64(3), counted)
	counted, _ = f.tryAdd(t0.Add(-time.Hour), t0.Add(-time.Minute), 0, 1e9)
	assert.Equal(t, int64(0), counted, "times before the ring's base count nothing and do not panic")
}

func TestTierFromServiceMap(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Services = map[string]string{"checkout": "gold", "search": "bronze"}
	cfg.DefaultTier = "silver"
	s, err := newShedder(processortest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	res := pcommon.NewResource()
	res.Attributes().PutStr("service.name", "checkout")
	assert.Equal(t, gold, s.tier(res))
	res.Attributes().PutStr("service.name", "search")
	assert.Equal(t, bronze, s.tier(res))
	res.Attributes().PutStr("service.tier", "gold")
	assert.Equal(t, gold, s.tier(res), "the attribute wins over the map")
	res.Attributes().PutStr("service.tier", "platinum")
	assert.Equal(t, bronze, s.tier(res), "an unknown tier value falls back to the map")
	res.Attributes().PutStr("service.name", "other")
	assert.Equal(t, silver, s.tier(res), "then to the default tier")
}

// TestEmptiedBatchNotForwarded: a batch whose every item is shed is not
// passed on as an empty batch (processorhelper.ErrSkipProcessingData), and
// the sender still gets success.
func TestEmptiedBatchNotForwarded(t *testing.T) {
	ctx := context.Background()
	p := newPipeline(t, createDefaultConfig().(*Config))
	p.watch.level = pressure.Elevated
	bronze := func(td ptrace.Traces, md pmetric.Metrics, ld plog.Logs) {
		for _, rs := range td.ResourceSpans().All() {
			rs.Resource().Attributes().PutStr("service.tier", "bronze")
		}
		for _, rm := range md.ResourceMetrics().All() {
			rm.Resource().Attributes().PutStr("service.tier", "bronze")
		}
		for _, rl := range ld.ResourceLogs().All() {
			rl.Resource().Attributes().PutStr("service.tier", "bronze")
		}
	}
	td, md, ld := traces(), metrics(), logs()
	bronze(td, md, ld)
	require.NoError(t, p.tp.ConsumeTraces(ctx, td))
	require.NoError(t, p.mp.ConsumeMetrics(ctx, md))
	require.NoError(t, p.lp.ConsumeLogs(ctx, ld))
	assert.Empty(t, p.traces.AllTraces(), "no empty traces batch downstream")
	assert.Empty(t, p.metrics.AllMetrics(), "no empty metrics batch downstream")
	assert.Empty(t, p.logs.AllLogs(), "no empty logs batch downstream")

	// That is processorhelper acting on ErrSkipProcessingData from the
	// processing functions themselves.
	s, err := newShedder(processortest.NewNopSettings(metadata.Type), createDefaultConfig().(*Config))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.shutdown(ctx)) })
	s.src = p.watch
	td, md, ld = traces(), metrics(), logs()
	bronze(td, md, ld)
	_, err = s.processTraces(ctx, td)
	assert.ErrorIs(t, err, processorhelper.ErrSkipProcessingData)
	_, err = s.processMetrics(ctx, md)
	assert.ErrorIs(t, err, processorhelper.ErrSkipProcessingData)
	_, err = s.processLogs(ctx, ld)
	assert.ErrorIs(t, err, processorhelper.ErrSkipProcessingData)
}
