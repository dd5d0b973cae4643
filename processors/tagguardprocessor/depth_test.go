package tagguardprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// nest puts a chain of `depth` maps (alternating with slices) under key.
func nest(m pcommon.Map, key string, depth int) {
	v := m.PutEmpty(key)
	for i := range depth {
		if i%2 == 0 {
			v = v.SetEmptyMap().PutEmpty("a")
		} else {
			v = v.SetEmptySlice().AppendEmpty()
		}
	}
	v.SetStr("leaf")
}

// depthOf is how deep maps and slices nest in v (a scalar is 0).
func depthOf(v pcommon.Value) int {
	d := 0
	for {
		switch v.Type() {
		case pcommon.ValueTypeMap:
			if v.Map().Len() == 0 {
				return d + 1
			}
			for _, c := range v.Map().All() {
				v = c
				break
			}
		case pcommon.ValueTypeSlice:
			if v.Slice().Len() == 0 {
				return d + 1
			}
			v = v.Slice().At(0)
		default:
			return d
		}
		d++
	}
}

// TestDepthLimit: values nested deeper than max_value_depth are cut at that
// depth, in every place a nested value can be (span, event and link
// attributes, scope attributes, data point attributes with and without
// rules, exemplars' filtered attributes, log attributes and bodies), in both
// modes; shallower values are
// untouched; the cuts are counted.
func TestDepthLimit(t *testing.T) {
	for _, mode := range []string{modeEnforce, modeObserve} {
		t.Run(mode, func(t *testing.T) {
			const limit = 8
			h := newHarness(t, cfgWith(func(c *Config) {
				c.MaxValueDepth = limit
				c.Mode = mode
				c.Scopes = map[string]ScopeRules{"span": {Allow: []string{"deep", "shallow"}}}
			}))
			ctx := context.Background()

			td := ptrace.NewTraces()
			ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
			nest(ss.Scope().Attributes(), "deep", 1000)
			span := ss.Spans().AppendEmpty()
			nest(span.Attributes(), "deep", 100_000)
			nest(span.Attributes(), "shallow", limit)
			nest(span.Events().AppendEmpty().Attributes(), "deep", 1000)
			nest(span.Links().AppendEmpty().Attributes(), "deep", 1000)
			require.NoError(t, h.tp.ConsumeTraces(ctx, td))
			out := h.traces.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0)
			s := out.Spans().At(0)
			for name, m := range map[string]pcommon.Map{
				"scope": out.Scope().Attributes(), "span": s.Attributes(),
				"event": s.Events().At(0).Attributes(), "link": s.Links().At(0).Attributes(),
			} {
				v, ok := m.Get("deep")
				require.True(t, ok, name)
				assert.Equal(t, limit, depthOf(v), "%s: cut at max_value_depth", name)
			}
			v, _ := s.Attributes().Get("shallow")
			assert.Equal(t, limit, depthOf(v), "a value at the limit is untouched")

			ld := plog.NewLogs()
			lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
			nest(lr.Attributes(), "deep", 1000)
			body := lr.Body().SetEmptyMap()
			nest(body, "deep", 1000)
			require.NoError(t, h.lp.ConsumeLogs(ctx, ld))
			olr := h.logs.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
			v, ok := olr.Attributes().Get("deep")
			require.True(t, ok, "log attributes: %v", olr.Attributes().AsRaw())
			assert.Equal(t, limit, depthOf(v), "log attribute")
			assert.Equal(t, limit+1, depthOf(olr.Body()), "log body: a body map's values count from level 1, as an attribute map's")

			md := pmetric.NewMetrics()
			g := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge()
			gdp := g.DataPoints().AppendEmpty()
			nest(gdp.Attributes(), "deep", 100_000)
			nest(gdp.Exemplars().AppendEmpty().FilteredAttributes(), "deep", 1000)
			require.NoError(t, h.mp.ConsumeMetrics(ctx, md))
			dp := h.metrics.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0)
			v, _ = dp.Attributes().Get("deep")
			assert.Equal(t, limit, depthOf(v), "data point attribute")
			v, _ = dp.Exemplars().At(0).FilteredAttributes().Get("deep")
			assert.Equal(t, limit, depthOf(v), "exemplar filtered attribute")

			m, err := h.tel.GetMetric("otelcol_processor_tagguard_values_truncated")
			require.NoError(t, err)
			var total int64
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				total += p.Value
			}
			assert.Equal(t, int64(8), total, "one cut per deep value")
		})
	}
}
