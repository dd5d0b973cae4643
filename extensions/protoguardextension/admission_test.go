package protoguardextension

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcmetadata "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/metadatatest"
	"github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/wirecheck"
)

// spans is a traces request of n spans with a name and 4 attributes.
func spans(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("GET /api/v1/items/{id}")
		sp.SetTraceID(pcommon.TraceID{1, byte(i)})
		sp.SetSpanID(pcommon.SpanID{1, byte(i)})
		for j := range 4 {
			sp.Attributes().PutStr(fmt.Sprintf("attribute.%d", j), "a value")
		}
	}
	return td
}

// estimate is the decoded-size estimate of td's protobuf request.
func estimate(t *testing.T, td ptrace.Traces) (int64, []byte) {
	t.Helper()
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	c, err := wirecheck.New(64, true)
	require.NoError(t, err)
	size, werr := c.CheckProtoSize(wirecheck.Traces, body)
	require.Nil(t, werr)
	return size, body
}

type answer struct {
	code       int
	status     *spb.Status
	retryAfter string
	err        error
}

// postOTLP posts body to url as contentType, with ctx and headers.
func postOTLP(ctx context.Context, url, contentType string, body []byte, headers ...string) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	msg, err := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), err: err, status: &spb.Status{}}
	if resp.StatusCode != http.StatusOK && err == nil {
		if contentType == jsonContentType {
			a.err = protojson.Unmarshal(msg, a.status)
		} else {
			a.err = proto.Unmarshal(msg, a.status)
		}
	}
	return a
}

func inFlight(g *guard) int64 { return g.budget.inFlight.Load() }

// TestTooLargeThroughOTLPReceiver: a request whose decoded-size estimate is
// over max_decoded_size is answered 413 (protobuf and JSON) and
// ResourceExhausted, naming the estimate and the limit, and never reaches
// the pipeline; one at the limit is delivered.
func TestTooLargeThroughOTLPReceiver(t *testing.T) {
	size, body := estimate(t, spans(100))
	bigSize, bigBody := estimate(t, spans(101))
	require.Greater(t, bigSize, size)
	jsonBody, err := ptraceotlp.NewExportRequestFromTraces(spans(101)).MarshalJSON()
	require.NoError(t, err)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := defaultConfig()
	cfg.MaxDecodedSize = size
	grpcAddr, httpAddr, s, g := otlpWithGuard(t, tel, cfg, nil)
	url := "http://" + httpAddr + "/v1/traces"
	ctx := context.Background()

	a := postOTLP(ctx, url, pbContentType, body)
	require.NoError(t, a.err)
	assert.Equal(t, http.StatusOK, a.code, "at max_decoded_size")
	want := fmt.Sprintf("protoguard: request would take about %s once decoded, over max_decoded_size %s; send it in smaller requests",
		wirecheck.FormatBytes(bigSize), wirecheck.FormatBytes(size))
	a = postOTLP(ctx, url, pbContentType, bigBody)
	require.NoError(t, a.err)
	assert.Equal(t, http.StatusRequestEntityTooLarge, a.code)
	assert.Equal(t, int32(codes.ResourceExhausted), a.status.Code)
	assert.Equal(t, want, a.status.Message)
	a = postOTLP(ctx, url, jsonContentType, jsonBody)
	require.NoError(t, a.err)
	assert.Equal(t, http.StatusRequestEntityTooLarge, a.code, "JSON")
	assert.Contains(t, a.status.Message, "over max_decoded_size "+wirecheck.FormatBytes(size))

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(spans(101)))
	assert.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	assert.Equal(t, want, status.Convert(err).Message())
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(spans(100)))
	assert.NoError(t, err)

	assert.Equal(t, 200, s.traces.SpanCount(), "the two requests at the limit, none of the others")
	metadatatest.AssertEqualProtoguardRequestsRefused(t, tel, refusedPoints(map[[2]string]int64{
		{"too_large", "http"}: 2, {"too_large", "grpc"}: 1,
	}), metricdatatest.IgnoreTimestamp())
	assert.Zero(t, inFlight(g))
	assertNothingPending(t, g)
}

