package sharedcomponent

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
)

type counter struct{ created, started, stopped int }

func TestOneInstancePerKey(t *testing.T) {
	var m Map[string, *counter]
	var made []*counter
	create := func() (*counter, error) { c := &counter{created: 1}; made = append(made, c); return c, nil }

	get := func(key string) *Component[*counter] {
		c, err := m.LoadOrStore(key, create,
			func(c *counter, _ context.Context, _ component.Host) error { c.started++; return nil },
			func(c *counter, _ context.Context) error { c.stopped++; return nil })
		require.NoError(t, err)
		return c
	}
	a1, a2, a3 := get("a"), get("a"), get("a")
	b := get("b")
	require.Len(t, made, 2, "one instance per key")
	assert.Same(t, a1.Value, a3.Value)
	assert.NotSame(t, a1.Value, b.Value)

	host := componenttest.NewNopHost()
	for _, c := range []*Component[*counter]{a1, a2, a3} {
		require.NoError(t, c.Start(context.Background(), host))
	}
	assert.Equal(t, 1, a1.Value.started, "started once")

	require.NoError(t, a1.Shutdown(context.Background()))
	require.NoError(t, a2.Shutdown(context.Background()))
	assert.Equal(t, 0, a1.Value.stopped, "still referenced")
	require.NoError(t, a3.Shutdown(context.Background()))
	require.NoError(t, a3.Shutdown(context.Background()), "an extra shutdown is harmless")
	assert.Equal(t, 1, a1.Value.stopped, "stopped once, by the last reference")

	// After the last shutdown the key is free: a reload gets a new instance.
	a4 := get("a")
	assert.NotSame(t, a1.Value, a4.Value)
	require.Len(t, made, 3)
}

func TestCreateErrorIsNotStored(t *testing.T) {
	var m Map[string, int]
	boom := errors.New("boom")
	_, err := m.LoadOrStore("k", func() (int, error) { return 0, boom }, nil, nil)
	require.ErrorIs(t, err, boom)
	c, err := m.LoadOrStore("k", func() (int, error) { return 7, nil },
		func(int, context.Context, component.Host) error { return nil },
		func(int, context.Context) error { return nil })
	require.NoError(t, err)
	assert.Equal(t, 7, c.Value)
}
