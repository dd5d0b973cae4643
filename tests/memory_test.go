package tests

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestLargeSpansIn2GiB runs the shipped gateway in a 2 GiB memory cgroup (the
// Deployment's limit) and offers it 4,000 spans/s with a 16 KiB attribute
// each (64 MB/s; traces of 10 spans) for 15 s from 4 gRPC senders that retry what is refused, as
// SDKs do, with every trace kept by tail sampling so counts are exact. The
// gateway must not be OOM-killed, must refuse what it cannot hold with a
// retryable error, and must deliver every span it acknowledged to Tempo.
// (Issue #13: RSS 1.0 -> 2.06 GB within a second, OOM-killed at ~16 s,
// 46,000 acknowledged spans lost.)
//
// It runs in `make reliability` only (FABRIC_RELIABILITY_LONG=1): on a
// 2-core machine the exporters need minutes to deliver the backlog.
func TestLargeSpansIn2GiB(t *testing.T) {
	if os.Getenv("FABRIC_RELIABILITY_LONG") == "" {
		t.Skip("long: `make reliability` runs it (FABRIC_RELIABILITY_LONG=1)")
	}
	var tempoCount seqCounter
	tempo := newRestartable(t, func(l net.Listener) func() {
		srv := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
		ptraceotlp.RegisterGRPCServer(srv, &countingTempo{c: &tempoCount})
		go func() { _ = srv.Serve(l) }()
		return srv.Stop
	})
	vendorURL, _ := otlpHTTPStandIn(t, "/v1/")
	lokiURL, _ := otlpHTTPStandIn(t, "/otlp/v1/")
	esURL, _ := elasticsearchStandIn(t)
	col := startCollectorEnv(t, []string{
		"FABRIC_TEST_CGROUP_MEMORY=2147483648",
		"FABRIC_QUEUEWATCH_ENDPOINT=127.0.0.1:0",
		"FABRIC_INGEST_TOKEN=" + gwToken,
		"FABRIC_QUEUE_DIR=" + t.TempDir(),
		"FABRIC_TEMPO_ENDPOINT=" + tempo.addr,
		"FABRIC_VENDOR_OTLP_ENDPOINT=" + vendorURL,
		"FABRIC_LOKI_OTLP_ENDPOINT=" + lokiURL + "/otlp",
		"FABRIC_ELASTICSEARCH_ENDPOINT=" + esURL,
		"FABRIC_PROMETHEUS_RW_ENDPOINT=http://127.0.0.1:1/api/v1/write",
		"FABRIC_FLUENTFORWARD_ENDPOINT=127.0.0.1:0",
		"FABRIC_PPROF_ENDPOINT=127.0.0.1:0",
		"FABRIC_ZPAGES_ENDPOINT=127.0.0.1:0",
		"FABRIC_TAIL_DECISION_WAIT=" + envOr("FABRIC_TEST_DECISION_WAIT", "10s"),
		"FABRIC_SAMPLE_PERCENT=100",
		"FABRIC_SAMPLE_SPANS_PER_SEC=10000000",
	}, "--config", gatewayConfig())

	const (
		senders   = 4
		perBatch  = 100
		perSecond = 4000
		attrSize  = 16 << 10
	)
	duration := 15 * time.Second
	big := strings.Repeat("x", attrSize)
	conn, err := grpc.NewClient(col.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+gwToken)

	var (
		mu       sync.Mutex
		acked    []int
		refused  = map[string]int{}
		next     atomic.Int64
		stopAt   = time.Now().Add(duration)
		wg       sync.WaitGroup
		interval = time.Duration(int64(time.Second) * perBatch * senders / perSecond)
	)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for time.Now().Before(stopAt) {
				first := int(next.Add(perBatch)) - perBatch
				td := ptrace.NewTraces()
				spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
				for i := range perBatch {
					s := spans.AppendEmpty()
					s.SetName("big")
					// Traces of 10 spans: 400 new traces/s, within what the
					// shipped num_traces (40000) holds for decision_wait.
					s.SetTraceID(pcommon.TraceID{byte(first >> 24), byte(first >> 16), byte(first >> 8), byte(first), byte(i / 10), 1})
					s.SetSpanID(pcommon.SpanID{byte(i), 1})
					s.Attributes().PutInt("outage.seq", int64(first+i))
					s.Attributes().PutStr("payload", big)
				}
				// Retry a refusal, as an SDK does, until the run ends.
				for time.Now().Before(stopAt.Add(30 * time.Second)) {
					cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					_, err := client.Export(cctx, ptraceotlp.NewExportRequestFromTraces(td))
					cancel()
					if err == nil {
						mu.Lock()
						for i := range perBatch {
							acked = append(acked, first+i)
						}
						mu.Unlock()
						break
					}
					mu.Lock()
					refused[status.Code(err).String()]++
					mu.Unlock()
					select {
					case <-col.done:
						return
					case <-time.After(200 * time.Millisecond):
					}
				}
				<-tick.C
			}
		}()
	}
	wg.Wait()
	select {
	case <-col.done:
		peak, failcnt := cgroupPeak(t, col.Cgroup)
		t.Fatalf("the gateway died under load (%v); cgroup peak %d MiB, limit hit %d times", col.exitErr, peak>>20, failcnt)
	default:
	}
	mu.Lock()
	ackedCopy := append([]int(nil), acked...)
	mu.Unlock()
	var delivered, dups int
	assert.Eventually(t, func() bool {
		delivered, dups = tempoCount.count(ackedCopy)
		return delivered == len(ackedCopy)
	}, 8*time.Minute, time.Second, "Tempo did not receive every acknowledged span")
	peak, failcnt := cgroupPeak(t, col.Cgroup)
	assert.Zero(t, failcnt, "the cgroup limit was never reached")
	t.Logf("offered %d spans, acknowledged %d, delivered %d (duplicates %d), refusals %v; cgroup peak %d MiB of 2048, limit hit %d times",
		next.Load(), len(ackedCopy), delivered, dups, refused, peak>>20, failcnt)
	assert.Positive(t, len(ackedCopy))
	reliability.record("Overload with 16 KiB spans in a 2 GiB memory cgroup",
		"FABRIC_BIN=bin/otelcol-fabric go test -count=1 -run TestLargeSpansIn2GiB ./tests/",
		fmt.Sprintf("Shipped configs/gateway.yaml in a 2 GiB cgroup (v1 memory controller), 4 gRPC senders offering 4,000 spans/s "+
			"with a 16 KiB attribute each for %s, retrying refusals; tail sampling keeps every trace (decision_wait %s).\n\n"+
			"| offered | acknowledged | delivered to Tempo | lost | duplicates | refusals (retryable, by gRPC code) | cgroup peak | OOM kill |\n"+
			"| --- | --- | --- | --- | --- | --- | --- | --- |\n| %d | %d | %d | %d | %d | %v | %d MiB | no |",
			duration, envOr("FABRIC_TEST_DECISION_WAIT", "10s"), next.Load(), len(ackedCopy), delivered, len(ackedCopy)-delivered, dups, refused, peak>>20))
	// Not terminate(): a graceful stop waits for the stores' exports in
	// progress, which on 2 cores can outlast the test; the cleanup kills it.
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
