package versionstampprocessor

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-fabric/otelcol-fabric/processors/versionstampprocessor/internal/metadata"
)

const benchResources = 100

// benchAttrs fills a resource the way an SDK and k8sattributes would, with
// either all three facts already stamped (fast path) or none of them, so the
// sources have to find them (slow path: alias, k8s label, catalog).
func benchAttrs(m pcommon.Map, i int, stamped bool) {
	m.PutStr("service.name", "checkout")
	m.PutStr("deployment.environment.name", "production")
	m.PutStr("telemetry.sdk.language", "go")
	m.PutStr("telemetry.sdk.name", "opentelemetry")
	m.PutStr("telemetry.sdk.version", "1.39.0")
	m.PutStr("host.name", fmt.Sprintf("node-%d", i%7))
	m.PutStr("k8s.namespace.name", "shop")
	m.PutStr("k8s.pod.name", fmt.Sprintf("checkout-%d", i))
	m.PutStr("container.image.tag", "1.4.2")
	if stamped {
		m.PutStr("service.version", "1.4.2")
		m.PutStr("vcs.ref.head.revision", "3f2c9a1b7d")
		m.PutStr("build.timestamp", "2026-11-20T10:00:00Z")
	} else {
		m.PutStr("app.version", "1.4.2")
	}
}

func benchCfg() *Config {
	return defaultCfg(withCatalog("testdata/catalog.yaml"))
}

// BenchmarkStamp compares the fast path (resources that already carry all three
// keys) with the slow path (resources that carry none), per resource, in one run.
func BenchmarkStamp(b *testing.B) {
	for _, path := range []struct {
		name    string
		stamped bool
	}{{"fast_path_already_stamped", true}, {"slow_path_from_sources", false}} {
		b.Run(path.name, func(b *testing.B) {
			s, err := newStamper(processortest.NewNopSettings(metadata.Type), benchCfg())
			require.NoError(b, err)
			require.NoError(b, s.Start(context.Background(), nil))
			defer func() { require.NoError(b, s.Shutdown(context.Background())) }()
			// Fresh copies for every iteration: the slow path changes them.
			template := make([]pcommon.Map, benchResources)
			for i := range template {
				template[i] = pcommon.NewMap()
				benchAttrs(template[i], i, path.stamped)
			}
			res := make([]pcommon.Resource, benchResources)
			for i := range res {
				res[i] = pcommon.NewResource()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				b.StopTimer()
				for i := range res {
					template[i].CopyTo(res[i].Attributes())
				}
				var c counts
				b.StartTimer()
				for i := range res {
					s.stamp(res[i], &c)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchResources), "ns/resource")
		})
	}
}

// BenchmarkConsume measures each signal through the processor (processorhelper
// included) on the fast path, per resource.
func BenchmarkConsume(b *testing.B) {
	ctx := context.Background()
	set := processortest.NewNopSettings(metadata.Type)
	factory := NewFactory()

	b.Run("traces", func(b *testing.B) {
		p, err := factory.CreateTraces(ctx, set, benchCfg(), consumertest.NewNop())
		require.NoError(b, err)
		td := ptrace.NewTraces()
		for i := range benchResources {
			rs := td.ResourceSpans().AppendEmpty()
			benchAttrs(rs.Resource().Attributes(), i, true)
			rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("GET /cart")
		}
		b.ReportAllocs()
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			require.NoError(b, p.ConsumeTraces(ctx, td))
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchResources), "ns/resource")
	})
	b.Run("metrics", func(b *testing.B) {
		p, err := factory.CreateMetrics(ctx, set, benchCfg(), consumertest.NewNop())
		require.NoError(b, err)
		md := pmetric.NewMetrics()
		for i := range benchResources {
			rm := md.ResourceMetrics().AppendEmpty()
			benchAttrs(rm.Resource().Attributes(), i, true)
			rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(1)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			require.NoError(b, p.ConsumeMetrics(ctx, md))
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchResources), "ns/resource")
	})
	b.Run("logs", func(b *testing.B) {
		p, err := factory.CreateLogs(ctx, set, benchCfg(), consumertest.NewNop())
		require.NoError(b, err)
		ld := plog.NewLogs()
		for i := range benchResources {
			rl := ld.ResourceLogs().AppendEmpty()
			benchAttrs(rl.Resource().Attributes(), i, true)
			rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("ok")
		}
		b.ReportAllocs()
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			require.NoError(b, p.ConsumeLogs(ctx, ld))
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchResources), "ns/resource")
	})
}
