package profilelinkexporter

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/google/pprof/profile"

	"github.com/otelcol-fabric/otelcol-fabric/exporters/profilelinkexporter/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/internal/pprofconv"
)

// liveTraces builds n traces of 5 spans (a root, two children, two
// grandchildren), in batches of 100 traces.
func liveTraces(n int) []ptrace.Traces {
	var out []ptrace.Traces
	for b := 0; b < n; b += 100 {
		td := ptrace.NewTraces()
		ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
		for t := b; t < min(b+100, n); t++ {
			tid := pcommon.TraceID{byte(t >> 24), byte(t >> 16), byte(t >> 8), byte(t), 1}
			id := func(k int) pcommon.SpanID {
				return pcommon.SpanID{byte(t >> 24), byte(t >> 16), byte(t >> 8), byte(t), byte(k + 1)}
			}
			parents := []int{-1, 0, 0, 1, 2}
			for k, p := range parents {
				s := ss.Spans().AppendEmpty()
				s.SetTraceID(tid)
				s.SetSpanID(id(k))
				if p >= 0 {
					s.SetParentSpanID(id(p))
				}
				s.SetName(fmt.Sprintf("span-%d", k))
			}
		}
		out = append(out, td)
	}
	return out
}

// BenchmarkIndexMemory reports the heap the span index holds per span, at
// 10k and 100k live traces (5 spans each).
func BenchmarkIndexMemory(b *testing.B) {
	for _, traces := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("traces=%d", traces), func(b *testing.B) {
			batches := liveTraces(traces)
			now := time.Now().UnixNano()
			var perSpan float64
			for range b.N {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				ix := newSpanIndex(traces*5, time.Hour)
				for _, td := range batches {
					ix.add(td, now)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perSpan = float64(after.HeapAlloc-before.HeapAlloc) / float64(ix.len())
				runtime.KeepAlive(ix)
			}
			b.ReportMetric(perSpan, "B/span")
			b.ReportMetric(perSpan*float64(traces*5)/(1<<20), "MiB")
		})
	}
}

// BenchmarkJoin measures linking profiles against an index of 100k live
// traces: each profile has 100 samples, each naming a grandchild span.
func BenchmarkJoin(b *testing.B) {
	const traces = 100_000
	l, err := newLinker(exportertestSettings(), createDefaultConfig().(*Config))
	if err != nil {
		b.Fatal(err)
	}
	l.index = newSpanIndex(traces*5, time.Hour)
	for _, td := range liveTraces(traces) {
		l.index.add(td, time.Now().UnixNano())
	}
	mk := func(seed int) []*series {
		p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}}}
		for i := range 100 {
			t := (seed*100 + i) % traces
			span := pcommon.SpanID{byte(t >> 24), byte(t >> 16), byte(t >> 8), byte(t), 4}
			p.Sample = append(p.Sample, &profile.Sample{Value: []int64{1}, Label: map[string][]string{pprofconv.LabelSpanID: {span.String()}}})
		}
		return []*series{{prof: p, unlinked: p.Sample}}
	}
	batches := make([][]*series, b.N)
	for i := range batches {
		batches[i] = mk(i)
	}
	b.ResetTimer()
	for i := range b.N {
		if !l.link(batches[i]) {
			b.Fatal("not linked")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "profiles/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/sample")
}

func exportertestSettings() exporter.Settings {
	return exportertest.NewNopSettings(metadata.Type)
}
