package versionstampprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/versionstampprocessor"

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-fabric/otelcol-fabric/internal/buildinfo"
	"github.com/otelcol-fabric/otelcol-fabric/internal/sharedprocessor"
	"github.com/otelcol-fabric/otelcol-fabric/processors/versionstampprocessor/internal/metadata"
)

// origin is where a value came from, as reported in telemetry.
type origin int

const (
	originExisting origin = iota
	originResource
	originKubernetes
	originCatalog
	originStatic
	originUnknown
	numOrigins
)

var originNames = [numOrigins]string{"existing", "resource", "kubernetes", "catalog", "static", "unknown"}

func originOf(source string) origin {
	switch source {
	case sourceResource:
		return originResource
	case sourceKubernetes:
		return originKubernetes
	case sourceCatalog:
		return originCatalog
	default:
		return originStatic
	}
}

// stamper holds everything the per-resource path needs, resolved from the
// config once at creation.
type stamper struct {
	logger   *zap.Logger
	keys     [numFields]string
	rawKeys  [numFields]string
	sources  []origin
	aliases  [numFields][]string
	aliasSet map[string]struct{}
	// aliasFilter[len(key)%64] has bit key[0]%64 set for every alias, so that
	// most attribute keys are ruled out without hashing them.
	aliasFilter [64]uint64
	keepAliases bool
	override    bool
	unknown     string
	static      [numFields]string
	k8s         KubernetesSource
	envKeys     []string

	collectorStamp bool
	collectorKeys  [2]string
	collectorVals  [2]string

	watcher   *catalogWatcher
	telemetry *metadata.TelemetryBuilder
	boundMu   sync.Mutex
	bound     []*metadata.TelemetryBuilder // one per pipeline (Bind)
	// Attribute sets for telemetry, built once, as ready option slices: a
	// single option passed to the variadic Add would allocate its slice on
	// every call, once per field of every batch.
	valueAttrs   [numFields][numOrigins][]metric.AddOption
	missingAttrs [numFields][]metric.AddOption
	loadAttrs    [2]metric.AddOption
}

// counts are accumulated per batch and recorded once, off the per-item path.
type counts struct {
	values  [numFields][numOrigins]int64
	invalid [numFields][numOrigins]int64
	missing [numFields]int64
}

func newStamper(set processor.Settings, cfg *Config) (*stamper, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("versionstamp: telemetry: %w", err)
	}
	s := &stamper{
		logger:      set.Logger,
		keys:        [numFields]string{cfg.Keys.Version, cfg.Keys.Commit, cfg.Keys.BuildTime, cfg.Keys.Environment},
		aliases:     [numFields][]string{cfg.Aliases.Version, cfg.Aliases.Commit, cfg.Aliases.BuildTime, cfg.Aliases.Environment},
		aliasSet:    map[string]struct{}{},
		keepAliases: cfg.KeepAliases,
		override:    cfg.Override,
		unknown:     cfg.UnknownValue,
		k8s:         cfg.Kubernetes,
		envKeys:     cfg.Catalog.EnvironmentKeys,
		telemetry:   tb,
	}
	for f := range fields {
		s.rawKeys[f] = s.keys[f] + cfg.RawSuffix
		for _, a := range s.aliases[f] {
			s.aliasSet[a] = struct{}{}
			s.aliasFilter[len(a)%64] |= 1 << (a[0] % 64)
		}
		for o := range numOrigins {
			s.valueAttrs[f][o] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
				attribute.String("field", field(f).name()), attribute.String("source", originNames[o])))}
		}
		s.missingAttrs[f] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("field", field(f).name())))}
	}
	s.loadAttrs = [2]metric.AddOption{
		metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "failure"))),
		metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "success"))),
	}
	for f, raw := range [numFields]string{cfg.Static.Version, cfg.Static.Commit, cfg.Static.BuildTime, cfg.Static.Environment} {
		if raw != "" {
			v, err := field(f).normalize(raw) // checked by Validate
			if err != nil {
				return nil, fmt.Errorf("static::%s: %w", field(f).name(), err)
			}
			s.static[f] = v
		}
	}
	for _, src := range cfg.Sources {
		s.sources = append(s.sources, originOf(src))
	}
	if cfg.Catalog.Path != "" {
		s.watcher = newCatalogWatcher(cfg.Catalog.Path, cfg.Catalog.ReloadInterval, set.Logger, s.recordLoad)
	}
	if cfg.Collector.Enabled {
		s.collectorStamp = true
		s.collectorKeys = [2]string{cfg.Collector.VersionKey, cfg.Collector.CommitKey}
		s.collectorVals = [2]string{buildinfo.Version, buildinfo.Commit}
	}
	return s, nil
}

func (s *stamper) Start(context.Context, component.Host) error {
	if s.watcher != nil {
		return s.watcher.start()
	}
	return nil
}

