package benchstatconnector // import "github.com/otelcol-fabric/otelcol-fabric/connectors/benchstatconnector"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-fabric/otelcol-fabric/connectors/benchstatconnector/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/internal/benchdata"
)

// run is what the state holds of one benchmark run.
type run struct {
	ID      string             `json:"id"`
	Service string             `json:"service"`
	Branch  string             `json:"branch,omitempty"`
	Commit  string             `json:"commit,omitempty"`
	Seq     uint64             `json:"seq"`
	Series  map[string]*series `json:"series"`
	// Baseline is the id of the run (of the same service) this run is
	// compared with, chosen when the run is first seen (Pinned): its later
	// parts and retries are compared with the same run, even after a newer
	// run of the baseline branch arrived. Empty: none.
	Baseline string `json:"baseline,omitempty"`
	Pinned   bool   `json:"pinned,omitempty"`
	// Reported holds, per comparison (baseline run and series) already
	// emitted, the sides that emitted it (sideMetrics | sideLogs): a part
	// sent again (a retry after another branch of the pipeline refused the
	// request) is not reported a second time.
	Reported map[string]uint8 `json:"reported,omitempty"`
}

// The sides of a connector, as bits of run.Reported.
const (
	sideMetrics uint8 = 1 << iota
	sideLogs
)

// series is one benchmark and unit of a run: its samples.
type series struct {
	Unit    string    `json:"unit"`
	Assume  string    `json:"assume,omitempty"`
	Better  string    `json:"better,omitempty"`
	Samples []float64 `json:"samples"`
}

// result is one data point compared with its baseline.
type result struct {
	resource pcommon.Resource // of the run
	dp       pmetric.SummaryDataPoint
	unit     string
	baseline *run
	cmp      comparison
	// runKey and reportKey name the comparison in run.Reported.
	runKey, reportKey string
}

// core is the state of one connector, shared by its metrics and logs
// sides: the recent runs, and per service the runs of the baseline branch.
type core struct {
	cfg    *Config
	set    connector.Settings
	tb     *metadata.TelemetryBuilder
	client storage.Client

	metricsSide bool // a metrics side exists: it counts the verdicts

	mu  sync.Mutex
	seq uint64
	// runs by runKey: two services may both have a run 42 (a CI run
	// number).
	runs map[string]*run
	// baselines[service] is the run ids of that service's last two runs on
	// the baseline branch, oldest first: a run of the branch is compared
	// with the one before it, while it is still arriving (several
	// requests, one run).
	baselines map[string][]string
}

// runKey names a run in the state and in storage: its service and id,
// each escaped so that the "/" between them is unambiguous.
func runKey(service, id string) string {
	return url.PathEscape(service) + "/" + url.PathEscape(id)
}

func (r *run) key() string { return runKey(r.Service, r.ID) }

func newCore(set connector.Settings, cfg *Config) (*core, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("benchstat: telemetry: %w", err)
	}
	return &core{cfg: cfg, set: set, tb: tb, runs: map[string]*run{}, baselines: map[string][]string{}}, nil
}

func (c *core) start(ctx context.Context, host component.Host) error {
	if c.cfg.Storage == nil {
		return nil
	}
	ext, ok := host.GetExtensions()[*c.cfg.Storage]
	if !ok {
		return fmt.Errorf("benchstat: storage: extension %q is not configured (add it to service::extensions)", c.cfg.Storage)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return fmt.Errorf("benchstat: storage: extension %q is not a storage extension", c.cfg.Storage)
	}
	client, err := se.GetClient(ctx, component.KindConnector, c.set.ID, "")
	if err != nil {
		return fmt.Errorf("benchstat: storage: %w", err)
	}
	c.client = client
	return c.load(ctx)
}

func (c *core) hasMetrics() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.metricsSide
}

func (c *core) shutdownTelemetry() error {
	c.tb.Shutdown()
	return nil
}

func (c *core) shutdown(ctx context.Context) error {
	var err error
	if c.client != nil {
		err = c.client.Close(ctx)
	}
	c.tb.Shutdown()
	return err
}

func str(m pcommon.Map, key string) string {
	v, ok := m.Get(key)
	if !ok {
		return ""
	}
	return v.AsString()
}

