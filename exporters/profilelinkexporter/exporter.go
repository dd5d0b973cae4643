package profilelinkexporter // import "github.com/otelcol-fabric/otelcol-fabric/exporters/profilelinkexporter"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-fabric/otelcol-fabric/exporters/profilelinkexporter/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/internal/pprofconv"
)

// Labels the exporter writes on linked samples: Pyroscope's span-profile
// convention (span_id, span_name: the local root span, which Grafana's
// traces-to-profiles view queries) and root_span_id.
const labelRootSpanID = "root_span_id"

// linker is the profilelink exporter: one instance serves the traces
// pipeline (building the span index) and the profiles pipeline (joining and
// pushing to Pyroscope).
type linker struct {
	cfg    *Config
	set    exporter.Settings
	logger *zap.Logger
	tb     *metadata.TelemetryBuilder
	index  *spanIndex
	pusher *pusher
	spool  *spool
	now    func() time.Time

	mu      sync.Mutex
	pending []*pendingBatch
	wake    chan struct{}

	stop chan struct{}
	done sync.WaitGroup

	droppedSpoolFull metric.AddOption
	droppedRejected  metric.AddOption
}

// pendingBatch is a batch of converted profiles waiting for spans.
type pendingBatch struct {
	jobs     []*linkJob
	deadline time.Time
}

// linkJob is one profile on its way to Pyroscope.
type linkJob struct {
	job
	prof *profile.Profile
}

func newLinker(set exporter.Settings, cfg *Config) (*linker, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("profilelink: telemetry: %w", err)
	}
	return &linker{
		cfg:              cfg,
		set:              set,
		logger:           set.Logger,
		tb:               tb,
		index:            newSpanIndex(cfg.Index.MaxSpans, cfg.Index.TTL),
		now:              time.Now,
		wake:             make(chan struct{}, 1),
		droppedSpoolFull: metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "spool_full"))),
		droppedRejected:  metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "rejected"))),
	}, nil
}

func (l *linker) Start(ctx context.Context, host component.Host) error {
	client, err := l.cfg.ToClient(ctx, host.GetExtensions(), l.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("profilelink: http client: %w", err)
	}
	l.pusher = &pusher{client: client, endpoint: l.cfg.Endpoint, tenant: l.cfg.TenantID,
		user: l.cfg.BasicAuth.Username, password: string(l.cfg.BasicAuth.Password), bearer: string(l.cfg.BearerToken)}
	if l.cfg.Spool.Directory != "" {
		if l.spool, err = openSpool(l.cfg.Spool.Directory, l.cfg.Spool.MaxBytes); err != nil {
			return fmt.Errorf("profilelink: %w", err)
		}
	}
	l.stop = make(chan struct{})
	l.done.Add(1)
	go l.loop(l.stop)
	return nil
}

func (l *linker) Shutdown(context.Context) error {
	if l.stop != nil {
		close(l.stop)
		l.done.Wait()
		l.stop = nil
		// What still waits for spans goes out unlinked now (or to the spool).
		l.mu.Lock()
		batches := l.pending
		l.pending = nil
		l.mu.Unlock()
		for _, b := range batches {
			l.finish(context.Background(), b)
		}
	}
	l.tb.Shutdown()
	return nil
}

// loop retries pending joins, sends what is due, and replays the spool.
func (l *linker) loop(stop <-chan struct{}) {
	defer l.done.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	replay := time.NewTicker(max(l.cfg.Spool.RetryInterval, 100*time.Millisecond))
	defer replay.Stop()
	sweep := time.NewTicker(max(l.cfg.Index.TTL/4, time.Second))
	defer sweep.Stop()
	for {
		select {
		case <-stop:
			return
		case <-l.wake:
			l.retryPending(false)
		case <-tick.C:
			l.retryPending(false)
		case <-replay.C:
			l.replay(context.Background())
		case <-sweep.C:
			l.index.sweep(l.now().UnixNano())
			l.tb.ExporterProfilelinkSpansIndexed.Record(context.Background(), int64(l.index.len()))
		}
	}
}

