package queuewatchextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/queuewatchextension"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/queuewatchextension/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/internal/pressure"
)

// Metric names the exporters' sending queues report on the collector's own
// Prometheus endpoint.
const (
	queueSizeMetric     = "otelcol_exporter_queue_size"
	queueCapacityMetric = "otelcol_exporter_queue_capacity"
)

type shedKey struct{ tier, signal, reason string }

// watcher is the queuewatch extension.
type watcher struct {
	cfg    *Config
	set    extension.Settings
	logger *zap.Logger
	tb     *metadata.TelemetryBuilder
	client *http.Client

	level atomic.Int32
	fill  atomic.Uint64 // math.Float64bits of the highest fill
	// rooms is, per signal, the least room left in a watched queue and when
	// it was measured: read on every critical gold batch, so not under mu.
	rooms atomic.Pointer[roomSnapshot]

	mu         sync.Mutex
	machine    *levelMachine
	ring       ring
	last       sample
	missing    map[string]bool // watched exporters missing from the last measurement
	measured   bool            // a measurement has succeeded
	lastOK     time.Time       // when the last measurement succeeded
	failing    bool            // the last measurement failed
	host       component.Host
	shed       map[shedKey]int64
	shedPrev   map[shedKey]int64 // shed at the previous measurement, for rates
	shedRate   map[shedKey]float64
	exporterAt map[string]metric.RecordOption

	server *http.Server
	stop   chan struct{}
	done   sync.WaitGroup

	// tickChan lets tests run a measurement of the loop on demand, as
	// tail_sampling's tests drive its ticker: the loop measures, then
	// closes the channel it received. Nil outside tests.
	tickChan chan chan struct{}
}

var _ pressure.Source = (*watcher)(nil)

func newWatcher(set extension.Settings, cfg *Config) (*watcher, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("queuewatch: telemetry: %w", err)
	}
	w := &watcher{
		cfg:        cfg,
		set:        set,
		logger:     set.Logger,
		tb:         tb,
		client:     &http.Client{Timeout: max(cfg.Interval, time.Second)},
		machine:    newLevelMachine(cfg),
		ring:       ring{keep: max(cfg.SLO.Window, cfg.History)},
		missing:    map[string]bool{},
		shed:       map[shedKey]int64{},
		shedPrev:   map[shedKey]int64{},
		shedRate:   map[shedKey]float64{},
		exporterAt: map[string]metric.RecordOption{},
	}
	for _, e := range cfg.Exporters {
		w.exporterAt[e] = metric.WithAttributeSet(attribute.NewSet(attribute.String("exporter", e)))
	}
	return w, nil
}

func (w *watcher) Start(ctx context.Context, host component.Host) error {
	w.host = host
	if w.cfg.Status.NetAddr.Endpoint != "" {
		ln, err := w.cfg.Status.ToListener(ctx)
		if err != nil {
			return fmt.Errorf("queuewatch: status endpoint %s: %w", w.cfg.Status.NetAddr.Endpoint, err)
		}
		srv, err := w.cfg.Status.ToServer(ctx, host.GetExtensions(), w.set.TelemetrySettings, w.statusHandler())
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("queuewatch: status server: %w", err)
		}
		w.server = srv
		w.done.Add(1)
		go func() {
			defer w.done.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				w.logger.Error("queuewatch: status server stopped", zap.Error(err))
			}
		}()
	}
	w.stop = make(chan struct{})
	w.done.Add(1)
	go w.loop(w.stop)
	return nil
}

func (w *watcher) Shutdown(ctx context.Context) error {
	if w.stop != nil {
		close(w.stop)
	}
	var err error
	if w.server != nil {
		err = w.server.Shutdown(ctx)
	}
	w.done.Wait()
	w.stop = nil
	w.tb.Shutdown()
	return err
}

// loop measures until stop is closed. stop is passed in, not read from the
// field, which Shutdown resets: a loop that read the field after the reset
// would block on a nil channel forever (seen as a collector that did not
// stop on SIGTERM).
func (w *watcher) loop(stop <-chan struct{}) {
	defer w.done.Done()
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			w.measure(now)
		case done := <-w.tickChan:
			w.measure(time.Now())
			close(done)
		}
	}
}