func (s *stamper) Shutdown(ctx context.Context) error {
	if s.watcher != nil {
		if err := s.watcher.shutdown(ctx); err != nil {
			return err
		}
	}
	s.telemetry.Shutdown()
	s.boundMu.Lock()
	for _, tb := range s.bound {
		tb.Shutdown()
	}
	s.bound = nil
	s.boundMu.Unlock()
	return nil
}

func (s *stamper) recordLoad(ok bool, entries int) {
	outcome := 0
	if ok {
		outcome = 1
	}
	s.telemetry.ProcessorVersionstampCatalogLoads.Add(context.Background(), 1, s.loadAttrs[outcome])
	s.telemetry.ProcessorVersionstampCatalogEntries.Record(context.Background(), int64(entries))
}

// Bind gives a pipeline its own telemetry, built from its settings, so that
// its counters carry its pipeline and signal (sharedprocessor.Binder).
// Catalog loads stay on the instance's telemetry: they are not a
// pipeline's.
func (s *stamper) Bind(set processor.Settings) (any, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("versionstamp: telemetry: %w", err)
	}
	s.boundMu.Lock()
	defer s.boundMu.Unlock()
	s.bound = append(s.bound, tb)
	return tb, nil
}

func (s *stamper) record(ctx context.Context, c *counts) {
	tb := s.telemetry
	if bound, ok := sharedprocessor.Bound(ctx).(*metadata.TelemetryBuilder); ok {
		tb = bound
	}
	for f := range numFields {
		for o := range numOrigins {
			if n := c.values[f][o]; n > 0 {
				tb.ProcessorVersionstampValues.Add(ctx, n, s.valueAttrs[f][o]...)
			}
			if n := c.invalid[f][o]; n > 0 {
				tb.ProcessorVersionstampValuesInvalid.Add(ctx, n, s.valueAttrs[f][o]...)
			}
		}
		if n := c.missing[f]; n > 0 {
			tb.ProcessorVersionstampValuesMissing.Add(ctx, n, s.missingAttrs[f]...)
		}
	}
}

func (s *stamper) ProcessTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	var c counts
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		s.stamp(rss.At(i).Resource(), &c)
	}
	s.record(ctx, &c)
	return td, nil
}

func (s *stamper) ProcessMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	var c counts
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		s.stamp(rms.At(i).Resource(), &c)
	}
	s.record(ctx, &c)
	return md, nil
}

func (s *stamper) ProcessLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	var c counts
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		s.stamp(rls.At(i).Resource(), &c)
	}
	s.record(ctx, &c)
	return ld, nil
}

func (s *stamper) ProcessProfiles(ctx context.Context, pd pprofile.Profiles) (pprofile.Profiles, error) {
	var c counts
	rps := pd.ResourceProfiles()
	for i := 0; i < rps.Len(); i++ {
		s.stamp(rps.At(i).Resource(), &c)
	}
	s.record(ctx, &c)
	return pd, nil
}

// stamp makes one resource carry the four facts.
func (s *stamper) stamp(res pcommon.Resource, c *counts) {
	attrs := res.Attributes()
	if !s.override && s.alreadyStamped(attrs) {
		for f := range numFields {
			c.values[f][originExisting]++
		}
		s.stampCollector(attrs)
		return
	}
	var hit catalogHit
	for _, f := range stampOrder {
		s.stampField(attrs, f, c, &hit)
	}
	if !s.keepAliases && len(s.aliasSet) > 0 {
		attrs.RemoveIf(func(k string, _ pcommon.Value) bool { return s.isAlias(k) })
	}
	s.stampCollector(attrs)
}

// alreadyStamped is the fast path: every output key holds a valid value in its
// normalised form, and no alias is left to remove.
func (s *stamper) alreadyStamped(attrs pcommon.Map) bool {
	for f := range fields {
		v, ok := attrs.Get(s.keys[f])
		if !ok || v.Type() != pcommon.ValueTypeStr {
			return false
		}
		str := v.Str()
		// The unknown marker passes as an environment: a later pass may fill it.
		if str == s.unknown {
			return false
		}
		if norm, err := field(f).normalize(str); err != nil || norm != str {
			return false
		}
	}
	if s.keepAliases || len(s.aliasSet) == 0 {
		return true
	}
	clean := true
	attrs.Range(func(k string, _ pcommon.Value) bool {
		clean = !s.isAlias(k)
		return clean
	})
	return clean
}

func (s *stamper) isAlias(k string) bool {
	if k == "" || s.aliasFilter[len(k)%64]&(1<<(k[0]%64)) == 0 {
		return false
	}
	_, ok := s.aliasSet[k]
	return ok
}

// catalogHit caches one resource's catalog lookup across its fields.
type catalogHit struct {
	done  bool
	entry *[numFields]string
}

