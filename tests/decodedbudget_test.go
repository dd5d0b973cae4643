package tests

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
)

// budgetRequest is an OTLP traces request of n spans in traces of 100,
// each span with its outage.seq (first + its index) and 100 small int
// attributes that tagguard denies (user.0 to user.9): decoding it costs
// about 10 KB a span (protoguard's estimate), exporting it next to nothing.
func budgetRequest(first, n int) []byte {
	kv := func(key string, v int64) []byte {
		value := protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), uint64(v)) // AnyValue.int_value
		b := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), key)
		return protowire.AppendBytes(protowire.AppendTag(b, 2, protowire.BytesType), value)
	}
	var denied []byte
	for i := range 100 {
		denied = protowire.AppendBytes(protowire.AppendTag(denied, 9, protowire.BytesType), kv(fmt.Sprintf("user.%d", i%10), int64(i)))
	}
	var spans []byte
	for i := range n {
		seq := first + i
		trace := seq / 100
		s := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), // Span.trace_id
			[]byte{0xb, 0x0d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(trace >> 24), byte(trace >> 16), byte(trace >> 8), byte(trace)})
		s = protowire.AppendBytes(protowire.AppendTag(s, 2, protowire.BytesType), // Span.span_id
			[]byte{0xb, 0, 0, 0, byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq)})
		s = protowire.AppendString(protowire.AppendTag(s, 5, protowire.BytesType), "budget") // Span.name
		s = protowire.AppendBytes(protowire.AppendTag(s, 9, protowire.BytesType), kv("outage.seq", int64(seq)))
		s = append(s, denied...)
		spans = protowire.AppendBytes(protowire.AppendTag(spans, 2, protowire.BytesType), s) // ScopeSpans.spans
	}
	scope := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), spans) // ResourceSpans.scope_spans
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), scope)   // request.resource_spans
}

// TestGatewayDecodedBudget: 8 OTLP/HTTP requests at once, each just under
// protoguard's max_decoded_size (12,600 spans: about 124 MiB once decoded,
// 17.6 MiB on the wire; 14,000 spans are refused 413), at the shipped
// gateway, whose max_in_flight_decoded (512 MiB) takes 4 of them at a time.
// Some are answered 503 busy, with Retry-After (retryable); the gateway's
// peak RSS stays bounded and it stays healthy; each busy request is
// admitted when sent again, and every span acknowledged reaches Tempo.
// About 15 s.
func TestGatewayDecodedBudget(t *testing.T) {
	var tempo seqCounter
	l := listen(t)
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	ptraceotlp.RegisterGRPCServer(srv, &countingTempo{c: &tempo})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	col := startGatewayWith(t, "http://127.0.0.1:1", l.Addr().String(), []string{
		"FABRIC_SAMPLE_INITIAL_RATE=1", "FABRIC_SAMPLE_SPANS_PER_SEC=100000000",
	})

	const (
		concurrent = 8
		perRequest = 12_600
	)
	bodies := make([][]byte, concurrent)
	for r := range bodies {
		bodies[r] = budgetRequest(r*perRequest, perRequest)
	}
	type answer struct {
		code       int
		msg        string
		retryAfter string
	}
	post := func(body []byte) answer {
		req, err := http.NewRequest(http.MethodPost, "http://"+col.HTTP+"/v1/traces", bytes.NewReader(body))
		if err != nil {
			return answer{msg: err.Error()}
		}
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Authorization", "Bearer "+gwToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return answer{msg: err.Error()}
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, string(b), resp.Header.Get("Retry-After")}
	}
	before := peakRSS(t, col.cmd.Process.Pid)
	start := time.Now()
	answers := make([]answer, concurrent)
	var wg sync.WaitGroup
	for r := range concurrent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[r] = post(bodies[r])
		}()
	}
	wg.Wait()
	took := time.Since(start)
	after := peakRSS(t, col.cmd.Process.Pid)

	var acked []int
	var busy []int
	for r, a := range answers {
		switch {
		case a.code == http.StatusOK:
			for i := range perRequest {
				acked = append(acked, r*perRequest+i)
			}
		case a.code == http.StatusServiceUnavailable && bytes.Contains([]byte(a.msg), []byte("protoguard: busy")):
			assert.Equal(t, "1", a.retryAfter)
			assert.Contains(t, a.msg, "over max_in_flight_decoded 512.0 MiB; retry later")
			busy = append(busy, r)
		default:
			t.Errorf("request %d: %d %.200q", r, a.code, a.msg)
		}
	}
	t.Logf("%d requests at once: %d acknowledged, %d busy in %v; peak RSS %d -> %d MiB",
		concurrent, len(acked)/perRequest, len(busy), took.Round(time.Millisecond), before>>20, after>>20)
	assert.NotEmpty(t, busy, "max_in_flight_decoded takes 4 of 8")
	assert.NotEmpty(t, acked)
	// 4 requests decoding (about 500 MiB as pdata allocates it, and the
	// copy the traces/profilelink pipeline gets) and the 8 bodies read:
	// 708 to 860 MiB in 5 runs here; with max_in_flight_decoded 0 all 8 are
	// decoded at once, 1,570 MiB.
	assert.Less(t, after-before, int64(1152<<20), "peak RSS grew by %d MiB", (after-before)>>20)

	// Busy is retryable: sent again one at a time, each is admitted.
	for _, r := range busy {
		a := post(bodies[r])
		require.Equal(t, http.StatusOK, a.code, "request %d sent again: %.200q", r, a.msg)
		for i := range perRequest {
			acked = append(acked, r*perRequest+i)
		}
	}
	code, msg := postAuth(t, col, "/v1/traces", budgetRequest(100_000_000, 14_000), gwToken)
	assert.Equal(t, http.StatusRequestEntityTooLarge, code, "14,000 spans are over max_decoded_size: %q", msg)
	assert.Contains(t, msg, "over max_decoded_size 128.0 MiB")
	resp, err := http.Get("http://" + col.Health + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the gateway is healthy")
	select {
	case <-col.done:
		t.Fatalf("the gateway died: %v", col.exitErr)
	default:
	}
	var delivered, dups int
	assert.Eventually(t, func() bool {
		delivered, dups = tempo.count(acked)
		return delivered == len(acked)
	}, 60*time.Second, 200*time.Millisecond, "Tempo has every acknowledged span")
	t.Logf("acknowledged %d spans, Tempo got %d (%d duplicates); peak RSS after all %d MiB, in %v",
		len(acked), delivered, dups, peakRSS(t, col.cmd.Process.Pid)>>20, time.Since(start).Round(time.Millisecond))
}
