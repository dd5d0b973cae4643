package pyroscopereceiver

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-fabric/otelcol-fabric/receivers/pyroscopereceiver/internal/metadata"
)

// TestLifecycle is what mdatagen's generated lifecycle test does for other
// receivers (it generates none for a profiles-only one, see metadata.yaml):
// Shutdown without Start, then two receivers started and stopped one after
// the other on the same endpoint.
func TestLifecycle(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = freeAddr(t)
	ctx := context.Background()

	r, err := f.CreateProfiles(ctx, receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, r.Shutdown(ctx))

	for range 2 {
		r, err := f.CreateProfiles(ctx, receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
		require.NoError(t, err)
		require.NoError(t, r.Start(ctx, componenttest.NewNopHost()))
		require.NoError(t, r.Shutdown(ctx))
	}
}
