package gobenchreceiver // import "github.com/otelcol-fabric/otelcol-fabric/receivers/gobenchreceiver"

import (
	"sort"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-fabric/otelcol-fabric/internal/benchdata"
)

const scopeName = "github.com/otelcol-fabric/otelcol-fabric/receivers/gobenchreceiver"

// The names the receiver writes, shared with the benchstat connector.
const (
	AttrRunID         = benchdata.AttrRunID
	AttrBaselineRunID = benchdata.AttrBaselineRunID
	AttrName          = benchdata.AttrName
	AttrProcs         = benchdata.AttrProcs
	AttrPackage       = benchdata.AttrPackage
	AttrGOOS          = benchdata.AttrGOOS
	AttrGOARCH        = benchdata.AttrGOARCH
	AttrCPU           = benchdata.AttrCPU
	attrConfigPrefix  = benchdata.AttrConfigPrefix
	MetaUnit          = benchdata.MetaUnit
	MetaAssume        = benchdata.MetaAssume
	MetaBetter        = benchdata.MetaBetter
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
		benchdata.Fill(dp, s.values)
	}
	return md
}
