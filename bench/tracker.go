package main

import (
	"encoding/binary"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// The tracker is the ground truth of one run: when each trace was sent,
// whether the collector acknowledged it, and how many times each of its
// spans reached the sink. Arrays are chunked and allocated on first use, so
// a run at any rate needs no size up front.
const (
	chunkTraces = 1 << 15
	maxChunks   = 1 << 11 // 67M traces per run
)

// trace states (low bits) and flags.
const (
	stSent     = 1
	stAcked    = 2
	stRefused  = 3
	flagError  = 1 << 4
	flagSlow   = 1 << 5
	stateMask  = 0x0f
	spansShift = 8
)

type chunk struct {
	sentAt  [chunkTraces]int64  // ns since the tracker's start
	arrival [chunkTraces]int64  // first arrival of the trace's first span, ns since start
	meta    [chunkTraces]uint32 // state | flags | spans<<spansShift
	counts  [chunkTraces * maxSpansPerTrace]uint32
}

type tracker struct {
	nonce  uint64
	start  time.Time
	chunks [maxChunks]atomic.Pointer[chunk]
	mu     sync.Mutex // allocation of chunks

	nextTrace atomic.Uint64

	received atomic.Int64 // spans received with this run's nonce
	foreign  atomic.Int64 // spans without a valid bench.seq or of another run
	mismatch atomic.Int64 // bench.seq that does not belong to the span's trace id
	requests atomic.Int64 // export requests received by the sink
	held     atomic.Int64 // traces exports the sink answered only after its delay (a slow store)
	logs     atomic.Int64 // log records received
	metrics  atomic.Int64 // data points received
	lastRecv atomic.Int64 // ns since start of the last span received

	wireBytes    atomic.Int64 // traces export requests at the sink, as received (compressed)
	payloadBytes atomic.Int64 // the same, decompressed
	encodingsMu  sync.Mutex
	encodings    map[string]int64 // grpc-encoding of the traces exports received ("" none)
}

func newTracker(nonce uint64) *tracker {
	return &tracker{nonce: nonce, start: time.Now()}
}

func (t *tracker) now() int64 { return int64(time.Since(t.start)) }

func (t *tracker) chunk(seq uint64, alloc bool) *chunk {
	i := seq / chunkTraces
	if i >= maxChunks {
		return nil
	}
	if c := t.chunks[i].Load(); c != nil || !alloc {
		return c
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.chunks[i].Load(); c != nil {
		return c
	}
	c := &chunk{}
	t.chunks[i].Store(c)
	return c
}

// reserve hands out n consecutive trace sequence numbers.
func (t *tracker) reserve(n int) uint64 {
	return t.nextTrace.Add(uint64(n)) - uint64(n)
}

// sent records the traces of one request just before it is sent.
func (t *tracker) sent(first uint64, tm *template, at int64) {
	for i, tr := range tm.traces {
		seq := first + uint64(i)
		c := t.chunk(seq, true)
		j := seq % chunkTraces
		m := uint32(stSent) | uint32(len(tr.seq))<<spansShift
		if tr.errored {
			m |= flagError
		}
		if tr.slow {
			m |= flagSlow
		}
		atomic.StoreInt64(&c.sentAt[j], at)
		atomic.StoreUint32(&c.meta[j], m)
	}
}

// answered records the collector's answer to a request.
func (t *tracker) answered(first uint64, n int, ok bool) {
	st := uint32(stRefused)
	if ok {
		st = stAcked
	}
	for i := 0; i < n; i++ {
		seq := first + uint64(i)
		c := t.chunk(seq, false)
		j := seq % chunkTraces
		for {
			old := atomic.LoadUint32(&c.meta[j])
			if atomic.CompareAndSwapUint32(&c.meta[j], old, old&^stateMask|st) {
				break
			}
		}
	}
}

// spanArrived counts one span by its trace id and bench.seq value.
func (t *tracker) spanArrived(traceID [16]byte, seqHex []byte, at int64) {
	if binary.BigEndian.Uint64(traceID[:8]) != t.nonce || len(seqHex) != 16 {
		t.foreign.Add(1)
		return
	}
	var raw [8]byte
	for i := 0; i < 8; i++ {
		hi, ok1 := unhex(seqHex[2*i])
		lo, ok2 := unhex(seqHex[2*i+1])
		if !ok1 || !ok2 {
			t.foreign.Add(1)
			return
		}
		raw[i] = hi<<4 | lo
	}
	seq := binary.BigEndian.Uint64(raw[:])
	traceSeq := seq / maxSpansPerTrace
	if traceSeq != binary.BigEndian.Uint64(traceID[8:]) {
		t.mismatch.Add(1)
		return
	}
	c := t.chunk(traceSeq, false)
	if c == nil {
		t.foreign.Add(1)
		return
	}
	j := traceSeq % chunkTraces
	atomic.AddUint32(&c.counts[j*maxSpansPerTrace+seq%maxSpansPerTrace], 1)
	if seq%maxSpansPerTrace == 0 {
		atomic.CompareAndSwapInt64(&c.arrival[j], 0, at)
	}
	t.received.Add(1)
	for {
		old := t.lastRecv.Load()
		if at <= old || t.lastRecv.CompareAndSwap(old, at) {
			break
		}
	}
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// verdict is what a run delivered, span by span.
type verdict struct {
	Traces, TracesAcked, TracesRefused           int
	SpansSent, SpansAcked, SpansRefused          int64
	Delivered                                    int64 // distinct acknowledged spans that arrived
	Lost                                         int64 // acknowledged spans that never arrived (keep-all configs)
	Duplicates                                   int64 // arrivals beyond the first
	DeliveredRefused                             int64 // spans that arrived although their request failed
	TracesKept, TracesPartial                    int   // acknowledged traces with every / some but not all spans delivered
	ErrorTraces, ErrorKept, SlowTraces, SlowKept int
	Latencies                                    []time.Duration // per acknowledged trace: first span's arrival - send
	LatencyFirstQ, LatencyLastQ                  time.Duration   // median latency of traces sent in the first / last quarter of the run
}

// verdict walks every trace sent.
func (t *tracker) verdict() verdict {
	var v verdict
	n := t.nextTrace.Load()
	type sl struct{ sent, lat int64 }
	var lats []sl
	for seq := uint64(0); seq < n; seq++ {
		c := t.chunk(seq, false)
		if c == nil {
			continue
		}
		j := seq % chunkTraces
		m := atomic.LoadUint32(&c.meta[j])
		if m&stateMask == 0 {
			continue // reserved, never sent (the run ended)
		}
		spans := int(m >> spansShift)
		v.Traces++
		v.SpansSent += int64(spans)
		var got, dups int64
		for s := 0; s < spans; s++ {
			k := atomic.LoadUint32(&c.counts[int(j)*maxSpansPerTrace+s])
			if k > 0 {
				got++
				dups += int64(k - 1)
			}
		}
		v.Duplicates += dups
		switch m & stateMask {
		case stAcked:
			v.TracesAcked++
			v.SpansAcked += int64(spans)
			v.Delivered += got
			v.Lost += int64(spans) - got
			if got == int64(spans) {
				v.TracesKept++
			} else if got > 0 {
				v.TracesPartial++
			}
			if m&flagError != 0 {
				v.ErrorTraces++
				if got == int64(spans) {
					v.ErrorKept++
				}
			}
			if m&flagSlow != 0 {
				v.SlowTraces++
				if got == int64(spans) {
					v.SlowKept++
				}
			}
			if a := atomic.LoadInt64(&c.arrival[j]); a > 0 {
				s := atomic.LoadInt64(&c.sentAt[j])
				lats = append(lats, sl{s, a - s})
			}
		default: // refused, or never answered
			v.TracesRefused++
			v.SpansRefused += int64(spans)
			v.DeliveredRefused += got
		}
	}
	sort.Slice(lats, func(a, b int) bool { return lats[a].sent < lats[b].sent })
	for _, l := range lats {
		v.Latencies = append(v.Latencies, time.Duration(l.lat))
	}
	if q := len(lats) / 4; q > 10 {
		v.LatencyFirstQ = medianOf(lats[:q], func(x sl) int64 { return x.lat })
		v.LatencyLastQ = medianOf(lats[len(lats)-q:], func(x sl) int64 { return x.lat })
	}
	sort.Slice(v.Latencies, func(a, b int) bool { return v.Latencies[a] < v.Latencies[b] })
	return v
}

func medianOf[T any](xs []T, f func(T) int64) time.Duration {
	vals := make([]int64, len(xs))
	for i, x := range xs {
		vals[i] = f(x)
	}
	sort.Slice(vals, func(a, b int) bool { return vals[a] < vals[b] })
	return time.Duration(vals[len(vals)/2])
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}
