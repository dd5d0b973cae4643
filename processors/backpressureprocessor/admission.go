package backpressureprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/backpressureprocessor"

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

// admission is the traces pipeline's next consumer when admission::max_wait
// is set: at most cap(slots) batches are inside the next processor at once,
// and a batch that cannot get in within maxWait, or whose sender gave up
// meanwhile, is refused with a retryable error without being handed on.
type admission struct {
	next    consumer.Traces
	slots   chan struct{}
	maxWait time.Duration
	s       *shedder
}

func newAdmission(s *shedder, next consumer.Traces, cfg AdmissionConfig) *admission {
	n := cfg.MaxConcurrent
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return &admission{next: next, slots: make(chan struct{}, n), maxWait: cfg.MaxWait, s: s}
}

func (a *admission) Capabilities() consumer.Capabilities { return a.next.Capabilities() }

func (a *admission) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	if err := ctx.Err(); err != nil {
		// The sender gave up before the batch got here (a slow decode on a
		// saturated gateway): handing it on would make its retry a duplicate.
		a.s.countRefused(ctx, sigTraces, a.s.tracesByTier(td))
		return fmt.Errorf("backpressure: the request ended before admission: %w", err)
	}
	select {
	case a.slots <- struct{}{}: // the common case: a free slot, no timer
	default:
		t := time.NewTimer(a.maxWait)
		defer t.Stop()
		select {
		case a.slots <- struct{}{}:
		case <-ctx.Done():
			// The sender gave up: the answer cannot reach it, and handing
			// the batch on would make its retry a duplicate.
			a.s.countRefused(ctx, sigTraces, a.s.tracesByTier(td))
			return fmt.Errorf("backpressure: the request ended while waiting for admission: %w", ctx.Err())
		case <-t.C:
			a.s.countRefused(ctx, sigTraces, a.s.tracesByTier(td))
			a.s.logger.Debug("refusing a batch that waited admission::max_wait for the next processor",
				zap.Duration("max_wait", a.maxWait), zap.Int("spans", td.SpanCount()))
			return fmt.Errorf("backpressure: the pipeline took no spans for %s (admission::max_wait; tail_sampling is full and waits for its decisions to make room): refusing %d spans, retry later",
				a.maxWait, td.SpanCount())
		}
	}
	defer func() { <-a.slots }()
	return a.next.ConsumeTraces(ctx, td)
}
