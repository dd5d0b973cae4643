package protoguardextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension"

import "sync/atomic"

// budget bounds the decoded-size estimates of the requests admitted and not
// yet answered (max_in_flight_decoded). It never blocks: a request it cannot
// take at once is refused (busy) and its sender retries, so no receiver
// goroutine waits in it while holding a read body.
type budget struct {
	limit    int64
	inFlight atomic.Int64
}

// tryAcquire takes n bytes of the budget if they fit, and says whether
// they did, with what was held when it decided.
func (b *budget) tryAcquire(n int64) (bool, int64) {
	for {
		held := b.inFlight.Load()
		if held+n > b.limit {
			return false, held
		}
		if b.inFlight.CompareAndSwap(held, held+n) {
			return true, held
		}
	}
}

// release gives back n bytes tryAcquire took.
func (b *budget) release(n int64) {
	b.inFlight.Add(-n)
}
