package profilelinkexporter // import "github.com/otelcol-fabric/otelcol-fabric/exporters/profilelinkexporter"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror/xconsumererror"
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

// maxLabelValueLength is Pyroscope's default limit on a label value
// (validation.max-label-value-length); longer values are not sent.
const maxLabelValueLength = 2048

// relinkInterval paces a waiting push: it looks for its spans again at most
// this often, however often span batches arrive.
const relinkInterval = 50 * time.Millisecond

// linker is the profilelink exporter: one instance serves the traces
// pipeline (building the span index) and the profiles pipeline (joining and
// pushing to Pyroscope, behind the exporter helper's queue and retries).
type linker struct {
	cfg    *Config
	set    exporter.Settings
	logger *zap.Logger
	tb     *metadata.TelemetryBuilder
	index  *spanIndex
	pusher *pusher
	now    func() time.Time

	// waiting counts pushes waiting for their spans.
	waiting atomic.Int64
	// stop is closed by Shutdown: waiting pushes go out with what they have.
	stop     chan struct{}
	stopOnce sync.Once
	// sending is the context of every push; abort cancels it when a
	// shutdown's deadline has passed, so that a push to a Pyroscope that
	// does not answer does not hold the collector's stop (the profile stays
	// in a persistent queue for the next start).
	sending context.Context
	abort   context.CancelFunc

	droppedRejected metric.AddOption
}

// series is one profile on its way to Pyroscope.
type series struct {
	labels []*typesv1.LabelPair
	prof   *profile.Profile
	end    time.Time
	// src is the OTLP profile it came from, to retry it alone.
	rp, sp, p int
	// unlinked are the samples that name a span whose local root is not
	// known yet.
	unlinked []*profile.Sample
	// linked and lost count the samples labelled with their root and those
	// that go out without it; they are recorded once the push succeeds, so
	// a retried push does not count twice.
	linked, lost int64
}

func newLinker(set exporter.Settings, cfg *Config) (*linker, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("profilelink: telemetry: %w", err)
	}
	sending, abort := context.WithCancel(context.Background())
	return &linker{
		sending:         sending,
		abort:           abort,
		cfg:             cfg,
		set:             set,
		logger:          set.Logger,
		tb:              tb,
		index:           newSpanIndex(cfg.Index.MaxSpans, cfg.Index.TTL),
		now:             time.Now,
		stop:            make(chan struct{}),
		droppedRejected: metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "rejected"))),
	}, nil
}

func (l *linker) Start(ctx context.Context, host component.Host) error {
	client, err := l.cfg.ToClient(ctx, host.GetExtensions(), l.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("profilelink: http client: %w", err)
	}
	l.pusher = newPusher(client, l.cfg)
	return nil
}

func (l *linker) Shutdown(context.Context) error {
	l.stopWaiting()
	l.abort() // the helper has drained its queue, or given up waiting
	l.tb.Shutdown()
	return nil
}

// stopWaiting makes waiting pushes go out with what they have linked.
func (l *linker) stopWaiting() {
	l.stopOnce.Do(func() { close(l.stop) })
}

// consumeTraces indexes spans and wakes the pushes waiting for them.
func (l *linker) consumeTraces(ctx context.Context, td ptrace.Traces) error {
	now := l.now().UnixNano()
	l.index.add(td, now)
	if l.index.sweepDue(now) {
		l.index.sweep(now)
	}
	l.tb.ExporterProfilelinkSpansIndexed.Record(ctx, int64(l.index.len()))
	return nil
}

// pushProfiles is the exporter helper's push function: it converts each
// profile to pprof with its series labels, labels the samples with their
// local root span (waiting up to link_wait after the profile's end for
// spans still on their way), and pushes each profile as its own request:
// Pyroscope stores every valid series of a request even when it refuses
// another, so one request per series is what makes a retry exact. Profiles
// that failed for a reason that can pass are returned for the exporter
// helper to retry (and only they); those Pyroscope refused for good are
// dropped and counted.
func (l *linker) pushProfiles(ctx context.Context, pd pprofile.Profiles) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.sending, cancel)()
	batch := l.convert(pd)
	if len(batch) == 0 {
		return nil
	}
	if err := l.linkAll(ctx, batch); err != nil {
		return err
	}
	var retry []*series
	var retryErr, rejectErr error
	rejected := 0
	for _, s := range batch {
		if retryErr != nil {
			retry = append(retry, s) // Pyroscope cannot take them now: do not try each
			continue
		}
		l.sanitizeSampleLabels(s)
		var buf bytes.Buffer
		if err := s.prof.Write(&buf); err != nil {
			l.logger.Warn("profilelink: cannot encode a profile; dropping it", zap.Error(err))
			continue
		}
		req := &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
			Labels:  s.labels,
			Samples: []*pushv1.RawSample{{RawProfile: buf.Bytes()}},
		}}}
		err := l.pusher.push(ctx, req)
		switch {
		case err == nil:
			if s.linked > 0 {
				l.tb.ExporterProfilelinkSamplesLinked.Add(ctx, s.linked)
			}
			if s.lost > 0 {
				l.tb.ExporterProfilelinkSamplesUnlinked.Add(ctx, s.lost)
			}
		case errors.Is(err, errRejected):
			rejected++
			rejectErr = err
		default:
			retry = append(retry, s)
			retryErr = err
		}
	}
	if rejected > 0 {
		l.logger.Warn("profilelink: Pyroscope rejected profiles; dropping them (fix the cause named here, nothing will retry them)",
			zap.Int("profiles", rejected), zap.Error(rejectErr))
		l.tb.ExporterProfilelinkProfilesDropped.Add(ctx, int64(rejected), l.droppedRejected)
	}
	switch {
	case len(retry) > 0:
		return xconsumererror.NewProfiles(retryErr, subset(pd, retry))
	case rejected > 0:
		return rejectErr // permanent
	}
	return nil
}

