package profilelinkexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// TestDefaultSendingQueue: the factory's sending_queue differs from
// exporterhelper's defaults where the exporter's behaviour depends on it.
// A push whose spans have not arrived holds a queue consumer for up to
// link_wait, and the queue is first in, first out: with exporterhelper's 10
// consumers, ten waiting profiles hold every later upload, even one that
// could go out at once, for link_wait. Batching would merge uploads of
// different services and times into one push.
func TestDefaultSendingQueue(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.True(t, cfg.QueueConfig.HasValue(), "the sending queue is on by default")
	q := cfg.QueueConfig.Get()
	assert.Equal(t, 50, q.NumConsumers, "uploads/s x link_wait: 10/s at the default 5 s")
	assert.False(t, q.Batch.HasValue(), "one queue entry is one upload: no batching")
	assert.Equal(t, int64(1000), q.QueueSize, "exporterhelper's default size")
	assert.False(t, q.WaitForResult)
	assert.False(t, q.BlockOnOverflow, "a full queue answers the receiver with a retryable error")
	assert.Nil(t, q.StorageID, "in memory unless storage is configured")
	assert.Equal(t, 5*time.Second, cfg.LinkWait)
}

// TestWaitingProfilesDoNotHoldTheQueue: more profiles wait for their spans
// than exporterhelper's default 10 consumers; a later profile that need not
// wait (it ended longer than link_wait ago) is still pushed at once, not
// after link_wait behind them. Fails with NumConsumers 10.
func TestWaitingProfilesDoNotHoldTheQueue(t *testing.T) {
	ctx := context.Background()
	pr, standIn := startPair(t, func(c *Config) {
		c.LinkWait = time.Minute
		c.QueueConfig = createDefaultConfig().(*Config).QueueConfig
	})
	const waiting = 15
	for i := range waiting {
		require.NoError(t, pr.profiles.ConsumeProfiles(ctx, cpuProfile(int64(i))))
	}
	require.Eventually(t, func() bool {
		return gaugeValue(t, pr.tel, "otelcol_exporter_profilelink_profiles_waiting") == waiting
	}, 5*time.Second, 10*time.Millisecond, "every profile waits for its spans")

	replayed := cpuProfile(waiting)
	replayed.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0).
		SetTime(pcommon.NewTimestampFromTime(time.Now().Add(-2*time.Minute - 10*time.Second)))
	require.NoError(t, pr.profiles.ConsumeProfiles(ctx, replayed))
	require.Eventually(t, func() bool { return len(standIn.Profiles()) == 1 }, 10*time.Second, 10*time.Millisecond,
		"the profile that need not wait is pushed while %d others wait", waiting)
	assert.Equal(t, waiting, int(gaugeValue(t, pr.tel, "otelcol_exporter_profilelink_profiles_waiting")))
}
