package profilelinkexporter

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShutdownKeepsItsDeadline: with a push in flight against a Pyroscope
// that never answers, Shutdown(ctx) returns by ctx's deadline (plus
// scheduling slack), not after the HTTP client's timeout or never.
func TestShutdownKeepsItsDeadline(t *testing.T) {
	arrived := make(chan struct{}, 16)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); hang.Close() })
	pr, _ := startPair(t, func(c *Config) {
		c.QueueConfig = createDefaultConfig().(*Config).QueueConfig // the shipped in-memory queue
		c.Endpoint = hang.URL
		c.ClientConfig.Timeout = time.Minute
		c.LinkWait = 0
	})
	ctx := context.Background()
	require.NoError(t, pr.profiles.ConsumeProfiles(ctx, cpuProfile(0)))
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the push never reached Pyroscope")
	}
	require.NoError(t, pr.traces.Shutdown(ctx))
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	start := time.Now()
	_ = pr.profiles.Shutdown(sctx)
	pr.closed = true
	took := time.Since(start)
	t.Logf("Shutdown with a 1 s deadline and a hanging push returned after %s", took)
	assert.Less(t, took, 3*time.Second, "Shutdown keeps its context's deadline")
}
