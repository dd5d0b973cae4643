package backpressureprocessor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-fabric/otelcol-fabric/processors/backpressureprocessor/internal/metadata"
)

// BenchmarkPipelineAtOK measures what backpressure costs while the level is
// ok, against the same pipeline without it, side by side in one run. The
// pipeline is the least a collector does with a batch: decode an OTLP
// request as the receiver does and encode it again as the exporter does
// (100 spans under 10 resources, 8 attributes each). A real pipeline does
// more, so the ratio printed here is the pessimistic one.
//
//	go test -run xxx -bench PipelineAtOK -benchmem -count 6 ./processors/backpressureprocessor/
func BenchmarkPipelineAtOK(b *testing.B) {
	td := ptrace.NewTraces()
	for r := range 10 {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "svc")
		rs.Resource().Attributes().PutStr("service.tier", []string{"gold", "silver", "bronze"}[r%3])
		for i := range 10 {
			s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			s.SetName("GET /cart")
			s.SetTraceID(pcommon.TraceID{byte(r), byte(i), 1})
			s.SetSpanID(pcommon.SpanID{byte(i), 2})
			for _, k := range []string{"http.request.method", "http.route", "url.path", "server.address", "user_agent.original", "client.address", "net.peer.port", "thread.name"} {
				s.Attributes().PutStr(k, "value-of-"+k)
			}
		}
	}
	payload, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(b, err)
	ctx := context.Background()

	encode, err := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
		_, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		return err
	})
	require.NoError(b, err)

	p, err := NewFactory().CreateTraces(ctx, processortest.NewNopSettings(metadata.Type), createDefaultConfig(), encode)
	require.NoError(b, err)
	watch := &fakeWatch{shed: map[string]int{}}
	require.NoError(b, p.Start(ctx, host{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{component.MustNewID("queuewatch"): watch}}))
	b.Cleanup(func() { _ = p.Shutdown(ctx) })

	for _, tc := range []struct {
		name string
		next consumer.Traces
	}{{"without", encode}, {"with_backpressure", p}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				req := ptraceotlp.NewExportRequest()
				if err := req.UnmarshalProto(payload); err != nil {
					b.Fatal(err)
				}
				if err := tc.next.ConsumeTraces(ctx, req.Traces()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/span")
		})
	}
}

// BenchmarkProcessorAtOK is the processor alone at level ok, on a one-span
// batch: the fixed cost per batch (mostly processorhelper's own telemetry).
// BenchmarkProcessorAtOK: one batch of one span at level ok, without and
// with critical::held_for (the batch is counted; the room is far from full).
func BenchmarkProcessorAtOK(b *testing.B) {
	for _, heldFor := range []time.Duration{0, 13 * time.Second} {
		b.Run(fmt.Sprintf("held_for=%s", heldFor), func(b *testing.B) {
			ctx := context.Background()
			cfg := createDefaultConfig().(*Config)
			if heldFor > 0 {
				cfg.Critical.HeldFor = map[string]time.Duration{"traces": heldFor}
			}
			p, err := NewFactory().CreateTraces(ctx, processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
			require.NoError(b, err)
			watch := &fakeWatch{shed: map[string]int{}, rooms: map[string]float64{"traces": 1e12}, roomsAt: time.Now()}
			require.NoError(b, p.Start(ctx, host{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{component.MustNewID("queuewatch"): watch}}))
			b.Cleanup(func() { _ = p.Shutdown(ctx) })
			td := ptrace.NewTraces()
			td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			b.ReportAllocs()
			for range b.N {
				if err := p.ConsumeTraces(ctx, td); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
