package main

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // the OTLP exporters compress with gzip by default
	"google.golang.org/grpc/status"

	// The other compressors of the collector's gRPC clients (configgrpc
	// registers the same ones): the agent's exporter may use them.
	_ "github.com/mostynb/go-grpc-compression/nonclobbering/snappy"
	_ "github.com/mostynb/go-grpc-compression/nonclobbering/zstd"
)

// sink is the stand-in store: an OTLP/gRPC server on the pdata ptraceotlp,
// plogotlp and pmetricotlp server interfaces (the collector's own decoding
// code) that counts every span against the current run's tracker. delay,
// when set, is added to every traces export: a slow store (an export whose
// caller gives up first is not stored).
type sink struct {
	srv     *grpc.Server
	addr    string
	tracker atomic.Pointer[tracker]
	delay   atomic.Int64
}

func startSink(addr string) (*sink, error) {
	// The port may be held for a moment by an outgoing connection (the
	// harness's ports lie in Linux's ephemeral range): try a few times.
	var l net.Listener
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		return nil, err
	}
	s := &sink{addr: l.Addr().String()}
	counter := &byteCounter{wire: func() (*atomic.Int64, *atomic.Int64) {
		if t := s.tracker.Load(); t != nil {
			return &t.wireBytes, &t.payloadBytes
		}
		return nil, nil
	}, compression: func(enc string) {
		if t := s.tracker.Load(); t != nil {
			t.encodingsMu.Lock()
			if t.encodings == nil {
				t.encodings = map[string]int64{}
			}
			t.encodings[enc]++
			t.encodingsMu.Unlock()
		}
	}}
	s.srv = grpc.NewServer(grpc.MaxRecvMsgSize(64<<20), grpc.StatsHandler(counter))
	ptraceotlp.RegisterGRPCServer(s.srv, &traceSink{s: s})
	plogotlp.RegisterGRPCServer(s.srv, &logSink{s: s})
	pmetricotlp.RegisterGRPCServer(s.srv, &metricSink{s: s})
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

func (s *sink) stop() { s.srv.Stop() }

type traceSink struct {
	ptraceotlp.UnimplementedGRPCServer
	s *sink
}

func (ts *traceSink) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	// The run this export belongs to, before any wait: a late answer
	// counts in its own run, never in the next one.
	t := ts.s.tracker.Load()
	if d := time.Duration(ts.s.delay.Load()); d > 0 {
		// A slow store: the answer comes after d. A client that gave up
		// meanwhile (its timeout, the collector stopping) cancels the
		// call, and the export is not stored, as a store built on the
		// collector's OTLP receiver abandons a request whose context ends.
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ptraceotlp.NewExportResponse(), status.FromContextError(ctx.Err()).Err()
		}
		if t != nil {
			t.held.Add(1)
		}
	}
	if t == nil {
		return ptraceotlp.NewExportResponse(), nil
	}
	at := t.now()
	t.requests.Add(1)
	rss := req.Traces().ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				v, ok := sp.Attributes().Get(seqKey)
				if !ok {
					t.foreign.Add(1)
					continue
				}
				t.spanArrived([16]byte(sp.TraceID()), []byte(v.Str()), at)
			}
		}
	}
	return ptraceotlp.NewExportResponse(), nil
}

type logSink struct {
	plogotlp.UnimplementedGRPCServer
	s *sink
}

func (ls *logSink) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	if t := ls.s.tracker.Load(); t != nil {
		t.logs.Add(int64(req.Logs().LogRecordCount()))
	}
	return plogotlp.NewExportResponse(), nil
}

type metricSink struct {
	pmetricotlp.UnimplementedGRPCServer
	s *sink
}

func (ms *metricSink) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	if t := ms.s.tracker.Load(); t != nil {
		t.metrics.Add(int64(req.Metrics().DataPointCount()))
	}
	return pmetricotlp.NewExportResponse(), nil
}
