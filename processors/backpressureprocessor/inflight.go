package backpressureprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/backpressureprocessor"

import (
	"sync"
	"time"
)

// maxHeldFor bounds critical::held_for: the window is kept in 100 ms slots.
const maxHeldFor = 10 * time.Minute

const slot = 100 * time.Millisecond

// inFlight counts the items passed recently: with held_for set to
// tail_sampling's decision_wait plus its tick, the items passed within
// held_for before a queue measurement are those tail_sampling still held
// then, which it releases into the exporters' queues later. Counts are kept
// in 100 ms slots and rounded outwards, so they never under-count.
type inFlight struct {
	mu    sync.Mutex
	slots []inFlightSlot // ring, indexed by slot number modulo len
	sum   int64          // items in the ring: at least any window's
}

type inFlightSlot struct {
	n     int64 // slot number (time / 100 ms)
	items int64
}

// staleMargin is how much older than held_for a queue measurement may be
// and still have every item passed since counted; queuewatch measures every
// second and decays a level whose measurement is stale.
const staleMargin = 10 * time.Second

func newInFlight(heldFor time.Duration) *inFlight {
	return &inFlight{slots: make([]inFlightSlot, int((heldFor+staleMargin+slot-1)/slot)+1)}
}

func (f *inFlight) add(now time.Time, items int64) {
	n := now.UnixNano() / int64(slot)
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &f.slots[n%int64(len(f.slots))]
	if s.n != n {
		f.sum -= s.items
		s.n, s.items = n, 0
	}
	s.items += items
	f.sum += items
}

// upperBound is at least since(t, now) for any t: the ring's whole sum
// (slots not reused since they left the window still count).
func (f *inFlight) upperBound() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sum
}

// since is the items added from since (rounded down to its slot) to now;
// at most as far back as the ring reaches.
func (f *inFlight) since(since, now time.Time) int64 {
	n := now.UnixNano() / int64(slot)
	oldest := max(since.UnixNano()/int64(slot), n-int64(len(f.slots))+1)
	f.mu.Lock()
	defer f.mu.Unlock()
	var sum int64
	for _, s := range f.slots {
		if s.n >= oldest && s.n <= n {
			sum += s.items
		}
	}
	return sum
}