// holdingTraces holds every request in the pipeline until release is
// closed or the request's context ends.
type holdingTraces struct {
	consumertest.TracesSink
	release chan struct{}
	held    atomic.Int64
}

func (h *holdingTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	h.held.Add(1)
	defer h.held.Add(-1)
	select {
	case <-h.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return h.TracesSink.ConsumeTraces(ctx, td)
}

func (*holdingTraces) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

// TestBudgetThroughOTLPReceiver: with max_in_flight_decoded room for two
// requests, two held in the pipeline (one per transport) make a third
// busy: 503 with Retry-After and Unavailable, naming the budget. The budget
// held comes back when a sender gives up (client cancellation, both
// transports) and when the pipeline answers, and admits again.
func TestBudgetThroughOTLPReceiver(t *testing.T) {
	size, body := estimate(t, spans(50))
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := defaultConfig()
	cfg.MaxDecodedSize = size
	cfg.MaxInFlightDecoded = 2*size + size/2
	hold := &holdingTraces{release: make(chan struct{})}
	grpcAddr, httpAddr, _, g := otlpWithGuardTraces(t, tel, cfg, nil, false, hold)
	url := "http://" + httpAddr + "/v1/traces"
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	client := ptraceotlp.NewGRPCClient(conn)
	req := ptraceotlp.NewExportRequestFromTraces(spans(50))

	// One request held per transport, each with a context its sender ends.
	httpCtx, cancelHTTP := context.WithCancel(context.Background())
	grpcCtx, cancelGRPC := context.WithCancel(context.Background())
	httpDone, grpcDone := make(chan answer, 1), make(chan error, 1)
	go func() { httpDone <- postOTLP(httpCtx, url, pbContentType, body) }()
	go func() {
		_, err := client.Export(grpcCtx, req)
		grpcDone <- err
	}()
	require.Eventually(t, func() bool { return hold.held.Load() == 2 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 2*size, inFlight(g))
	metadatatest.AssertEqualProtoguardDecodedInFlight(t, tel, []metricdata.DataPoint[int64]{{Value: 2 * size}}, metricdatatest.IgnoreTimestamp())

	want := fmt.Sprintf("protoguard: busy: decoding this request (about %s) would take the requests being decoded (%s) over max_in_flight_decoded %s; retry later",
		wirecheck.FormatBytes(size), wirecheck.FormatBytes(2*size), wirecheck.FormatBytes(cfg.MaxInFlightDecoded))
	a := postOTLP(context.Background(), url, pbContentType, body)
	require.NoError(t, a.err)
	assert.Equal(t, http.StatusServiceUnavailable, a.code)
	assert.Equal(t, "1", a.retryAfter)
	assert.Equal(t, int32(codes.Unavailable), a.status.Code)
	assert.Equal(t, want, a.status.Message)
	_, err = client.Export(context.Background(), req)
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	assert.Equal(t, want, status.Convert(err).Message())

	// The senders give up: their share comes back.
	cancelGRPC()
	assert.Equal(t, codes.Canceled, status.Code(<-grpcDone))
	require.Eventually(t, func() bool { return inFlight(g) == size }, 10*time.Second, 5*time.Millisecond)
	cancelHTTP()
	assert.ErrorIs(t, (<-httpDone).err, context.Canceled)
	require.Eventually(t, func() bool { return inFlight(g) == 0 }, 10*time.Second, 5*time.Millisecond)

	// Admitted again, and answered: nothing held after.
	close(hold.release)
	a = postOTLP(context.Background(), url, pbContentType, body)
	require.NoError(t, a.err)
	assert.Equal(t, http.StatusOK, a.code)
	_, err = client.Export(context.Background(), req)
	assert.NoError(t, err)
	assert.Equal(t, 100, hold.SpanCount())
	assert.Zero(t, inFlight(g))
	metadatatest.AssertEqualProtoguardDecodedInFlight(t, tel, []metricdata.DataPoint[int64]{{Value: 0}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProtoguardRequestsRefused(t, tel, refusedPoints(map[[2]string]int64{
		{"busy", "http"}: 1, {"busy", "grpc"}: 1,
	}), metricdatatest.IgnoreTimestamp())
	assertNothingPending(t, g)
}

// TestBudgetWhenTheReceiverNeverRuns: requests decoded but never handed to
// the receiver give their share back: gRPC requests without a valid token
// (grpc-go decodes before the authenticator's interceptor refuses them, so
// protoguard's interceptor never runs; the end of the RPC releases), a
// request pdata refuses to decode after the check passed it (a span ID of
// the wrong length: the codec releases), and over HTTP, requests the
// authenticator refuses before protoguard sees them.
func TestBudgetWhenTheReceiverNeverRuns(t *testing.T) {
	size, body := estimate(t, spans(20))
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := defaultConfig()
	cfg.MaxDecodedSize = size
	cfg.MaxInFlightDecoded = size
	grpcAddr, httpAddr, s, g := otlpWithGuardAuth(t, tel, cfg, nil, true)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	client := ptraceotlp.NewGRPCClient(conn)
	req := ptraceotlp.NewExportRequestFromTraces(spans(20))
	good := grpcmetadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer good")

	for range 5 { // each would leave the whole budget held if not released
		_, err := client.Export(context.Background(), req)
		assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
		a := postOTLP(context.Background(), "http://"+httpAddr+"/v1/traces", pbContentType, body)
		require.NoError(t, a.err)
		assert.Equal(t, http.StatusUnauthorized, a.code)
	}
	// A request of one span whose ID is 7 bytes long.
	raw := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), []byte{1, 2, 3, 4, 5, 6, 7}) // Span.span_id
	for _, num := range []protowire.Number{2, 2, 1} {                                                           // ScopeSpans.spans, ResourceSpans.scope_spans, request.resource_spans
		raw = protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), raw)
	}
	for range 5 {
		var reply []byte
		err := conn.Invoke(good, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", rawMessage(raw), &reply, grpc.ForceCodecV2(rawCodec{}))
		assert.Equal(t, codes.Internal, status.Code(err), "pdata refuses a 7-byte span ID: %v", err)
	}
	assert.Zero(t, inFlight(g))
	_, err = client.Export(good, req)
	assert.NoError(t, err, "the whole budget is free again")
	assert.Equal(t, 20, s.traces.SpanCount())
	assert.Zero(t, inFlight(g))
	assertNothingPending(t, g)
}

// TestBudgetReleasedOnPanic: a receiver that panics (recovered by an
// interceptor before protoguard's, or by net/http) gives its share back.
func TestBudgetReleasedOnPanic(t *testing.T) {
	size, body := estimate(t, spans(10))
	cfg := defaultConfig()
	cfg.MaxDecodedSize = size
	cfg.MaxInFlightDecoded = size
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	ext, err := NewFactory().Create(context.Background(), metadatatest.NewSettings(tel), cfg)
	require.NoError(t, err)
	g := ext.(*guard)
	t.Cleanup(func() { assert.NoError(t, g.Shutdown(context.Background())) })

	h, err := g.GetHTTPHandler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("receiver bug") }))
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the recovered panics
	srv.Start()
	t.Cleanup(srv.Close)
	for range 3 {
		a := postOTLP(context.Background(), srv.URL+"/v1/traces", pbContentType, body)
		assert.Error(t, a.err, "net/http drops the connection of a handler that panics")
		assert.Zero(t, inFlight(g))
	}

	opts, err := g.GetGRPCServerOptions()
	require.NoError(t, err)
	recovering := grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = status.Errorf(codes.Internal, "recovered: %v", r)
			}
		}()
		return handler(ctx, req)
	})
	gs := grpc.NewServer(append([]grpc.ServerOption{recovering}, opts...)...)
	ptraceotlp.RegisterGRPCServer(gs, &panickingTraces{})
	addr := testPort(t)
	lis, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	for range 3 {
		_, err := ptraceotlp.NewGRPCClient(conn).Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(spans(10)))
		assert.Equal(t, codes.Internal, status.Code(err), "%v", err)
		assert.Contains(t, status.Convert(err).Message(), "recovered: receiver bug")
		assert.Zero(t, inFlight(g))
	}
	assertNothingPending(t, g)
}

