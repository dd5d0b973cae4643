// Package sharedprocessor builds the per-signal create functions of a
// processor whose one instance serves every signal it is configured for (a
// catalog watcher, a cardinality tracker): the instance is created on first
// use for a configuration, started once and shut down with its last pipeline.
package sharedprocessor // import "github.com/otelcol-fabric/otelcol-fabric/internal/sharedprocessor"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/xconsumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/collector/processor/processorhelper/xprocessorhelper"
	"go.opentelemetry.io/collector/processor/xprocessor"

	"github.com/otelcol-fabric/otelcol-fabric/internal/sharedcomponent"
)

// Instance is what a shared processor implements.
type Instance interface {
	Start(context.Context, component.Host) error
	Shutdown(context.Context) error
	ProcessTraces(context.Context, ptrace.Traces) (ptrace.Traces, error)
	ProcessMetrics(context.Context, pmetric.Metrics) (pmetric.Metrics, error)
	ProcessLogs(context.Context, plog.Logs) (plog.Logs, error)
	ProcessProfiles(context.Context, pprofile.Profiles) (pprofile.Profiles, error)
}

// Binder is implemented by an Instance that keeps per-pipeline state, such
// as its telemetry built from each pipeline's own settings, so that its
// counters carry that pipeline's otelcol.pipeline.id and otelcol.signal
// rather than those of the pipeline that happened to create the instance.
// Bind is called once per pipeline; what it returns is handed to every
// Process call of that pipeline through the context (Bound).
type Binder interface {
	Bind(processor.Settings) (any, error)
}

type boundKey struct{}

// Bound returns what the instance's Bind returned for the pipeline a
// Process call comes from, or nil (a direct call, or no Binder).
func Bound(ctx context.Context) any {
	return ctx.Value(boundKey{})
}

// bind returns the context decoration for one pipeline.
func bind(inst Instance, set processor.Settings) (func(context.Context) context.Context, error) {
	b, ok := inst.(Binder)
	if !ok {
		return func(ctx context.Context) context.Context { return ctx }, nil
	}
	v, err := b.Bind(set)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) context.Context { return context.WithValue(ctx, boundKey{}, v) }, nil
}

// Factory creates processors of every signal around one Instance per
// configuration. The collector passes the same *C to every pipeline of a
// component ID (contrib's shared receivers rely on the same).
type Factory[C any, I Instance] struct {
	New          func(processor.Settings, *C) (I, error)
	Capabilities consumer.Capabilities

	instances sharedcomponent.Map[*C, I]
}

// Get returns the live instance for cfg, if there is one (for tests).
func (f *Factory[C, I]) Get(cfg *C) (I, bool) {
	return f.instances.Get(cfg)
}

func (f *Factory[C, I]) instance(set processor.Settings, cfg component.Config) (*sharedcomponent.Component[I], error) {
	c := cfg.(*C)
	return f.instances.LoadOrStore(c,
		func() (I, error) { return f.New(set, c) },
		func(i I, ctx context.Context, host component.Host) error { return i.Start(ctx, host) },
		func(i I, ctx context.Context) error { return i.Shutdown(ctx) })
}

// Traces is an xprocessor.CreateTracesFunc.
func (f *Factory[C, I]) Traces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	c, err := f.instance(set, cfg)
	if err != nil {
		return nil, err
	}
	b, err := bind(c.Value, set)
	if err != nil {
		return nil, err
	}
	process := func(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
		return c.Value.ProcessTraces(b(ctx), td)
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, process,
		processorhelper.WithCapabilities(f.Capabilities), processorhelper.WithStart(c.Start), processorhelper.WithShutdown(c.Shutdown))
}

// Metrics is an xprocessor.CreateMetricsFunc.
func (f *Factory[C, I]) Metrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	c, err := f.instance(set, cfg)
	if err != nil {
		return nil, err
	}
	b, err := bind(c.Value, set)
	if err != nil {
		return nil, err
	}
	process := func(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
		return c.Value.ProcessMetrics(b(ctx), md)
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, process,
		processorhelper.WithCapabilities(f.Capabilities), processorhelper.WithStart(c.Start), processorhelper.WithShutdown(c.Shutdown))
}

// Logs is an xprocessor.CreateLogsFunc.
func (f *Factory[C, I]) Logs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	c, err := f.instance(set, cfg)
	if err != nil {
		return nil, err
	}
	b, err := bind(c.Value, set)
	if err != nil {
		return nil, err
	}
	process := func(ctx context.Context, ld plog.Logs) (plog.Logs, error) { return c.Value.ProcessLogs(b(ctx), ld) }
	return processorhelper.NewLogs(ctx, set, cfg, next, process,
		processorhelper.WithCapabilities(f.Capabilities), processorhelper.WithStart(c.Start), processorhelper.WithShutdown(c.Shutdown))
}

// Profiles is an xprocessor.CreateProfilesFunc.
func (f *Factory[C, I]) Profiles(ctx context.Context, set processor.Settings, cfg component.Config, next xconsumer.Profiles) (xprocessor.Profiles, error) {
	c, err := f.instance(set, cfg)
	if err != nil {
		return nil, err
	}
	b, err := bind(c.Value, set)
	if err != nil {
		return nil, err
	}
	process := func(ctx context.Context, pd pprofile.Profiles) (pprofile.Profiles, error) {
		return c.Value.ProcessProfiles(b(ctx), pd)
	}
	return xprocessorhelper.NewProfiles(ctx, set, cfg, next, process,
		xprocessorhelper.WithCapabilities(f.Capabilities), xprocessorhelper.WithStart(c.Start), xprocessorhelper.WithShutdown(c.Shutdown))
}
