// Package sharedcomponent lets one component instance serve every signal it is
// configured for, the pattern collector core and contrib use for receivers and
// processors that hold state (a file watcher, a cardinality tracker): the
// factory asks the map for the instance of a component ID, creating it on
// first use; Start runs once, Shutdown runs when the last pipeline using the
// instance shuts it down.
package sharedcomponent // import "github.com/otelcol-fabric/otelcol-fabric/internal/sharedcomponent"

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
)

// Map holds the live instances by key (usually the component.ID).
type Map[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*Component[V]
}

// Get returns the live instance for key, if there is one.
func (m *Map[K, V]) Get(key K) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.m[key]; ok {
		return c.Value, true
	}
	var zero V
	return zero, false
}

// Component is one shared instance.
type Component[V any] struct {
	Value V

	start    func(context.Context, component.Host) error
	shutdown func(context.Context) error
	release  func()

	mu      sync.Mutex
	refs    int
	started bool
	stopped bool
}

// LoadOrStore returns the instance for key, creating it with create if there
// is none. Every call takes a reference that one Shutdown call gives back.
func (m *Map[K, V]) LoadOrStore(key K, create func() (V, error),
	start func(V, context.Context, component.Host) error, shutdown func(V, context.Context) error,
) (*Component[V], error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.m[key]; ok {
		c.mu.Lock()
		c.refs++
		c.mu.Unlock()
		return c, nil
	}
	v, err := create()
	if err != nil {
		return nil, err
	}
	c := &Component[V]{Value: v, refs: 1}
	c.start = func(ctx context.Context, host component.Host) error { return start(v, ctx, host) }
	c.shutdown = func(ctx context.Context) error { return shutdown(v, ctx) }
	c.release = func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.m[key] == c {
			delete(m.m, key)
		}
	}
	if m.m == nil {
		m.m = map[K]*Component[V]{}
	}
	m.m[key] = c
	return c, nil
}

// Start starts the instance the first time it is called.
func (c *Component[V]) Start(ctx context.Context, host component.Host) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return nil
	}
	c.started = true
	return c.start(ctx, host)
}

// Shutdown gives back one reference; the last one shuts the instance down and
// removes it from its map, so a reloaded configuration gets a new instance.
func (c *Component[V]) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	c.refs--
	last := c.refs <= 0 && !c.stopped
	if last {
		c.stopped = true
	}
	c.mu.Unlock()
	if !last {
		return nil
	}
	c.release()
	return c.shutdown(ctx)
}
