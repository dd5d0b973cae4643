package profilelinkexporter // import "github.com/otelcol-fabric/otelcol-fabric/exporters/profilelinkexporter"

import (
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// OTLP span flags: whether the parent is known to be remote.
const (
	flagHasIsRemote = 0x100
	flagIsRemote    = 0x200
)

// spanEntry is what the index keeps of a span: enough to walk up to its
// local root (the first span of the trace in that service: no parent, or a
// remote parent).
type spanEntry struct {
	trace        pcommon.TraceID
	parent       pcommon.SpanID
	localRoot    bool
	name         string
	seen         int64 // Unix ns
	evictionSlot int
}

// spanIndex maps span ids to entries, bounded in count (oldest evicted
// first) and in time (entries older than ttl are ignored and swept).
type spanIndex struct {
	mu        sync.RWMutex
	max       int
	ttl       int64
	spans     map[pcommon.SpanID]*spanEntry
	order     []pcommon.SpanID // ring of insertion order, for eviction
	next      int
	lastSweep int64
	// grown is closed (and replaced) whenever spans are added: pushes
	// waiting for their spans select on it.
	grown chan struct{}
}

func newSpanIndex(maxSpans int, ttl time.Duration) *spanIndex {
	return &spanIndex{max: maxSpans, ttl: int64(ttl), spans: make(map[pcommon.SpanID]*spanEntry),
		order: make([]pcommon.SpanID, maxSpans), grown: make(chan struct{})}
}

// changed returns a channel closed the next time spans are added.
func (ix *spanIndex) changed() <-chan struct{} {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.grown
}

// add indexes every span of a batch.
func (ix *spanIndex) add(td ptrace.Traces, now int64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	defer func() {
		close(ix.grown)
		ix.grown = make(chan struct{})
	}()
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				id := s.SpanID()
				if id.IsEmpty() {
					continue
				}
				flags := s.Flags()
				root := s.ParentSpanID().IsEmpty() || (flags&flagHasIsRemote != 0 && flags&flagIsRemote != 0)
				if e, ok := ix.spans[id]; ok { // a repeat: refresh
					e.seen = now
					continue
				}
				// Evict the oldest to make room.
				if old := ix.order[ix.next]; !old.IsEmpty() {
					if e, ok := ix.spans[old]; ok && e.evictionSlot == ix.next {
						delete(ix.spans, old)
					}
				}
				ix.spans[id] = &spanEntry{trace: s.TraceID(), parent: s.ParentSpanID(), localRoot: root, name: s.Name(), seen: now, evictionSlot: ix.next}
				ix.order[ix.next] = id
				ix.next = (ix.next + 1) % ix.max
			}
		}
	}
}

// root resolves a span to its local root: found is false while a span of the
// chain has not arrived (or expired).
func (ix *spanIndex) root(span pcommon.SpanID, now int64) (rootID pcommon.SpanID, rootName string, found bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	id := span
	for range 256 { // a chain longer than this is malformed
		e, ok := ix.spans[id]
		if !ok || now-e.seen > ix.ttl {
			return pcommon.SpanID{}, "", false
		}
		if e.localRoot {
			return id, e.name, true
		}
		id = e.parent
	}
	return pcommon.SpanID{}, "", false
}

func (ix *spanIndex) len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.spans)
}

// sweepDue reports whether a quarter of the ttl has passed since the last
// sweep.
func (ix *spanIndex) sweepDue(now int64) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return now-ix.lastSweep > ix.ttl/4
}

// sweep drops expired entries.
func (ix *spanIndex) sweep(now int64) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.lastSweep = now
	for id, e := range ix.spans {
		if now-e.seen > ix.ttl {
			delete(ix.spans, id)
		}
	}
}