func (s *stamper) stampField(attrs pcommon.Map, f field, c *counts, hit *catalogHit) {
	key := s.keys[f]
	// What the data carries under the output key.
	existing := ""
	if v, ok := attrs.Get(key); ok {
		raw := v.AsString()
		switch norm, err := f.normalize(raw); {
		case raw == s.unknown || blank(f, raw):
			// a marker left by an earlier pass, or nothing: absent
		case err != nil:
			s.keepRaw(attrs, f, raw)
			c.invalid[f][originExisting]++
			attrs.Remove(key)
		case !s.override:
			if norm != raw || v.Type() != pcommon.ValueTypeStr {
				attrs.PutStr(key, norm)
			}
			c.values[f][originExisting]++
			return
		default:
			existing = norm
		}
	}

	for _, src := range s.sources {
		value := ""
		switch src {
		case originResource:
			value = existing
			if value == "" {
				value = s.fromAliases(attrs, f, c)
			}
		case originKubernetes:
			value = s.fromKubernetes(attrs, f, c)
		case originCatalog:
			value = s.fromCatalog(attrs, f, hit)
		case originStatic:
			value = s.static[f]
		}
		if value != "" {
			attrs.PutStr(key, value)
			if src == originResource && value == existing {
				c.values[f][originExisting]++
			} else {
				c.values[f][src]++
			}
			return
		}
	}

	switch {
	case existing != "":
		// override, but no source had anything: keep what the data carried
		attrs.PutStr(key, existing)
		c.values[f][originExisting]++
	case s.unknown != "":
		attrs.PutStr(key, s.unknown)
		c.values[f][originUnknown]++
		c.missing[f]++
	default:
		attrs.Remove(key)
		c.missing[f]++
	}
}

// keepRaw preserves an invalid value that came with the data under the raw key,
// unless an earlier invalid value is already kept there.
func (s *stamper) keepRaw(attrs pcommon.Map, f field, raw string) {
	if _, exists := attrs.Get(s.rawKeys[f]); !exists {
		attrs.PutStr(s.rawKeys[f], raw)
	}
}

func (s *stamper) fromAliases(attrs pcommon.Map, f field, c *counts) string {
	for _, alias := range s.aliases[f] {
		v, ok := attrs.Get(alias)
		if !ok {
			continue
		}
		raw := v.AsString()
		if blank(f, raw) || raw == s.unknown {
			continue
		}
		norm, err := f.normalize(raw)
		if err != nil {
			s.keepRaw(attrs, f, raw)
			c.invalid[f][originResource]++
			continue
		}
		return norm
	}
	return ""
}

func (s *stamper) fromKubernetes(attrs pcommon.Map, f field, c *counts) string {
	var keys []string
	switch f {
	case fieldVersion:
		keys = s.k8s.VersionKeys
	case fieldCommit:
		keys = s.k8s.RevisionKeys
	case fieldEnvironment:
		keys = s.k8s.EnvironmentKeys
	default:
		keys = s.k8s.CreatedKeys
	}
	for _, k := range keys {
		v, ok := attrs.Get(k)
		if !ok {
			continue
		}
		raw := v.AsString()
		if blank(f, raw) {
			continue
		}
		norm, err := f.normalize(raw)
		if err != nil {
			c.invalid[f][originKubernetes]++
			continue
		}
		return norm
	}
	if f != fieldVersion && f != fieldCommit {
		return ""
	}
	for _, k := range s.k8s.ImageTagKeys {
		if v, ok := attrs.Get(k); ok {
			if tf, value, ok := imageTagFacts(v.AsString()); ok && tf == f {
				return value
			}
		}
	}
	return ""
}

func (s *stamper) fromCatalog(attrs pcommon.Map, f field, hit *catalogHit) string {
	if f == fieldEnvironment {
		// Entries are looked up by environment, they do not supply one; and
		// the lookup waits until the environment is stamped.
		return ""
	}
	if !hit.done {
		hit.done = true
		cat := s.watcher.catalog()
		svc, ok := attrs.Get("service.name")
		if cat == nil || !ok {
			return ""
		}
		env := ""
		for _, k := range s.envKeys {
			if v, ok := attrs.Get(k); ok && v.Str() != "" && v.Str() != s.unknown {
				env = v.Str()
				break
			}
		}
		hit.entry, _ = cat.lookup(svc.Str(), env)
	}
	if hit.entry == nil {
		return ""
	}
	return hit.entry[f]
}

func (s *stamper) stampCollector(attrs pcommon.Map) {
	if !s.collectorStamp {
		return
	}
	attrs.PutStr(s.collectorKeys[0], s.collectorVals[0])
	attrs.PutStr(s.collectorKeys[1], s.collectorVals[1])
}
