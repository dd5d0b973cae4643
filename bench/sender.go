package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// rawMessage carries pre-encoded bytes through gRPC: pdata registers the
// "proto" codec, which sends any value with SizeProto/MarshalProto as is.
type rawMessage struct{ b []byte }

func (m *rawMessage) SizeProto() int                { return len(m.b) }
func (m *rawMessage) MarshalProto(buf []byte) int   { return copy(buf, m.b) }
func (m *rawMessage) UnmarshalProto(b []byte) error { m.b = append(m.b[:0], b...); return nil }

// loadSpec: N streams, each a connection of its own sending requests one
// after the other, at Rate spans/s in total (0: as fast as accepted).
type loadSpec struct {
	Streams  int
	Rate     float64
	Duration time.Duration
	Token    string
	Timeout  time.Duration
	// Compression: the gRPC compressor of every call ("" or "none": none).
	Compression string
	// MaxTraces stops the streams once this many traces were sent (0: no
	// limit; each stream may finish the request it started).
	MaxTraces uint64
}

// loadStats is what the sender saw.
type loadStats struct {
	Requests, Failed int64
	SpansSent        int64
	SpansAcked       int64
	Elapsed          time.Duration
	Errors           map[string]int64
	// Traces export bytes sent: on the wire (compressed) and before.
	WireBytes, PayloadBytes int64
}

// sendLoad runs the streams until spec.Duration has passed.
func sendLoad(ctx context.Context, target string, w *workload, tr *tracker, spec loadSpec) (loadStats, error) {
	var wireBytes, payloadBytes atomic.Int64
	counter := &byteCounter{out: true, wire: func() (*atomic.Int64, *atomic.Int64) { return &wireBytes, &payloadBytes }}
	callOpts := []grpc.CallOption{grpc.MaxCallSendMsgSize(64 << 20)}
	if spec.Compression != "" && spec.Compression != "none" {
		if encoding.GetCompressor(spec.Compression) == nil {
			return loadStats{}, fmt.Errorf("no gRPC compressor %q is registered", spec.Compression)
		}
		callOpts = append(callOpts, grpc.UseCompressor(spec.Compression))
	}
	conns := make([]*grpc.ClientConn, spec.Streams)
	for i := range conns {
		cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(callOpts...), grpc.WithStatsHandler(counter))
		if err != nil {
			return loadStats{}, err
		}
		defer cc.Close()
		conns[i] = cc
	}
	var (
		next           atomic.Int64
		reqs, failed   atomic.Int64
		spansSent      atomic.Int64
		spansAcked     atomic.Int64
		mu             sync.Mutex
		errs           = map[string]int64{}
		wg             sync.WaitGroup
		avgSpansPerReq = float64(w.spans) / float64(len(w.templates))
	)
	var interval time.Duration
	if spec.Rate > 0 {
		interval = time.Duration(float64(time.Second) * avgSpansPerReq / spec.Rate)
	}
	if spec.Timeout == 0 {
		spec.Timeout = 10 * time.Second
	}
	start := time.Now()
	end := start.Add(spec.Duration)
	for s := 0; s < spec.Streams; s++ {
		wg.Add(1)
		go func(cc *grpc.ClientConn) {
			defer wg.Done()
			buf := make([]byte, 0, 1<<20)
			var resp rawMessage
			for ctx.Err() == nil {
				k := next.Add(1) - 1
				if interval > 0 {
					at := start.Add(time.Duration(k) * interval)
					if at.After(end) {
						return
					}
					if d := time.Until(at); d > 0 {
						time.Sleep(d)
					}
				} else if time.Now().After(end) {
					return
				}
				if spec.MaxTraces > 0 && tr.nextTrace.Load() >= spec.MaxTraces {
					return
				}
				tm := &w.templates[int(k)%len(w.templates)]
				buf = append(buf[:0], tm.data...)
				first := tr.reserve(len(tm.traces))
				tm.stamp(buf, tr.nonce, first)
				tr.sent(first, tm, tr.now())
				cctx, cancel := context.WithTimeout(ctx, spec.Timeout)
				if spec.Token != "" {
					cctx = metadata.AppendToOutgoingContext(cctx, "authorization", "Bearer "+spec.Token)
				}
				err := cc.Invoke(cctx, exportMethod, &rawMessage{b: buf}, &resp)
				cancel()
				reqs.Add(1)
				spansSent.Add(int64(tm.spans))
				tr.answered(first, len(tm.traces), err == nil)
				if err == nil {
					spansAcked.Add(int64(tm.spans))
				} else {
					failed.Add(1)
					key := status.Code(err).String()
					if errors.Is(err, context.Canceled) {
						key = "canceled"
					}
					mu.Lock()
					errs[key]++
					mu.Unlock()
				}
			}
		}(conns[s])
	}
	wg.Wait()
	return loadStats{Requests: reqs.Load(), Failed: failed.Load(), SpansSent: spansSent.Load(), SpansAcked: spansAcked.Load(), Elapsed: time.Since(start), Errors: errs,
		WireBytes: wireBytes.Load(), PayloadBytes: payloadBytes.Load()}, nil
}
