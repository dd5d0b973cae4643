package backpressureprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/backpressureprocessor"

import (
	"sync"
	"time"
)

// maxHeldFor bounds critical::held_for: the window is kept in 100 ms slots.
const maxHeldFor = 10 * time.Minute

const slot = 100 * time.Millisecond

// staleMargin is how old a queue measurement may be and still be used:
// every item passed from held_for before it is still in the ring. queuewatch
// measures every second by default, and decays its level once measurements
// fail for stale_after (30 s); an older measurement is not used.
const staleMargin = 30 * time.Second

// inFlight counts the items passed recently: with held_for at least
// tail_sampling's decision_wait plus its tick, the items passed within
// held_for before a queue measurement are those tail_sampling still held
// then, which it may release into the exporters' queues later. Counts are
// kept in 100 ms slots of the monotonic clock (a wall-clock step neither
// loses nor invents counts) and rounded outwards, so they never under-count
// what passed within a window the ring still holds.
type inFlight struct {
	base  time.Time // slot 0; carries the monotonic reading
	mu    sync.Mutex
	slots []inFlightSlot // ring, indexed by slot number modulo len
}

type inFlightSlot struct {
	n     int64 // slot number since base
	items int64
}

func newInFlight(heldFor time.Duration, base time.Time) *inFlight {
	f := &inFlight{base: base, slots: make([]inFlightSlot, int((heldFor+staleMargin+slot-1)/slot)+1)}
	for i := range f.slots {
		f.slots[i].n = -1
	}
	return f
}

func (f *inFlight) slotOf(t time.Time) int64 {
	d := t.Sub(f.base)
	if d < 0 {
		return -1
	}
	return int64(d / slot)
}

// tryAdd adds n items at now if n plus the items added from since (rounded
// down to its slot) to now is at most limit; it says whether it did, and
// what it counted. Check and add are one step, so concurrent batches cannot
// both take the last room.
func (f *inFlight) tryAdd(since, now time.Time, n int64, limit float64) (counted int64, added bool) {
	cur := f.slotOf(now)
	oldest := max(f.slotOf(since), cur-int64(len(f.slots))+1)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.slots {
		if s.n >= oldest && s.n <= cur {
			counted += s.items
		}
	}
	if float64(counted+n) > limit {
		return counted, false
	}
	f.addLocked(cur, n)
	return counted, true
}

func (f *inFlight) add(now time.Time, items int64) {
	cur := f.slotOf(now)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addLocked(cur, items)
}

func (f *inFlight) addLocked(cur, items int64) {
	if cur < 0 {
		cur = 0
	}
	s := &f.slots[cur%int64(len(f.slots))]
	if s.n != cur {
		s.n, s.items = cur, 0
	}
	s.items += items
}
