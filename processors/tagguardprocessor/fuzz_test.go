package tagguardprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor/internal/metadata"
)

func fuzzGuard(t *testing.T) *guard {
	g, err := newGuard(processortest.NewNopSettings(metadata.Type), cfgWith(blueprint, func(c *Config) {
		c.Metrics.MaxSeriesPerMetric = 3
		c.Metrics.MaxFoldedSeries = 4
		c.MaxValuesPerKey = map[string]int{"http.route": 2}
	}))
	require.NoError(t, err)
	return g
}

// seedMetrics is one batch of every metric type, several series each.
func seedMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	for _, k := range kinds {
		m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName(k.name)
		for i := range 6 {
			k.fill(m, i, 1, 1, 2)
		}
	}
	g := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge()
	for i := range 5 {
		dp := g.DataPoints().AppendEmpty()
		dp.Attributes().PutInt("i", int64(i))
		dp.Attributes().PutStr("http.route", string(rune('a'+i)))
	}
	s := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptySummary()
	for i := range 5 {
		dp := s.DataPoints().AppendEmpty()
		dp.Attributes().PutInt("i", int64(i))
		dp.SetCount(uint64(i))
		dp.SetSum(float64(i))
	}
	return md
}

// FuzzProcessMetrics decodes arbitrary OTLP metrics and runs them through the
// guard twice (so folded state is exercised): no panic, and what comes out
// still encodes.
func FuzzProcessMetrics(f *testing.F) {
	seed, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(seedMetrics())
	require.NoError(f, err)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(data)
		if err != nil {
			return
		}
		g := fuzzGuard(t)
		for range 2 {
			in := pmetric.NewMetrics()
			md.CopyTo(in)
			out, err := g.ProcessMetrics(context.Background(), in)
			require.NoError(t, err)
			_, err = (&pmetric.ProtoMarshaler{}).MarshalMetrics(out)
			require.NoError(t, err)
		}
	})
}

// FuzzProcessOtherSignals does the same for traces, logs and profiles.
func FuzzProcessOtherSignals(f *testing.F) {
	td := ptrace.NewTraces()
	span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	require.NoError(f, span.Attributes().FromRaw(noisy))
	tb, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	require.NoError(f, lr.Attributes().FromRaw(noisy))
	lb, _ := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	pb, _ := (&pprofile.ProtoMarshaler{}).MarshalProfiles(profileWithSampleAttrs(&testing.T{}, map[string]any{"trace_id": "t", "user.id": "u"}))
	f.Add(uint8(0), tb)
	f.Add(uint8(1), lb)
	f.Add(uint8(2), pb)
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		g := fuzzGuard(t)
		ctx := context.Background()
		switch which % 3 {
		case 0:
			if td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(data); err == nil {
				_, err = g.ProcessTraces(ctx, td)
				require.NoError(t, err)
			}
		case 1:
			if ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(data); err == nil {
				_, err = g.ProcessLogs(ctx, ld)
				require.NoError(t, err)
			}
		case 2:
			if pd, err := (&pprofile.ProtoUnmarshaler{}).UnmarshalProfiles(data); err == nil {
				_, err = g.ProcessProfiles(ctx, pd)
				require.NoError(t, err)
			}
		}
	})
}
