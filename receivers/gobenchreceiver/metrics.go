package gobenchreceiver // import "github.com/otelcol-fabric/otelcol-fabric/receivers/gobenchreceiver"

import (
	"math"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Names of what the receiver writes. The data point attributes and the
// metric metadata are read back by the gobenchregress connector.
const (
	scopeName = "github.com/otelcol-fabric/otelcol-fabric/receivers/gobenchreceiver"

	AttrRunID         = "benchmark.run.id"
	AttrBaselineRunID = "benchmark.baseline.run.id"
	AttrName          = "benchmark.name"
	AttrProcs         = "benchmark.procs"
	AttrPackage       = "benchmark.package"
	AttrGOOS          = "benchmark.goos"
	AttrGOARCH        = "benchmark.goarch"
	AttrCPU           = "benchmark.cpu"
	attrConfigPrefix  = "benchmark.config."

	// MetaUnit is the benchfmt unit of a metric (sec/op, B/op, ...), in
	// the metric's metadata: not an attribute, so not a label.
	MetaUnit   = "benchfmt.unit"
	MetaAssume = "benchfmt.assume"
	MetaBetter = "benchfmt.better"
)

// unitMetric is the OpenTelemetry name, unit and scale of a benchfmt unit.
type unitMetric struct {
	name, unit, desc string
}

// knownUnits are the units go test reports, as benchfmt tidies them
// (ns/op -> sec/op, MB/s -> B/s, values scaled to match).
var knownUnits = map[string]unitMetric{
	"sec/op":    {"gobench.op.duration", "s", "Time per benchmark iteration (go test ns/op)."},
	"B/op":      {"gobench.op.memory.allocated", "By", "Bytes allocated per benchmark iteration (go test -benchmem B/op)."},
	"allocs/op": {"gobench.op.allocations", "{allocation}", "Heap allocations per benchmark iteration (go test -benchmem allocs/op)."},
	"B/s":       {"gobench.throughput", "By/s", "Bytes processed per second (go test MB/s, from b.SetBytes)."},
}

// metricFor names the metric of a unit: the known ones after OpenTelemetry
// conventions, a custom b.ReportMetric unit as gobench.<unit> with "/"
// read as "_per_" (frames/op: gobench.frames_per_op).
func metricFor(unit string) unitMetric {
	if m, ok := knownUnits[unit]; ok {
		return m
	}
	var b strings.Builder
	b.WriteString("gobench.")
	for i, part := range strings.Split(unit, "/") {
		if i > 0 {
			b.WriteString("_per_")
		}
		for _, r := range part {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
				b.WriteRune(r)
			case r >= 'A' && r <= 'Z':
				b.WriteRune(r - 'A' + 'a')
			default:
				b.WriteByte('_')
			}
		}
	}
	return unitMetric{name: b.String(), desc: "go test -bench custom unit " + unit + " (b.ReportMetric)."}
}

// RankQuantiles returns the quantiles a data point of n samples carries:
// i/(n-1) for every rank i (each sample exactly, sorted), and 0.5 (the
// median, which for an even n lies between two ranks). Exported so that
// the connector reads the samples back with the same arithmetic.
func RankQuantiles(n int) []float64 {
	if n == 1 {
		return []float64{0, 0.5, 1}
	}
	qs := make([]float64, 0, n+1)
	for i := range n {
		qs = append(qs, float64(i)/float64(n-1))
	}
	if n%2 == 0 {
		qs = append(qs, 0.5)
		sort.Float64s(qs)
	}
	return qs
}

// quantile is the linear-interpolation quantile of sorted values (the
// median of an even count is the mean of the two middle values, as
// benchmath computes it).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(lo)
	if frac == 0 {
		return sorted[lo]
	}
	return sorted[lo] + (sorted[lo+1]-sorted[lo])*frac
}

// toMetrics turns a decoded run into one Summary data point per benchmark
// and unit, under one resource carrying the run's attributes.
func toMetrics(d *decoded, resource map[string]string, now pcommon.Timestamp) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	keys := make([]string, 0, len(resource))
	for k := range resource {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rm.Resource().Attributes().PutStr(k, resource[k])
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(scopeName)
	byUnit := map[string]pmetric.Metric{}
	for _, s := range d.series {
		m, ok := byUnit[s.unit]
		if !ok {
			um := metricFor(s.unit)
			m = sm.Metrics().AppendEmpty()
			m.SetName(um.name)
			m.SetUnit(um.unit)
			m.SetDescription(um.desc)
			m.Metadata().PutStr(MetaUnit, s.unit)
			m.SetEmptySummary()
			byUnit[s.unit] = m
		}
		if s.assume != "" {
			m.Metadata().PutStr(MetaAssume, s.assume)
		}
		if s.better != "" {
			m.Metadata().PutStr(MetaBetter, s.better)
		}
		dp := m.Summary().DataPoints().AppendEmpty()
		dp.SetStartTimestamp(now)
		dp.SetTimestamp(now)
		a := dp.Attributes()
		a.PutStr(AttrName, s.name)
		a.PutInt(AttrProcs, int64(s.procs))
		for _, c := range s.config {
			switch c.Key {
			case "pkg":
				a.PutStr(AttrPackage, string(c.Value))
			case "goos":
				a.PutStr(AttrGOOS, string(c.Value))
			case "goarch":
				a.PutStr(AttrGOARCH, string(c.Value))
			case "cpu":
				a.PutStr(AttrCPU, strings.TrimSpace(string(c.Value))) // go test pads it
			default:
				a.PutStr(attrConfigPrefix+c.Key, string(c.Value))
			}
		}
		sorted := append([]float64(nil), s.values...)
		sort.Float64s(sorted)
		var sum float64
		for _, v := range sorted {
			sum += v
		}
		dp.SetCount(uint64(len(sorted)))
		dp.SetSum(sum)
		qv := dp.QuantileValues()
		for _, q := range RankQuantiles(len(sorted)) {
			e := qv.AppendEmpty()
			e.SetQuantile(q)
			e.SetValue(quantile(sorted, q))
		}
	}
	return md
}