// seriesKey names a benchmark and unit across runs: the benchmark, its
// GOMAXPROCS and the configuration benchstat splits tables by (package,
// goos, goarch, cpu). User configuration lines (benchmark.config.*) are
// not part of it: a commit: line differs on every run.
func seriesKey(unit string, a pcommon.Map) string {
	var b strings.Builder
	for _, k := range []string{benchdata.AttrPackage, benchdata.AttrGOOS, benchdata.AttrGOARCH, benchdata.AttrCPU, benchdata.AttrName} {
		b.WriteString(str(a, k))
		b.WriteByte(0)
	}
	b.WriteString(str(a, benchdata.AttrProcs))
	b.WriteByte(0)
	b.WriteString(unit)
	return b.String()
}

// observe compares every benchmark data point of md with its baseline and
// records the runs. The metrics and the logs side each call it with the
// same data and get the same results, each comparison once: a comparison
// already reported to a side is left out of what it returns (a retried
// request is the same run again).
func (c *core) observe(ctx context.Context, md pmetric.Metrics, side uint8) []result {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []result
	changed := map[string]bool{}
	observed := map[string]bool{} // the runs of md: never evicted by it
	for _, rm := range md.ResourceMetrics().All() {
		ra := rm.Resource().Attributes()
		runID := str(ra, benchdata.AttrRunID)
		if runID == "" {
			continue // not a benchmark run
		}
		service := str(ra, benchdata.AttrServiceName)
		branch := str(ra, benchdata.AttrBranch)
		key := runKey(service, runID)
		observed[key] = true
		r := c.runs[key]
		isNew := r == nil
		if isNew {
			c.seq++
			r = &run{ID: runID, Service: service, Branch: branch, Commit: str(ra, benchdata.AttrRevision), Seq: c.seq, Series: map[string]*series{}}
			c.runs[key] = r
		}
		if !r.Pinned {
			if b := c.baselineFor(runID, service, str(ra, benchdata.AttrBaselineRunID)); b != nil {
				r.Baseline = b.ID
			}
			r.Pinned = true
			changed[key] = true
		}
		var base *run
		if r.Baseline != "" {
			base = c.runs[runKey(service, r.Baseline)] // nil once evicted
		}
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				unit, ok := m.Metadata().Get(benchdata.MetaUnit)
				if !ok || m.Type() != pmetric.MetricTypeSummary {
					continue
				}
				assume, better := str(m.Metadata(), benchdata.MetaAssume), str(m.Metadata(), benchdata.MetaBetter)
				for _, dp := range m.Summary().DataPoints().All() {
					samples, err := benchdata.Samples(dp)
					if err == nil && !finite(samples) {
						err = errNotFinite
					}
					if err != nil {
						c.tb.ConnectorBenchstatSeriesDropped.Add(ctx, 1)
						continue
					}
					sk := seriesKey(unit.Str(), dp.Attributes())
					res := result{resource: rm.Resource(), dp: dp, unit: unit.Str(), baseline: base}
					if base != nil {
						if old, ok := base.Series[sk]; ok {
							res.cmp = compare(unit.Str(), assume, better, old.Samples, samples, c.cfg.Alpha, c.cfg.Confidence, c.cfg.RegressionThreshold)
						} else {
							res.baseline = nil
						}
					}
					baseID := ""
					if res.baseline != nil {
						baseID = res.baseline.ID
					}
					res.runKey, res.reportKey = key, baseID+"\x00"+sk
					if c.markReported(r, res.reportKey, side) {
						out = append(out, res)
						changed[key] = true
					}
					if _, ok := r.Series[sk]; !ok && len(r.Series) >= c.cfg.MaxSeriesPerRun {
						c.tb.ConnectorBenchstatSeriesDropped.Add(ctx, 1)
						continue
					}
					r.Series[sk] = &series{Unit: unit.Str(), Assume: assume, Better: better, Samples: samples}
					changed[key] = true
				}
			}
		}
		// A run joins its service's baseline list when first seen: a later
		// part or a retry arriving after a newer run of the branch must not
		// make it the newest again.
		if isNew && branch == c.cfg.BaselineBranch && service != "" {
			l := c.baselines[service]
			if !slices.Contains(l, runID) {
				l = append(l, runID)
				if len(l) > 2 {
					l = l[len(l)-2:]
				}
				c.baselines[service] = l
				changed[indexKey] = true
			}
		}
	}
	evicted := c.evict(ctx, observed)
	if c.client != nil && (len(changed) > 0 || len(evicted) > 0) {
		c.persist(ctx, changed, evicted)
	}
	return out
}

