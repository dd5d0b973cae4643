package tagguardprocessor

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor/internal/metadata"
)

// The benchmarks run the same allow list, over the same data, through
// tagguard and through contrib's transformprocessor with keep_keys (what
// people write upstream), side by side in one run:
//
//	go test -run xxx -bench . -benchmem -count 6 ./processors/tagguardprocessor/ | tee new.txt
//	benchstat new.txt
//
// Every item carries the 12 attributes of `noisy`; the allow lists keep 5 on
// the resource and 6 on each item (4 of them protected correlation keys).

const benchItems = 100 // items per batch, each under its own resource

var (
	benchResourceKeep = []string{"service.name", "deployment.environment.name", "service.version", "vcs.ref.head.revision", "k8s.pod.name"}
	benchItemKeep     = []string{"service.name", "deployment.environment.name", "service.version", "vcs.ref.head.revision", "http.route", "trace_id"}
)

func benchGuardConfig() *Config {
	return cfgWith(scopes(map[string]ScopeRules{
		"resource":  {Allow: []string{"env", "service", "version", "commit", "k8s.pod.name"}},
		"span":      {Allow: []string{"http.route", "trace_id"}},
		"datapoint": {Allow: []string{"http.route", "trace_id"}},
		"log":       {Allow: []string{"http.route", "trace_id"}},
	}))
}

func keepKeys(keys []string) string {
	return fmt.Sprintf(`keep_keys(attributes, ["%s"])`, strings.Join(keys, `", "`))
}

func transformConfig(tb testing.TB, signal string) component.Config {
	cfg := transformprocessor.NewFactory().CreateDefaultConfig()
	item := map[string]string{"trace": "span", "metric": "datapoint", "log": "log"}[signal]
	conf := confmap.NewFromStringMap(map[string]any{
		signal + "_statements": []any{
			map[string]any{"context": "resource", "statements": []any{keepKeys(benchResourceKeep)}},
			map[string]any{"context": item, "statements": []any{keepKeys(benchItemKeep)}},
		},
	})
	require.NoError(tb, conf.Unmarshal(cfg))
	return cfg
}

func transformProcessor(b *testing.B, signal string) any {
	f := transformprocessor.NewFactory()
	cfg := transformConfig(b, signal)
	set := processortest.NewNopSettings(f.Type())
	ctx := context.Background()
	var p any
	var err error
	switch signal {
	case "trace":
		p, err = f.CreateTraces(ctx, set, cfg, consumertest.NewNop())
	case "metric":
		p, err = f.CreateMetrics(ctx, set, cfg, consumertest.NewNop())
	case "log":
		p, err = f.CreateLogs(ctx, set, cfg, consumertest.NewNop())
	}
	require.NoError(b, err)
	return p
}

func tagguardProcessor(b *testing.B, signal string) any {
	f := NewFactory()
	cfg := benchGuardConfig()
	set := processortest.NewNopSettings(metadata.Type)
	ctx := context.Background()
	var p processor.Traces
	var pm processor.Metrics
	var pl processor.Logs
	var err error
	switch signal {
	case "trace":
		p, err = f.CreateTraces(ctx, set, cfg, consumertest.NewNop())
		require.NoError(b, err)
		b.Cleanup(func() { _ = p.Shutdown(ctx) })
		return p
	case "metric":
		pm, err = f.CreateMetrics(ctx, set, cfg, consumertest.NewNop())
		require.NoError(b, err)
		b.Cleanup(func() { _ = pm.Shutdown(ctx) })
		return pm
	default:
		pl, err = f.CreateLogs(ctx, set, cfg, consumertest.NewNop())
		require.NoError(b, err)
		b.Cleanup(func() { _ = pl.Shutdown(ctx) })
		return pl
	}
}

// shape is how a batch's 100 items are spread over resources, and which
// attributes each item carries.
type shape struct {
	name      string
	resources int
	itemAttrs map[string]any
}

var shapes = []shape{
	// Every item under its own resource, both carrying all 12 noisy attributes.
	{name: "noisy", resources: benchItems, itemAttrs: noisy},
	// What SDKs send: 10 resources of 10 items each; items carry 8 request
	// attributes, of which the allow list keeps 2.
	{name: "sdk", resources: 10, itemAttrs: map[string]any{
		"http.request.method": "GET", "http.route": "/cart/{id}", "url.path": "/cart/123",
		"http.response.status_code": int64(200), "server.address": "shop.example",
		"user_agent.original": "Mozilla/5.0", "client.address": "203.0.113.7", "trace_id": "0123456789abcdef",
	}},
}

