package benchstatconnector

import (
	"context"
	"encoding/binary"
	"math"
	"testing"

	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-fabric/otelcol-fabric/connectors/benchstatconnector/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/internal/benchdata"
)

func floats(b []byte) []float64 {
	var out []float64
	for len(b) >= 8 && len(out) < 64 {
		out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(b)))
		b = b[8:]
	}
	return out
}

// FuzzObserve runs arbitrary samples, units and unit metadata through the
// state and benchstat's statistics, twice (a baseline, then the run):
// no panic, and every comparison names its baseline.
func FuzzObserve(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 240, 63}, []byte{0, 0, 0, 0, 0, 0, 0, 64}, "sec/op", "", "")
	f.Add([]byte{}, []byte{1}, "B/s", "exact", "higher")
	f.Add(make([]byte, 80), make([]byte, 80), "x/op", "nothing", "lower")
	f.Fuzz(func(t *testing.T, oldRaw, newRaw []byte, unit, assume, better string) {
		c, err := newCore(connectortest.NewNopSettings(metadata.Type), createDefaultConfig().(*Config))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.shutdownTelemetry() }()
		for i, vals := range [][]float64{floats(oldRaw), floats(newRaw)} {
			md := pmetric.NewMetrics()
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr(benchdata.AttrRunID, []string{"a", "b"}[i])
			rm.Resource().Attributes().PutStr(benchdata.AttrServiceName, "s")
			rm.Resource().Attributes().PutStr(benchdata.AttrBranch, "main")
			m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName("gobench.x")
			m.Metadata().PutStr(benchdata.MetaUnit, unit)
			m.Metadata().PutStr(benchdata.MetaAssume, assume)
			m.Metadata().PutStr(benchdata.MetaBetter, better)
			dp := m.SetEmptySummary().DataPoints().AppendEmpty()
			dp.Attributes().PutStr(benchdata.AttrName, "BenchmarkX")
			if len(vals) > 0 {
				benchdata.Fill(dp, vals)
			}
			for _, r := range c.observe(context.Background(), md, sideMetrics) {
				if i == 1 && len(floats(oldRaw)) > 0 && finite(floats(oldRaw)) && r.baseline == nil {
					t.Fatalf("the second run has no baseline")
				}
				if r.baseline != nil && r.cmp.line == "" {
					t.Fatalf("a comparison without benchstat's line")
				}
			}
			_ = deltaMetrics(c.observe(context.Background(), md, sideMetrics), 1)
			_ = regressionLogs(c.observe(context.Background(), md, sideLogs), 1)
		}
	})
}