// markReported records that side reported the comparison rk of r, and
// says whether it had not yet. The record is bounded like the series: past
// max_series_per_run comparisons a run's are reported without being
// recorded.
func (c *core) markReported(r *run, rk string, side uint8) bool {
	got, ok := r.Reported[rk]
	if got&side != 0 {
		return false
	}
	if !ok && len(r.Reported) >= c.cfg.MaxSeriesPerRun {
		return true
	}
	if r.Reported == nil {
		r.Reported = map[string]uint8{}
	}
	r.Reported[rk] = got | side
	return true
}

// unreport forgets that side reported results: its next consumer refused
// them, so the retry the receiver asks for must emit them again.
func (c *core) unreport(ctx context.Context, results []result, side uint8) {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := map[string]bool{}
	for _, res := range results {
		r := c.runs[res.runKey]
		if r == nil {
			continue
		}
		if got, ok := r.Reported[res.reportKey]; ok && got&side != 0 {
			if got &^= side; got == 0 {
				delete(r.Reported, res.reportKey)
			} else {
				r.Reported[res.reportKey] = got
			}
			changed[res.runKey] = true
		}
	}
	if c.client != nil && len(changed) > 0 {
		c.persist(ctx, changed, nil)
	}
}

// baselineFor picks the run a run is compared with: the one it names, or
// its service's last run on the baseline branch other than itself; both of
// the same service.
func (c *core) baselineFor(runID, service, named string) *run {
	if named != "" {
		if named == runID {
			return nil
		}
		return c.runs[runKey(service, named)]
	}
	l := c.baselines[service]
	for i := len(l) - 1; i >= 0; i-- {
		if l[i] != runID {
			return c.runs[runKey(service, l[i])]
		}
	}
	return nil
}

// evict drops the oldest runs beyond max_runs, the runs that are some
// service's baseline last, never a run in keep (the runs of the request
// being observed: evicting one would lose it, and the other side of the
// connector would create it again and evict it a second time). So the
// state may hold more than max_runs while one request has more runs.
func (c *core) evict(ctx context.Context, keep map[string]bool) []string {
	if len(c.runs) <= c.cfg.MaxRuns {
		return nil
	}
	excess := len(c.runs) - c.cfg.MaxRuns
	isBaseline := map[string]bool{}
	for svc, l := range c.baselines {
		for _, id := range l {
			isBaseline[runKey(svc, id)] = true
		}
	}
	all := make([]*run, 0, len(c.runs))
	for key, r := range c.runs {
		if !keep[key] {
			all = append(all, r)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if isBaseline[all[i].key()] != isBaseline[all[j].key()] {
			return !isBaseline[all[i].key()]
		}
		return all[i].Seq < all[j].Seq
	})
	var evicted []string
	for _, r := range all[:min(excess, len(all))] {
		delete(c.runs, r.key())
		if l, ok := c.baselines[r.Service]; ok {
			kept := l[:0]
			for _, id := range l {
				if id != r.ID {
					kept = append(kept, id)
				}
			}
			if len(kept) == 0 {
				delete(c.baselines, r.Service)
			} else {
				c.baselines[r.Service] = kept
			}
		}
		evicted = append(evicted, r.key())
	}
	c.tb.ConnectorBenchstatRunsEvicted.Add(ctx, int64(len(evicted)))
	return evicted
}

// count records a verdict.
func (c *core) count(ctx context.Context, verdict string) {
	c.tb.ConnectorBenchstatComparisons.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(attribute.String("verdict", verdict))))
}

func (c *core) logStorageError(op string, err error) {
	if err == nil {
		return
	}
	c.tb.ConnectorBenchstatStorageErrors.Add(context.Background(), 1)
	c.set.Logger.Warn("benchstat: storage "+op+" failed; the runs stay in memory (a restart would lose them): check the storage extension's directory",
		zap.String("storage", c.cfg.Storage.String()), zap.Error(err))
}

func procsOf(a pcommon.Map) int64 {
	v, ok := a.Get(benchdata.AttrProcs)
	if !ok {
		return 1
	}
	if v.Type() == pcommon.ValueTypeInt {
		return v.Int()
	}
	n, _ := strconv.ParseInt(v.AsString(), 10, 64)
	return n
}

var errNotFinite = errors.New("a sample is not a finite number")

// finite: benchmath's tests and benchunit's scaling assume finite values
// (the gobench receiver rejects others; a data point from elsewhere may
// hold them).
func finite(vals []float64) bool {
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