func (sh shape) traces() ptrace.Traces {
	td := ptrace.NewTraces()
	for r := range sh.resources {
		rs := td.ResourceSpans().AppendEmpty()
		_ = rs.Resource().Attributes().FromRaw(noisy)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := range benchItems / sh.resources {
			span := spans.AppendEmpty()
			span.SetName("GET /cart")
			_ = span.Attributes().FromRaw(sh.itemAttrs)
			span.Attributes().PutInt("i", int64(r*benchItems+i))
		}
	}
	return td
}

func (sh shape) metrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	for r := range sh.resources {
		rm := md.ResourceMetrics().AppendEmpty()
		_ = rm.Resource().Attributes().FromRaw(noisy)
		s := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		s.SetName("http.server.requests")
		dps := s.SetEmptySum().DataPoints()
		for i := range benchItems / sh.resources {
			dp := dps.AppendEmpty()
			_ = dp.Attributes().FromRaw(sh.itemAttrs)
			dp.Attributes().PutInt("i", int64(r*benchItems+i))
			// Series stay distinct after the allow list (as in a real
			// batch: one point per series); BenchmarkCollapse measures
			// the merge of series that do not.
			dp.Attributes().PutStr("http.route", fmt.Sprintf("/cart/%d", r*benchItems+i))
			dp.SetIntValue(int64(i))
		}
	}
	return md
}

func (sh shape) logs() plog.Logs {
	ld := plog.NewLogs()
	for r := range sh.resources {
		rl := ld.ResourceLogs().AppendEmpty()
		_ = rl.Resource().Attributes().FromRaw(noisy)
		lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
		for i := range benchItems / sh.resources {
			lr := lrs.AppendEmpty()
			lr.Body().SetStr("checkout done")
			_ = lr.Attributes().FromRaw(sh.itemAttrs)
			lr.Attributes().PutInt("i", int64(r*benchItems+i))
		}
	}
	return ld
}

func benchTraces() ptrace.Traces { return shapes[0].traces() }

// run times consume over fresh copies of the batch. Copies are made in
// chunks outside the timer, so that stopping the timer (which reads memory
// statistics) does not weigh on every iteration.
func run[T interface{ CopyTo(T) }](b *testing.B, batch T, fresh func() T, consume func(T) error) {
	const chunk = 1
	work := make([]T, chunk)
	for i := range work {
		work[i] = fresh()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		n := min(chunk, b.N-done)
		for i := range n {
			batch.CopyTo(work[i])
		}
		b.StartTimer()
		for i := range n {
			if err := consume(work[i]); err != nil {
				b.Fatal(err)
			}
		}
		done += n
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchItems), "ns/item")
}

// BenchmarkAllowList compares tagguard with transform/keep_keys per signal
// and data shape. tagguard runs with its default series cap on metrics
// (after the first batch every series is known: its steady state), and, as
// "tagguard_nocap", without it, which is the same work transform does.
func BenchmarkAllowList(b *testing.B) {
	ctx := context.Background()
	for _, sh := range shapes {
		for _, impl := range []struct {
			name string
			make func(*testing.B, string) any
		}{{"tagguard", tagguardProcessor}, {"transform_keep_keys", transformProcessor}} {
			b.Run(sh.name+"/traces/"+impl.name, func(b *testing.B) {
				p := impl.make(b, "trace").(processor.Traces)
				run(b, sh.traces(), ptrace.NewTraces, func(td ptrace.Traces) error { return p.ConsumeTraces(ctx, td) })
			})
			b.Run(sh.name+"/metrics/"+impl.name, func(b *testing.B) {
				p := impl.make(b, "metric").(processor.Metrics)
				run(b, sh.metrics(), pmetric.NewMetrics, func(md pmetric.Metrics) error { return p.ConsumeMetrics(ctx, md) })
			})
			if impl.name == "tagguard" {
				b.Run(sh.name+"/metrics/tagguard_nocap", func(b *testing.B) {
					p := tagguardNoCap(b)
					run(b, sh.metrics(), pmetric.NewMetrics, func(md pmetric.Metrics) error { return p.ConsumeMetrics(ctx, md) })
				})
			}
			b.Run(sh.name+"/logs/"+impl.name, func(b *testing.B) {
				p := impl.make(b, "log").(processor.Logs)
				run(b, sh.logs(), plog.NewLogs, func(ld plog.Logs) error { return p.ConsumeLogs(ctx, ld) })
			})
		}
	}
}