// subset is a copy of pd with only the profiles of the given series.
func subset(pd pprofile.Profiles, keep []*series) pprofile.Profiles {
	out := pprofile.NewProfiles()
	pd.Dictionary().CopyTo(out.Dictionary())
	type scopeKey struct{ rp, sp int }
	rps := map[int]pprofile.ResourceProfiles{}
	sps := map[scopeKey]pprofile.ScopeProfiles{}
	for _, s := range keep {
		srcRP := pd.ResourceProfiles().At(s.rp)
		rp, ok := rps[s.rp]
		if !ok {
			rp = out.ResourceProfiles().AppendEmpty()
			srcRP.Resource().CopyTo(rp.Resource())
			rp.SetSchemaUrl(srcRP.SchemaUrl())
			rps[s.rp] = rp
		}
		srcSP := srcRP.ScopeProfiles().At(s.sp)
		sp, ok := sps[scopeKey{s.rp, s.sp}]
		if !ok {
			sp = rp.ScopeProfiles().AppendEmpty()
			srcSP.Scope().CopyTo(sp.Scope())
			sp.SetSchemaUrl(srcSP.SchemaUrl())
			sps[scopeKey{s.rp, s.sp}] = sp
		}
		srcSP.Profiles().At(s.p).CopyTo(sp.Profiles().AppendEmpty())
	}
	return out
}