// consumeTraces indexes spans, then lets waiting profiles try again.
func (l *linker) consumeTraces(ctx context.Context, td ptrace.Traces) error {
	l.index.add(td, l.now().UnixNano())
	l.tb.ExporterProfilelinkSpansIndexed.Record(ctx, int64(l.index.len()))
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

// consumeProfiles converts each profile to pprof with its resource's labels,
// links what it can, and sends it or holds it for the spans it names.
func (l *linker) consumeProfiles(ctx context.Context, pd pprofile.Profiles) error {
	var jobs []*linkJob
	dict := pd.Dictionary()
	for _, rp := range pd.ResourceProfiles().All() {
		name := l.ingestName(rp.Resource())
		for _, sp := range rp.ScopeProfiles().All() {
			for _, p := range sp.Profiles().All() {
				prof, err := pprofconv.ToPprof(dict, p)
				if err != nil {
					l.logger.Warn("profilelink: dropping a malformed profile", zap.Error(err))
					continue
				}
				from := int64(p.Time())
				if from == 0 {
					from = l.now().UnixNano()
				}
				jobs = append(jobs, &linkJob{job: job{Name: name, From: from, Until: from + int64(p.DurationNano())}, prof: prof})
			}
		}
	}
	b := &pendingBatch{jobs: jobs, deadline: l.now().Add(l.cfg.LinkWait)}
	if l.link(b, false) || l.cfg.LinkWait == 0 {
		l.finish(ctx, b)
		return nil
	}
	l.mu.Lock()
	l.pending = append(l.pending, b)
	n := len(l.pending)
	l.mu.Unlock()
	l.tb.ExporterProfilelinkProfilesWaiting.Record(ctx, int64(n))
	return nil
}

// link labels every sample whose span's local root is known. It reports
// whether no sample is left waiting; with final, it counts those that are.
func (l *linker) link(b *pendingBatch, final bool) bool {
	now := l.now().UnixNano()
	complete := true
	var linked, unlinked int64
	for _, j := range b.jobs {
		for _, s := range j.prof.Sample {
			ids := s.Label[pprofconv.LabelSpanID]
			if len(ids) == 0 || len(s.Label[labelRootSpanID]) > 0 {
				continue
			}
			var span pcommon.SpanID
			if !pprofconv.DecodeHex(ids[0], span[:]) || span.IsEmpty() {
				continue
			}
			rootID, rootName, ok := l.index.root(span, now)
			if !ok {
				complete = false
				if final {
					unlinked++
				}
				continue
			}
			root := rootID.String()
			s.Label[pprofconv.LabelSpanID] = []string{root}
			s.Label[pprofconv.LabelSpanName] = []string{rootName}
			s.Label[labelRootSpanID] = []string{root}
			linked++
		}
	}
	ctx := context.Background()
	if linked > 0 {
		l.tb.ExporterProfilelinkSamplesLinked.Add(ctx, linked)
	}
	if unlinked > 0 {
		l.tb.ExporterProfilelinkSamplesUnlinked.Add(ctx, unlinked)
	}
	return complete
}

// retryPending links waiting batches again and sends those that are
// complete or due.
func (l *linker) retryPending(final bool) {
	now := l.now()
	l.mu.Lock()
	var keep, due []*pendingBatch
	for _, b := range l.pending {
		if l.link(b, false) || final || !now.Before(b.deadline) {
			due = append(due, b)
		} else {
			keep = append(keep, b)
		}
	}
	l.pending = keep
	n := len(keep)
	l.mu.Unlock()
	l.tb.ExporterProfilelinkProfilesWaiting.Record(context.Background(), int64(n))
	for _, b := range due {
		l.finish(context.Background(), b)
	}
}

// finish counts what could not be linked and delivers the batch.
func (l *linker) finish(ctx context.Context, b *pendingBatch) {
	l.link(b, true)
	for _, j := range b.jobs {
		var buf bytes.Buffer
		if err := j.prof.Write(&buf); err != nil {
			l.logger.Warn("profilelink: cannot encode a profile", zap.Error(err))
			continue
		}
		j.pprof = buf.Bytes()
		l.deliver(ctx, &j.job)
	}
}

// deliver sends a job, or spools it when Pyroscope cannot take it (and
// while older jobs are still spooled, so that order is kept).
func (l *linker) deliver(ctx context.Context, j *job) {
	if l.spool != nil && !l.spool.empty() {
		l.toSpool(ctx, j)
		return
	}
	err := l.pusher.push(ctx, j)
	switch {
	case err == nil:
	case errors.Is(err, errRejected):
		l.logger.Warn("profilelink: Pyroscope rejected a profile; dropping it", zap.String("application", j.Name), zap.Error(err))
		l.tb.ExporterProfilelinkProfilesDropped.Add(ctx, 1, l.droppedRejected)
	case l.spool != nil:
		l.logger.Info("profilelink: Pyroscope is unreachable; spooling profiles to disk until it is back", zap.Error(err))
		l.toSpool(ctx, j)
	default:
		l.logger.Warn("profilelink: Pyroscope is unreachable and no spool is configured; dropping a profile", zap.Error(err))
		l.tb.ExporterProfilelinkProfilesDropped.Add(ctx, 1, l.droppedSpoolFull)
	}
}

func (l *linker) toSpool(ctx context.Context, j *job) {
	dropped, err := l.spool.write(j)
	if dropped > 0 {
		l.tb.ExporterProfilelinkProfilesDropped.Add(ctx, int64(dropped), l.droppedSpoolFull)
	}
	if err != nil {
		l.logger.Error("profilelink: cannot write to the spool; dropping a profile", zap.Error(err))
		l.tb.ExporterProfilelinkProfilesDropped.Add(ctx, 1, l.droppedSpoolFull)
		return
	}
	l.tb.ExporterProfilelinkProfilesSpooled.Add(ctx, 1)
}

// replay sends spooled jobs, oldest first, until one fails.
func (l *linker) replay(ctx context.Context) {
	if l.spool == nil {
		return
	}
	for {
		j, name, err := l.spool.oldest()
		if j == nil && name == "" {
			return
		}
		if err != nil {
			l.logger.Error("profilelink: unreadable spool file; removing it", zap.String("file", name), zap.Error(err))
			l.spool.remove(name)
			continue
		}
		err = l.pusher.push(ctx, j)
		switch {
		case err == nil:
			l.spool.remove(name)
			l.tb.ExporterProfilelinkProfilesReplayed.Add(ctx, 1)
		case errors.Is(err, errRejected):
			l.spool.remove(name)
			l.tb.ExporterProfilelinkProfilesDropped.Add(ctx, 1, l.droppedRejected)
		default:
			return // still down: keep the order, try later
		}
	}
}

// ingestName is Pyroscope's application key for a resource:
// service.name{label=value,...} with the configured resource attributes.
func (l *linker) ingestName(res pcommon.Resource) string {
	attrs := res.Attributes()
	app := "unknown_service"
	if v, ok := attrs.Get("service.name"); ok && v.Str() != "" {
		app = sanitize(v.Str())
	}
	var b strings.Builder
	b.WriteString(app)
	b.WriteByte('{')
	first := true
	for _, key := range l.cfg.Labels {
		v, ok := attrs.Get(key)
		if !ok || v.AsString() == "" {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(strings.ReplaceAll(sanitize(key), ".", "_"))
		b.WriteByte('=')
		b.WriteString(sanitize(v.AsString()))
	}
	b.WriteByte('}')
	return b.String()
}

// sanitize keeps a name or value from breaking the application key syntax.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '{', '}', ',', '=', '"', '\n':
			return '_'
		}
		return r
	}, s)
}
