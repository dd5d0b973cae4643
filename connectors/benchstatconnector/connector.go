package benchstatconnector // import "github.com/otelcol-fabric/otelcol-fabric/connectors/benchstatconnector"

import (
	"context"
	"math"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-fabric/otelcol-fabric/internal/benchdata"
)

const scopeName = "github.com/otelcol-fabric/otelcol-fabric/connectors/benchstatconnector"

// What the connector emits.
const (
	metricDelta  = "gobench.delta"
	metricPValue = "gobench.delta.p_value"
	attrVerdict  = "benchmark.verdict"
	attrDelta    = "benchmark.delta"
	attrRatio    = "benchmark.delta.ratio"
	attrPValue   = "benchmark.p_value"
	eventName    = "benchmark.regression"
)

// side is what the metrics and the logs side of a connector share.
type side struct {
	f   *factory
	sc  *sharedCore
	cfg *Config
}

func (s *side) Start(ctx context.Context, host component.Host) error {
	return s.f.start(ctx, s.sc, host)
}

func (s *side) Shutdown(ctx context.Context) error {
	return s.f.shutdown(ctx, s.sc, s.cfg)
}

func (s *side) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// countVerdicts counts each comparison once: on the metrics side when there
// is one, else on the logs side.
func (s *side) countVerdicts(ctx context.Context, results []result, isMetrics bool) {
	if isMetrics != s.sc.hasMetrics() {
		return
	}
	for _, r := range results {
		if r.baseline == nil {
			s.sc.count(ctx, verdictNoBaseline)
		} else {
			s.sc.count(ctx, r.cmp.verdict)
		}
	}
}

// metricsSide emits the delta of every compared benchmark and unit.
type metricsSide struct {
	side
	next consumer.Metrics
}

func (m *metricsSide) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	results := m.sc.observe(ctx, md, sideMetrics)
	out := deltaMetrics(results, pcommon.NewTimestampFromTime(time.Now()))
	if out.DataPointCount() > 0 {
		if err := m.next.ConsumeMetrics(ctx, out); err != nil {
			m.sc.unreport(ctx, results, sideMetrics)
			return err
		}
	}
	m.countVerdicts(ctx, results, true)
	return nil
}

// logsSide emits a WARN record for every significant regression beyond
// regression_threshold.
type logsSide struct {
	side
	next consumer.Logs
}

func (l *logsSide) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	results := l.sc.observe(ctx, md, sideLogs)
	out := regressionLogs(results, pcommon.NewTimestampFromTime(time.Now()))
	if out.LogRecordCount() > 0 {
		if err := l.next.ConsumeLogs(ctx, out); err != nil {
			l.sc.unreport(ctx, results, sideLogs)
			return err
		}
	}
	l.countVerdicts(ctx, results, false)
	return nil
}

// runResource copies a run's resource and names its baseline.
func runResource(dst pcommon.Resource, r result) {
	r.resource.CopyTo(dst)
	dst.Attributes().PutStr(benchdata.AttrBaselineRunID, r.baseline.ID)
	if r.baseline.Commit != "" {
		dst.Attributes().PutStr(benchdata.AttrBaselineCommit, r.baseline.Commit)
	}
}

// groupByRun keeps the results that have a baseline, grouped by run (in
// order), so each run gets one resource.
func groupByRun(results []result, keep func(result) bool) [][]result {
	var groups [][]result
	at := map[string]int{}
	for _, r := range results {
		if r.baseline == nil || !keep(r) {
			continue
		}
		id := runKey(str(r.resource.Attributes(), benchdata.AttrServiceName), str(r.resource.Attributes(), benchdata.AttrRunID)) + "\x00" + r.baseline.ID
		i, ok := at[id]
		if !ok {
			i = len(groups)
			at[id] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], r)
	}
	return groups
}

func benchmarkAttributes(dst pcommon.Map, r result) {
	r.dp.Attributes().CopyTo(dst)
	dst.PutStr(benchdata.AttrUnit, r.unit)
	dst.PutStr(attrVerdict, r.cmp.verdict)
}

func deltaMetrics(results []result, now pcommon.Timestamp) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for _, group := range groupByRun(results, func(result) bool { return true }) {
		rm := md.ResourceMetrics().AppendEmpty()
		runResource(rm.Resource(), group[0])
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(scopeName)
		delta := sm.Metrics().AppendEmpty()
		delta.SetName(metricDelta)
		delta.SetUnit("1")
		delta.SetDescription("Median of the run over median of its baseline, per benchmark and unit (benchstat's centre); 1 is no change. benchmark.verdict says whether benchstat finds the difference significant.")
		pval := sm.Metrics().AppendEmpty()
		pval.SetName(metricPValue)
		pval.SetDescription("p-value of the Mann-Whitney U test of the run's samples against its baseline's (benchstat's p=).")
		dg, pg := delta.SetEmptyGauge(), pval.SetEmptyGauge()
		for _, r := range group {
			if !math.IsNaN(r.cmp.ratio) && !math.IsInf(r.cmp.ratio, 0) {
				dp := dg.DataPoints().AppendEmpty()
				dp.SetTimestamp(now)
				benchmarkAttributes(dp.Attributes(), r)
				dp.SetDoubleValue(r.cmp.ratio)
			}
			dp := pg.DataPoints().AppendEmpty()
			dp.SetTimestamp(now)
			benchmarkAttributes(dp.Attributes(), r)
			dp.SetDoubleValue(r.cmp.cmp.P)
		}
	}
	return md
}

func regressionLogs(results []result, now pcommon.Timestamp) plog.Logs {
	ld := plog.NewLogs()
	for _, group := range groupByRun(results, func(r result) bool { return r.cmp.verdict == verdictRegression }) {
		rl := ld.ResourceLogs().AppendEmpty()
		runResource(rl.Resource(), group[0])
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(scopeName)
		for _, r := range group {
			lr := sl.LogRecords().AppendEmpty()
			lr.SetTimestamp(now)
			lr.SetObservedTimestamp(now)
			lr.SetSeverityNumber(plog.SeverityNumberWarn)
			lr.SetSeverityText(severityRegressionText)
			lr.SetEventName(eventName)
			name := displayName(str(r.dp.Attributes(), benchdata.AttrName), procsOf(r.dp.Attributes()))
			lr.Body().SetStr(name + " " + r.unit + "  " + r.cmp.line)
			a := lr.Attributes()
			benchmarkAttributes(a, r)
			a.PutStr(attrDelta, r.cmp.delta)
			if !math.IsInf(r.cmp.ratio, 0) && !math.IsNaN(r.cmp.ratio) {
				a.PutDouble(attrRatio, r.cmp.ratio) // none from a zero baseline
			}
			a.PutDouble(attrPValue, r.cmp.cmp.P)
			a.PutStr(benchdata.AttrBaselineRunID, r.baseline.ID)
			if r.baseline.Commit != "" {
				a.PutStr(benchdata.AttrBaselineCommit, r.baseline.Commit)
			}
		}
	}
	return ld
}