// convert turns every profile of pd into a series. A profile that cannot
// be converted is logged and skipped: it will never convert.
func (l *linker) convert(pd pprofile.Profiles) []*series {
	var out []*series
	dict := pd.Dictionary()
	for rpi, rp := range pd.ResourceProfiles().All() {
		base := l.resourceLabels(rp.Resource())
		for spi, sp := range rp.ScopeProfiles().All() {
			for pi, p := range sp.Profiles().All() {
				prof, err := pprofconv.ToPprof(dict, p)
				if err != nil {
					l.logger.Warn("profilelink: dropping a malformed profile", zap.Error(err))
					continue
				}
				if len(prof.Sample) == 0 {
					continue // nothing to store (a sample type no sample had a value for)
				}
				if prof.TimeNanos == 0 {
					prof.TimeNanos = l.now().UnixNano()
				}
				name := labelValue(profileAttr(dict, p, pprofconv.AttrProfileName))
				if name == "" {
					// Falls back to the sample type, which the sender chose.
					name = labelValue(pprofconv.ProfileName(prof, nil))
				}
				labels := make([]*typesv1.LabelPair, 0, len(base)+1)
				labels = append(labels, &typesv1.LabelPair{Name: "__name__", Value: name})
				labels = append(labels, base...)
				sort.Slice(labels, func(i, j int) bool { return labels[i].Name < labels[j].Name })
				s := &series{labels: labels, prof: prof, end: time.Unix(0, prof.TimeNanos+prof.DurationNanos), rp: rpi, sp: spi, p: pi}
				for _, smp := range prof.Sample {
					if ids := smp.Label[pprofconv.LabelSpanID]; len(ids) > 0 {
						s.unlinked = append(s.unlinked, smp)
					}
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// resourceLabels are the series labels a resource gives: service_name and
// the configured attributes with a value Pyroscope accepts.
func (l *linker) resourceLabels(res pcommon.Resource) []*typesv1.LabelPair {
	attrs := res.Attributes()
	service := "unknown_service"
	if v, ok := attrs.Get("service.name"); ok && v.Str() != "" {
		service = v.Str()
	}
	labels := []*typesv1.LabelPair{{Name: "service_name", Value: labelValue(service)}}
	for _, key := range l.cfg.Labels {
		v, ok := attrs.Get(key)
		if !ok {
			continue
		}
		value := labelValue(v.AsString())
		if value == "" {
			continue
		}
		labels = append(labels, &typesv1.LabelPair{Name: labelName(key), Value: value})
	}
	return labels
}

// sanitizeSampleLabels keeps the samples' string labels within what
// Pyroscope accepts once it adds them to the series labels (pprofsplit):
// names that are legacy label names once dots become underscores, values
// that are valid UTF-8 of at most maxLabelValueLength bytes, and no more
// names in all than Pyroscope's limit per series (the series labels come
// first; span_id and trace_id are not series labels). What does not fit is
// removed and counted.
func (l *linker) sanitizeSampleLabels(s *series) {
	room := maxSeriesLabels + 2 - len(s.labels)
	var names []string
	for _, smp := range s.prof.Sample {
		for k := range smp.Label {
			if !slices.Contains(names, k) {
				names = append(names, k)
			}
		}
	}
	sort.Strings(names)
	keep := map[string]bool{}
	var removed int64
	for _, k := range names {
		switch {
		case k == pprofconv.LabelSpanID || k == pprofconv.LabelTraceID || k == "profile_id":
			keep[k] = true
		case !legacyLabelName.MatchString(labelName(k)):
			keep[k] = false
		case hasLabel(s.labels, labelName(k)):
			keep[k] = true // Pyroscope keeps the series label, adds no name
		case room <= 0:
			keep[k] = false
		default:
			keep[k] = true
			room--
		}
	}
	for _, smp := range s.prof.Sample {
		for k, vs := range smp.Label {
			if !keep[k] {
				delete(smp.Label, k)
				removed++
				continue
			}
			for i, v := range vs {
				vs[i] = labelValue(v)
			}
		}
	}
	if removed > 0 {
		l.tb.ExporterProfilelinkSampleLabelsRemoved.Add(context.Background(), removed)
	}
}

func hasLabel(ls []*typesv1.LabelPair, name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}

// labelValue makes a value Pyroscope accepts: valid UTF-8, at most
// maxLabelValueLength bytes.
func labelValue(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	if len(v) > maxLabelValueLength {
		v = v[:maxLabelValueLength]
		for !utf8.ValidString(v) {
			v = v[:len(v)-1]
		}
	}
	return v
}

// profileAttr reads a string attribute of an OTLP profile.
func profileAttr(dict pprofile.ProfilesDictionary, p pprofile.Profile, key string) string {
	attrs, strs := dict.AttributeTable(), dict.StringTable()
	for _, ai := range p.AttributeIndices().All() {
		if ai <= 0 || int(ai) >= attrs.Len() {
			continue
		}
		kv := attrs.At(int(ai))
		if ki := kv.KeyStrindex(); ki > 0 && int(ki) < strs.Len() && strs.At(int(ki)) == key {
			return kv.Value().AsString()
		}
	}
	return ""
}

// linkAll links the batch, waiting for spans until link_wait after the
// newest profile's end (a profile replayed from the queue after an outage
// does not wait), until shutdown, or until ctx ends.
func (l *linker) linkAll(ctx context.Context, batch []*series) error {
	var deadline time.Time
	for _, s := range batch {
		if d := s.end.Add(l.cfg.LinkWait); d.After(deadline) {
			deadline = d
		}
	}
	if limit := l.now().Add(l.cfg.LinkWait); deadline.After(limit) {
		deadline = limit // a clock ahead of ours does not make us wait longer
	}
	waiting := false
	defer func() {
		if waiting {
			l.tb.ExporterProfilelinkProfilesWaiting.Record(context.Background(), l.waiting.Add(-1))
		}
	}()
	for {
		changed := l.index.changed()
		if l.link(batch) {
			return nil
		}
		wait := deadline.Sub(l.now())
		if wait <= 0 {
			l.countUnlinked(ctx, batch)
			return nil
		}
		if !waiting {
			waiting = true
			l.tb.ExporterProfilelinkProfilesWaiting.Record(ctx, l.waiting.Add(1))
		}
		timer := time.NewTimer(wait)
		select {
		case <-changed:
		case <-timer.C:
		case <-l.stop:
			timer.Stop()
			l.link(batch)
			l.countUnlinked(ctx, batch)
			return nil
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
		timer.Stop()
		// Span batches can arrive hundreds of times a second: look again
		// at a bounded pace.
		select {
		case <-time.After(relinkInterval):
		case <-l.stop:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// link labels the samples whose span's local root is now known with the
// root's id as span_id (and its name as span_name when configured). It
// reports whether no sample is left waiting.
func (l *linker) link(batch []*series) bool {
	now := l.now().UnixNano()
	complete := true
	for _, s := range batch {
		rest := s.unlinked[:0]
		for _, smp := range s.unlinked {
			var span pcommon.SpanID
			if !pprofconv.DecodeHex(smp.Label[pprofconv.LabelSpanID][0], span[:]) || span.IsEmpty() {
				continue // not a span id: nothing to link, nothing to wait for
			}
			rootID, rootName, ok := l.index.root(span, now)
			if !ok {
				rest = append(rest, smp)
				continue
			}
			smp.Label[pprofconv.LabelSpanID] = []string{rootID.String()}
			if l.cfg.SpanNameLabel {
				smp.Label[pprofconv.LabelSpanName] = []string{labelValue(rootName)}
			}
			s.linked++
		}
		s.unlinked = rest
		complete = complete && len(rest) == 0
	}
	return complete
}

// countUnlinked notes the samples that go out without their root span.
func (l *linker) countUnlinked(_ context.Context, batch []*series) {
	for _, s := range batch {
		s.lost += int64(len(s.unlinked))
		s.unlinked = nil
	}
}