// measure reads the queues once and updates the level. While reads fail the
// level holds for stale_after, then falls one step per interval: a level
// that cannot be renewed must not keep refusing data (critical refuses all
// but gold) for as long as the metrics endpoint is slow or down.
func (w *watcher) measure(now time.Time) {
	ctx := context.Background()
	fills, rooms, err := w.scrape(ctx)
	if err != nil {
		w.tb.QueuewatchScrapeFailures.Add(ctx, 1)
		w.mu.Lock()
		first := !w.failing
		w.failing = true
		since := w.lastOK
		if since.IsZero() {
			since = now
			w.lastOK = now
		}
		stale := now.Sub(since) >= w.cfg.StaleAfter
		before := w.machine.level
		if stale && before > pressure.OK {
			w.machine.level, w.machine.since = before-1, now
		}
		level := w.machine.level
		w.mu.Unlock()
		if first {
			w.logger.Warn("queuewatch: cannot read the collector's own metrics; the pressure level holds until stale_after, then falls",
				zap.String("metrics_endpoint", w.cfg.MetricsEndpoint), zap.Duration("stale_after", w.cfg.StaleAfter), zap.Error(err))
			w.reportStatus(componentstatus.NewRecoverableErrorEvent(fmt.Errorf("queuewatch: cannot read %s: %w", w.cfg.MetricsEndpoint, err)))
		}
		if level != before {
			w.tb.QueuewatchStaleDecays.Add(ctx, 1)
			w.level.Store(int32(level))
			w.tb.QueuewatchLevel.Record(ctx, int64(level))
			w.logger.Warn("queuewatch: the measurement is stale; the pressure level falls",
				zap.Stringer("from", before), zap.Stringer("to", level), zap.Duration("since_last_measurement", now.Sub(since)))
		}
		return
	}
	w.mu.Lock()
	recovered := w.failing
	w.failing, w.lastOK = false, now
	w.mu.Unlock()
	if recovered {
		w.logger.Info("queuewatch: reading the collector's own metrics again")
		w.reportStatus(componentstatus.NewEvent(componentstatus.StatusOK))
	}
	w.rooms.Store(&roomSnapshot{rooms: rooms, at: now})
	w.apply(fills, now)
}

func (w *watcher) reportStatus(ev *componentstatus.Event) {
	if w.host != nil {
		componentstatus.ReportStatus(w.host, ev)
	}
}

// apply turns one set of per-exporter fill ratios into the level.
func (w *watcher) apply(fills map[string]float64, now time.Time) {
	ctx := context.Background()
	maxFill := 0.0
	for _, e := range w.cfg.Exporters {
		f, ok := fills[e]
		w.mu.Lock()
		wasMissing, first := w.missing[e], !w.measured
		w.missing[e] = !ok
		w.mu.Unlock()
		if !ok {
			switch {
			case first:
				w.logger.Warn("queuewatch: a watched exporter reports no queue (is it in a pipeline, with sending_queue enabled?)", zap.String("exporter", e))
			case !wasMissing:
				w.logger.Warn("queuewatch: a watched exporter stopped reporting its queue", zap.String("exporter", e))
			}
			continue
		}
		maxFill = math.Max(maxFill, f)
		w.tb.QueuewatchQueueFill.Record(ctx, f, w.exporterAt[e])
	}

	w.mu.Lock()
	w.measured = true
	before := w.machine.level
	level := w.machine.update(maxFill, now)
	s := sample{At: now, Level: level, Max: maxFill, Fill: fills}
	w.ring.add(s)
	w.last = s
	compliance := w.ring.compliance(w.cfg.SLO.Window, w.cfg.SLO.Target, now)
	secs := w.cfg.Interval.Seconds()
	for k, n := range w.shed {
		w.shedRate[k] = float64(n-w.shedPrev[k]) / secs
		w.shedPrev[k] = n
	}
	w.mu.Unlock()

	w.fill.Store(math.Float64bits(maxFill))
	w.level.Store(int32(level))
	w.tb.QueuewatchLevel.Record(ctx, int64(level))
	w.tb.QueuewatchSloCompliance.Record(ctx, compliance)
	if level != before {
		w.logger.Info("queuewatch: pressure level changed",
			zap.Stringer("from", before), zap.Stringer("to", level), zap.Float64("max_fill", maxFill))
	}
}

