package backpressureprocessor

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-fabric/otelcol-fabric/processors/backpressureprocessor/internal/metadata"
)

// blockingNext stands for tail_sampling with block_on_overflow and a full
// num_traces: every call waits until release is closed, whatever its
// context says, and then takes the batch.
type blockingNext struct {
	release chan struct{}
	mu      sync.Mutex
	entered int
	taken   []ptrace.Traces
}

func (b *blockingNext) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (b *blockingNext) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	b.mu.Lock()
	b.entered++
	b.mu.Unlock()
	<-b.release
	b.mu.Lock()
	b.taken = append(b.taken, td)
	b.mu.Unlock()
	return nil
}

func (b *blockingNext) counts() (entered, taken int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.entered, len(b.taken)
}

// TestAdmission: with admission::max_wait, at most max_concurrent batches
// are inside the next processor; a batch that cannot get in within max_wait
// is refused with a retryable error and counted, and so is one whose sender
// gave up while it waited; neither is ever handed on. Once the next
// processor takes batches again, new ones pass.
func TestAdmission(t *testing.T) {
	ctx := context.Background()
	cfg := createDefaultConfig().(*Config)
	cfg.Admission = AdmissionConfig{MaxWait: 100 * time.Millisecond, MaxConcurrent: 1}
	next := &blockingNext{release: make(chan struct{})}
	tp, err := NewFactory().CreateTraces(ctx, processortest.NewNopSettings(metadata.Type), cfg, next)
	require.NoError(t, err)
	watch := &fakeWatch{shed: map[string]int{}}
	require.NoError(t, tp.Start(ctx, host{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{component.MustNewID("queuewatch"): watch}}))
	defer func() { require.NoError(t, tp.Shutdown(ctx)) }()

	// The first batch gets in and waits inside the next processor.
	firstDone := make(chan error, 1)
	go func() { firstDone <- tp.ConsumeTraces(ctx, traces()) }()
	require.Eventually(t, func() bool { e, _ := next.counts(); return e == 1 }, 5*time.Second, 5*time.Millisecond)

	// The second waits max_wait for the one slot, and is refused.
	start := time.Now()
	err = tp.ConsumeTraces(ctx, traces())
	waited := time.Since(start)
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err), "retryable: the sender keeps the batch and retries")
	assert.Contains(t, err.Error(), "admission::max_wait")
	assert.GreaterOrEqual(t, waited, 100*time.Millisecond)
	assert.Equal(t, 3, watch.shed["gold/traces/refused"], "the refused batch's gold spans are counted")
	assert.Equal(t, 3, watch.shed["silver/traces/refused"])

	// A third whose sender gives up while it waits is refused at once.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	err = tp.ConsumeTraces(cctx, traces())
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 6, watch.shed["gold/traces/refused"])

	entered, taken := next.counts()
	assert.Equal(t, 1, entered, "a refused batch never reaches the next processor")
	assert.Zero(t, taken)

	// The next processor takes batches again: the first completes, and a
	// new batch passes without waiting for max_wait; one whose sender has
	// already gone is refused although a slot is free.
	close(next.release)
	require.NoError(t, <-firstDone)
	start = time.Now()
	require.NoError(t, tp.ConsumeTraces(ctx, traces()))
	assert.Less(t, time.Since(start), 100*time.Millisecond)
	gone, cancelGone := context.WithCancel(ctx)
	cancelGone()
	require.ErrorIs(t, tp.ConsumeTraces(gone, traces()), context.Canceled)
	assert.Equal(t, 9, watch.shed["gold/traces/refused"])
	entered, taken = next.counts()
	assert.Equal(t, 2, entered)
	assert.Equal(t, 2, taken)
}

// TestAdmissionOffByDefault: without admission::max_wait a batch waits for
// the next processor as long as it takes (contrib's behaviour).
func TestAdmissionOffByDefault(t *testing.T) {
	ctx := context.Background()
	next := &blockingNext{release: make(chan struct{})}
	tp, err := NewFactory().CreateTraces(ctx, processortest.NewNopSettings(metadata.Type), createDefaultConfig(), next)
	require.NoError(t, err)
	watch := &fakeWatch{shed: map[string]int{}}
	require.NoError(t, tp.Start(ctx, host{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{component.MustNewID("queuewatch"): watch}}))
	defer func() { require.NoError(t, tp.Shutdown(ctx)) }()
	done := make(chan error, 2)
	for range 2 {
		go func() { done <- tp.ConsumeTraces(ctx, traces()) }()
	}
	require.Eventually(t, func() bool { e, _ := next.counts(); return e == 2 }, 5*time.Second, 5*time.Millisecond, "both batches are inside at once")
	close(next.release)
	require.NoError(t, <-done)
	require.NoError(t, <-done)
	assert.Empty(t, watch.shed)
}