type panickingTraces struct {
	ptraceotlp.UnimplementedGRPCServer
}

func (*panickingTraces) Export(context.Context, ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	panic("receiver bug")
}

// slowTraces takes 10 ms to accept each request.
type slowTraces struct{ consumertest.TracesSink }

func (s *slowTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	time.Sleep(10 * time.Millisecond)
	return s.TracesSink.ConsumeTraces(ctx, td)
}

// TestBudgetConcurrent: 120 requests at once over both transports, into a
// pipeline that takes 10 ms each, with room in the budget for 4: every one
// is delivered or refused busy, some are busy, what was acknowledged is
// what the pipeline got, and the budget is back to 0.
func TestBudgetConcurrent(t *testing.T) {
	size, body := estimate(t, spans(200))
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := defaultConfig()
	cfg.MaxDecodedSize = size
	cfg.MaxInFlightDecoded = 4 * size
	slow := &slowTraces{}
	grpcAddr, httpAddr, _, g := otlpWithGuardTraces(t, tel, cfg, nil, false, slow)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	req := ptraceotlp.NewExportRequestFromTraces(spans(200))
	const n = 120
	var ok, busy, other atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, err := ptraceotlp.NewGRPCClient(conn).Export(context.Background(), req)
				switch status.Code(err) {
				case codes.OK:
					ok.Add(1)
				case codes.Unavailable:
					busy.Add(1)
				default:
					other.Add(1)
				}
				return
			}
			a := postOTLP(context.Background(), "http://"+httpAddr+"/v1/traces", pbContentType, body)
			switch {
			case a.err == nil && a.code == http.StatusOK:
				ok.Add(1)
			case a.err == nil && a.code == http.StatusServiceUnavailable:
				busy.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d requests: %d delivered, %d busy", n, ok.Load(), busy.Load())
	assert.Zero(t, other.Load())
	assert.Equal(t, int64(n), ok.Load()+busy.Load())
	assert.Positive(t, ok.Load())
	assert.Positive(t, busy.Load())
	assert.Equal(t, int(ok.Load())*200, slow.SpanCount(), "acknowledged = delivered")
	assert.Zero(t, inFlight(g))
	assertNothingPending(t, g)
}

// TestBudgetDisabled: max_in_flight_decoded 0 admits every request under
// max_decoded_size, and the gauge reads 0.
func TestBudgetDisabled(t *testing.T) {
	_, body := estimate(t, spans(10))
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := defaultConfig()
	cfg.MaxInFlightDecoded = 0
	_, httpAddr, s, g := otlpWithGuard(t, tel, cfg, nil)
	assert.Nil(t, g.budget)
	a := postOTLP(context.Background(), "http://"+httpAddr+"/v1/traces", pbContentType, body)
	require.NoError(t, a.err)
	assert.Equal(t, http.StatusOK, a.code)
	assert.Equal(t, 10, s.traces.SpanCount())
	metadatatest.AssertEqualProtoguardDecodedInFlight(t, tel, []metricdata.DataPoint[int64]{{Value: 0}}, metricdatatest.IgnoreTimestamp())
}