// scrape reads the watched exporters' fill ratios from the collector's own
// metrics: per exporter, the fullest of its signals' queues; and per signal,
// the room left in its fullest queue.
func (w *watcher) scrape(ctx context.Context) (fills, rooms map[string]float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.cfg.MetricsEndpoint, http.NoBody)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, nil, fmt.Errorf("%s: %s", w.cfg.MetricsEndpoint, resp.Status)
	}
	families, err := parseExposition(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("parsing %s: %w", w.cfg.MetricsEndpoint, err)
	}
	fills, rooms = fillRatios(families, w.cfg.Exporters)
	return fills, rooms, nil
}

// parseExposition parses the Prometheus text format. prometheus/common
// v0.67.5's parser panics on some malformed input (found by FuzzFillRatios:
// a comment line followed by "{}"); a misconfigured metrics_endpoint must
// not take the collector down, so a panic becomes an error.
func parseExposition(r io.Reader) (families map[string]*dto.MetricFamily, err error) {
	defer func() {
		if p := recover(); p != nil {
			families, err = nil, fmt.Errorf("malformed exposition text (parser panic: %v)", p)
		}
	}()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(r)
}

// fillRatios computes size/capacity per (exporter, signal) and keeps the
// fullest signal of each watched exporter; rooms is, per signal (data_type),
// the least capacity-size among the watched exporters' queues of that
// signal, in the queues' own units (items with `sizer: items`).
func fillRatios(families map[string]*dto.MetricFamily, watched []string) (fills, rooms map[string]float64) {
	type queue struct{ exporter, signal string }
	read := func(name string) map[queue]float64 {
		out := map[queue]float64{}
		fam := families[name]
		if fam == nil {
			return out
		}
		for _, m := range fam.GetMetric() {
			var q queue
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "exporter":
					q.exporter = l.GetValue()
				case "data_type":
					q.signal = l.GetValue()
				}
			}
			if !slices.Contains(watched, q.exporter) {
				continue
			}
			switch {
			case m.GetGauge() != nil:
				out[q] = m.GetGauge().GetValue()
			case m.GetUntyped() != nil:
				out[q] = m.GetUntyped().GetValue()
			}
		}
		return out
	}
	sizes, capacities := read(queueSizeMetric), read(queueCapacityMetric)
	fills, rooms = map[string]float64{}, map[string]float64{}
	for q, capacity := range capacities {
		size, ok := sizes[q]
		if !ok || !(capacity > 0) || math.IsInf(capacity, 0) || math.IsNaN(size) || math.IsInf(size, 0) {
			continue // no usable reading: not reporting rather than a made-up fill
		}
		f := math.Max(0, math.Min(size/capacity, 1))
		if cur, ok := fills[q.exporter]; !ok || f > cur {
			fills[q.exporter] = f
		}
		room := math.Max(0, capacity-size)
		if cur, ok := rooms[q.signal]; !ok || room < cur {
			rooms[q.signal] = room
		}
	}
	return fills, rooms
}

// Level implements pressure.Source.
func (w *watcher) Level() pressure.Level { return pressure.Level(w.level.Load()) }

// Fill implements pressure.Source.
func (w *watcher) Fill() float64 { return math.Float64frombits(w.fill.Load()) }

type roomSnapshot struct {
	rooms map[string]float64
	at    time.Time
}

// Room implements pressure.Source.
func (w *watcher) Room(signal string) (float64, time.Time, bool) {
	snap := w.rooms.Load()
	if snap == nil {
		return 0, time.Time{}, false
	}
	r, ok := snap.rooms[signal]
	return r, snap.at, ok
}

// ReportShed implements pressure.Source.
func (w *watcher) ReportShed(tier, signal, reason string, items int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.shed[shedKey{tier, signal, reason}] += int64(items)
}