func tagguardNoCap(b *testing.B) processor.Metrics {
	cfg := benchGuardConfig()
	cfg.Metrics.MaxSeriesPerMetric = 0
	ctx := context.Background()
	p, err := NewFactory().CreateMetrics(ctx, processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(b, err)
	b.Cleanup(func() { _ = p.Shutdown(ctx) })
	return p
}

// BenchmarkGuardPath measures tagguard's own work without the processorhelper
// wrapper, to show the allow-list path allocates nothing per item.
func BenchmarkGuardPath(b *testing.B) {
	ctx := context.Background()
	g, err := newGuard(processortest.NewNopSettings(metadata.Type), benchGuardConfig())
	require.NoError(b, err)
	sh := shapes[1]
	b.Run("traces", func(b *testing.B) {
		run(b, sh.traces(), ptrace.NewTraces, func(td ptrace.Traces) error { _, err := g.ProcessTraces(ctx, td); return err })
	})
	b.Run("metrics", func(b *testing.B) {
		run(b, sh.metrics(), pmetric.NewMetrics, func(md pmetric.Metrics) error { _, err := g.ProcessMetrics(ctx, md); return err })
	})
	b.Run("logs", func(b *testing.B) {
		run(b, sh.logs(), plog.NewLogs, func(ld plog.Logs) error { _, err := g.ProcessLogs(ctx, ld); return err })
	})
}

// TestBenchmarkConfigsAgree checks that both sides of the benchmark do the
// same work: the same attributes survive.
func TestBenchmarkConfigsAgree(t *testing.T) {
	ctx := context.Background()
	g, err := newGuard(processortest.NewNopSettings(metadata.Type), benchGuardConfig())
	require.NoError(t, err)
	guarded, err := g.ProcessTraces(ctx, benchTraces())
	require.NoError(t, err)

	f := transformprocessor.NewFactory()
	sink := new(consumertest.TracesSink)
	tp, err := f.CreateTraces(ctx, processortest.NewNopSettings(f.Type()), transformConfig(t, "trace"), sink)
	require.NoError(t, err)
	require.NoError(t, tp.ConsumeTraces(ctx, benchTraces()))
	transformed := sink.AllTraces()[0]

	for _, td := range []ptrace.Traces{guarded, transformed} {
		rs := td.ResourceSpans().At(0)
		require.ElementsMatch(t, benchResourceKeep, keys(rs.Resource().Attributes()))
		require.ElementsMatch(t, benchItemKeep, keys(rs.ScopeSpans().At(0).Spans().At(0).Attributes()))
	}
}

// BenchmarkFloor is about the least an allow list can cost on this data with
// pdata's API: one RemoveIf per attribute map whose predicate is a
// compiled-in string switch, nothing else (no config, no telemetry).
func BenchmarkFloor(b *testing.B) {
	keepResource := func(k string, _ pcommon.Value) bool {
		switch k {
		case "service.name", "deployment.environment.name", "service.version", "vcs.ref.head.revision", "k8s.pod.name":
			return false
		}
		return true
	}
	keepItem := func(k string, _ pcommon.Value) bool {
		switch k {
		case "service.name", "deployment.environment.name", "service.version", "vcs.ref.head.revision", "http.route", "trace_id":
			return false
		}
		return true
	}
	for _, sh := range shapes {
		b.Run(sh.name+"/traces", func(b *testing.B) {
			run(b, sh.traces(), ptrace.NewTraces, func(td ptrace.Traces) error {
				for _, rs := range td.ResourceSpans().All() {
					rs.Resource().Attributes().RemoveIf(keepResource)
					for _, ss := range rs.ScopeSpans().All() {
						for _, s := range ss.Spans().All() {
							s.Attributes().RemoveIf(keepItem)
						}
					}
				}
				return nil
			})
		})
	}
}
