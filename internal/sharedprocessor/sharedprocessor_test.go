package sharedprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
)

type config struct{ name string }

// counting records what the shared instance saw.
type counting struct {
	starts, shutdowns int
	items             int
}

func (c *counting) Start(context.Context, component.Host) error { c.starts++; return nil }
func (c *counting) Shutdown(context.Context) error              { c.shutdowns++; return nil }
func (c *counting) ProcessTraces(_ context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	c.items += td.SpanCount()
	return td, nil
}

func (c *counting) ProcessMetrics(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	c.items += md.DataPointCount()
	return md, nil
}

func (c *counting) ProcessLogs(_ context.Context, ld plog.Logs) (plog.Logs, error) {
	c.items += ld.LogRecordCount()
	return ld, nil
}

func (c *counting) ProcessProfiles(_ context.Context, pd pprofile.Profiles) (pprofile.Profiles, error) {
	c.items += pd.SampleCount()
	return pd, nil
}

func TestOneInstanceForEverySignal(t *testing.T) {
	created := 0
	f := Factory[config, *counting]{
		New:          func(processor.Settings, *config) (*counting, error) { created++; return &counting{}, nil },
		Capabilities: consumer.Capabilities{MutatesData: true},
	}
	ctx := context.Background()
	set := processortest.NewNopSettings(component.MustNewType("test"))
	cfg := &config{name: "a"}
	tp, err := f.Traces(ctx, set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	mp, err := f.Metrics(ctx, set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	lp, err := f.Logs(ctx, set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	pp, err := f.Profiles(ctx, set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	other, err := f.Traces(ctx, set, &config{name: "b"}, consumertest.NewNop())
	require.NoError(t, err)
	assert.Equal(t, 2, created, "one instance per configuration")

	host := componenttest.NewNopHost()
	for _, c := range []component.Component{tp, mp, lp, pp} {
		require.NoError(t, c.Start(ctx, host))
	}
	inst, ok := f.Get(cfg)
	require.True(t, ok)
	assert.Equal(t, 1, inst.starts)

	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	require.NoError(t, tp.ConsumeTraces(ctx, td))
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	require.NoError(t, lp.ConsumeLogs(ctx, ld))
	assert.Equal(t, 2, inst.items, "traces and logs reached the same instance")

	for _, c := range []component.Component{tp, mp, lp} {
		require.NoError(t, c.Shutdown(ctx))
	}
	assert.Equal(t, 0, inst.shutdowns, "profiles still uses it")
	require.NoError(t, pp.Shutdown(ctx))
	assert.Equal(t, 1, inst.shutdowns)
	_, ok = f.Get(cfg)
	assert.False(t, ok, "released after the last shutdown")
	require.NoError(t, other.Shutdown(ctx))
}

// binding is a shared instance with per-pipeline state: Bind returns a
// value per pipeline (its telemetry, in the real processors), and each
// Process call sees its own pipeline's value.
type binding struct {
	counting
	bound []string
	seen  []any
}

func (b *binding) Bind(set processor.Settings) (any, error) {
	b.bound = append(b.bound, set.ID.String())
	return set.ID.String(), nil
}

func (b *binding) ProcessTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	b.seen = append(b.seen, Bound(ctx))
	return td, nil
}

func (b *binding) ProcessMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	b.seen = append(b.seen, Bound(ctx))
	return md, nil
}

// TestBindPerPipeline: each pipeline's Process calls carry what Bind
// returned for that pipeline's settings, not the first pipeline's: the
// instance's counters then carry each pipeline's own otelcol.pipeline.id
// and otelcol.signal.
func TestBindPerPipeline(t *testing.T) {
	f := Factory[config, *binding]{New: func(processor.Settings, *config) (*binding, error) { return &binding{}, nil }}
	ctx := context.Background()
	cfg := &config{name: "a"}
	typ := component.MustNewType("test")
	tracesSet := processortest.NewNopSettings(typ)
	tracesSet.ID = component.MustNewIDWithName("test", "in-traces")
	metricsSet := processortest.NewNopSettings(typ)
	metricsSet.ID = component.MustNewIDWithName("test", "in-metrics")
	tp, err := f.Traces(ctx, tracesSet, cfg, consumertest.NewNop())
	require.NoError(t, err)
	mp, err := f.Metrics(ctx, metricsSet, cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, mp.ConsumeMetrics(ctx, pmetric.NewMetrics()))
	require.NoError(t, tp.ConsumeTraces(ctx, ptrace.NewTraces()))
	inst, ok := f.Get(cfg)
	require.True(t, ok)
	assert.Equal(t, []string{"test/in-traces", "test/in-metrics"}, inst.bound)
	assert.Equal(t, []any{"test/in-metrics", "test/in-traces"}, inst.seen)
	assert.Nil(t, Bound(ctx), "a direct call has nothing bound")
}
