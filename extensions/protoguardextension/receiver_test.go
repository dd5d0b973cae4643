package protoguardextension

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/pdata/testdata"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/collector/receiver/xreceiver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	grpcmetadata "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/metadatatest"
)

// testPort returns a free loopback port in 39000-39199, the range these
// tests may bind.
func testPort(t *testing.T) string {
	t.Helper()
	for p := 39000 + time.Now().Nanosecond()%200; ; p = 39000 + (p-39000+1)%200 {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			addr := l.Addr().String()
			require.NoError(t, l.Close())
			return addr
		}
	}
}

// host hands the receivers the protoguard extension.
type host struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.exts }

type sinks struct {
	traces   consumertest.TracesSink
	metrics  consumertest.MetricsSink
	logs     consumertest.LogsSink
	profiles consumertest.ProfilesSink
}

// otlpWithGuard starts a real otlp receiver (all four signals, gRPC and
// HTTP) whose servers list protoguard under middlewares, as the shipped
// configs do. It returns the gRPC and HTTP addresses.
func otlpWithGuard(t *testing.T, tel *componenttest.Telemetry, guardCfg *Config, httpExtra map[string]any) (string, string, *sinks, *guard) {
	t.Helper()
	return otlpWithGuardAuth(t, tel, guardCfg, httpExtra, false)
}

// tokenAuth accepts the bearer token "good" only.
type tokenAuth struct {
	component.StartFunc
	component.ShutdownFunc
}

func (tokenAuth) Authenticate(ctx context.Context, headers map[string][]string) (context.Context, error) {
	for k, v := range headers {
		if strings.EqualFold(k, "authorization") && len(v) == 1 && v[0] == "Bearer good" {
			return ctx, nil
		}
	}
	return ctx, errors.New("no valid token")
}

// otlpWithGuardAuth is otlpWithGuard, with both servers behind tokenAuth when auth is set.
func otlpWithGuardAuth(t *testing.T, tel *componenttest.Telemetry, guardCfg *Config, httpExtra map[string]any, auth bool) (string, string, *sinks, *guard) {
	t.Helper()
	return otlpWithGuardTraces(t, tel, guardCfg, httpExtra, auth, nil)
}

// otlpWithGuardTraces is otlpWithGuardAuth, with traces going to traces
// instead of the sink when it is not nil.
func otlpWithGuardTraces(t *testing.T, tel *componenttest.Telemetry, guardCfg *Config, httpExtra map[string]any, auth bool, traces consumer.Traces) (string, string, *sinks, *guard) {
	t.Helper()
	ctx := context.Background()
	set := metadatatest.NewSettings(tel)
	ext, err := NewFactory().Create(ctx, set, guardCfg)
	require.NoError(t, err)
	id := component.NewID(metadata.Type)
	h := host{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{id: ext, component.MustNewID("tokenauth"): tokenAuth{}}}
	require.NoError(t, ext.Start(ctx, h))
	t.Cleanup(func() { assert.NoError(t, ext.Shutdown(ctx)) })

	// testPort's port is free when it is picked, not necessarily when the
	// receiver binds it (other processes on the machine pick ports too):
	// on "address already in use", start again on two other ports.
	var grpcAddr, httpAddr string
	var s *sinks
	for attempt := 0; ; attempt++ {
		grpcAddr, httpAddr = testPort(t), testPort(t)
		httpCfg := map[string]any{"endpoint": httpAddr, "middlewares": []any{map[string]any{"id": "protoguard"}}}
		for k, v := range httpExtra {
			httpCfg[k] = v
		}
		grpcCfg := map[string]any{"endpoint": grpcAddr, "middlewares": []any{map[string]any{"id": "protoguard"}}}
		if auth {
			grpcCfg["auth"] = map[string]any{"authenticator": "tokenauth"}
			httpCfg["auth"] = map[string]any{"authenticator": "tokenauth"}
		}
		f := otlpreceiver.NewFactory()
		cfg := f.CreateDefaultConfig()
		require.NoError(t, confmap.NewFromStringMap(map[string]any{"protocols": map[string]any{
			"grpc": grpcCfg,
			"http": httpCfg,
		}}).Unmarshal(cfg))
		s = &sinks{}
		rset := receivertest.NewNopSettings(f.Type())
		tc := traces
		if tc == nil {
			tc = &s.traces
		}
		tr, err := f.CreateTraces(ctx, rset, cfg, tc)
		require.NoError(t, err)
		mr, err := f.CreateMetrics(ctx, rset, cfg, &s.metrics)
		require.NoError(t, err)
		lr, err := f.CreateLogs(ctx, rset, cfg, &s.logs)
		require.NoError(t, err)
		pr, err := f.(xreceiver.Factory).CreateProfiles(ctx, rset, cfg, &s.profiles)
		require.NoError(t, err)
		var started []component.Component
		for _, r := range []component.Component{tr, mr, lr, pr} {
			if err = r.Start(ctx, h); err != nil {
				break
			}
			started = append(started, r)
		}
		if err != nil {
			for _, r := range started {
				_ = r.Shutdown(ctx)
			}
			if attempt < 5 && strings.Contains(err.Error(), "address already in use") {
				continue
			}
			require.NoError(t, err)
		}
		for _, r := range started {
			t.Cleanup(func() { assert.NoError(t, r.Shutdown(ctx)) })
		}
		break
	}
	return grpcAddr, httpAddr, s, ext.(*guard)
}

func defaultConfig() *Config { return createDefaultConfig().(*Config) }

// nested is a value of exactly levels AnyValue levels (a string is 1).
func nested(v pcommon.Value, levels int) {
	for ; levels > 1; levels-- {
		v = v.SetEmptyMap().PutEmpty("a")
	}
	v.SetStr("leaf")
}

func deepTraces(levels int) ptrace.Traces {
	td := testdata.GenerateTraces(1)
	nested(td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutEmpty("deep"), levels)
	return td
}

func deepMetrics(levels int) pmetric.Metrics {
	md := testdata.GenerateMetrics(1)
	nested(md.ResourceMetrics().At(0).Resource().Attributes().PutEmpty("deep"), levels)
	return md
}

func deepLogs(levels int) plog.Logs {
	ld := testdata.GenerateLogs(1)
	nested(ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body(), levels)
	return ld
}

func deepProfiles(levels int) pprofile.Profiles {
	pd := testdata.GenerateProfiles(1)
	nested(pd.Dictionary().AttributeTable().At(0).Value(), levels)
	return pd
}

func refusedPoints(counts map[[2]string]int64) []metricdata.DataPoint[int64] {
	var dps []metricdata.DataPoint[int64]
	for k, v := range counts {
		dps = append(dps, metricdata.DataPoint[int64]{
			Value:      v,
			Attributes: attribute.NewSet(attribute.String("reason", k[0]), attribute.String("transport", k[1])),
		})
	}
	return dps
}

// TestThroughOTLPReceiverGRPC: every signal over gRPC to a real otlp
// receiver: valid and at-limit requests are delivered; too deep, invalid
// UTF-8 and garbage are answered InvalidArgument naming the cause, and
// never reach the pipeline.
func TestThroughOTLPReceiverGRPC(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	grpcAddr, _, s, g := otlpWithGuard(t, tel, defaultConfig(), nil)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	export := func(sig string, levels int) error {
		var err error
		switch sig {
		case "traces":
			_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(deepTraces(levels)))
		case "metrics":
			_, err = pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(deepMetrics(levels)))
		case "logs":
			_, err = plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(deepLogs(levels)))
		case "profiles":
			_, err = pprofileotlp.NewGRPCClient(conn).Export(ctx, pprofileotlp.NewExportRequestFromProfiles(deepProfiles(levels)))
		}
		return err
	}
	for _, sig := range []string{"traces", "metrics", "logs", "profiles"} {
		require.NoError(t, export(sig, 64), "%s at max_depth", sig)
		err := export(sig, 65)
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "%s over max_depth: %v", sig, err)
		assert.Contains(t, status.Convert(err).Message(), "protoguard: attribute nesting deeper than max_depth 64 at byte offset ", sig)
		err = export(sig, 100_000)
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "%s 100,000 deep: %v", sig, err)
	}
	assert.Equal(t, 1, s.traces.SpanCount())
	assert.Equal(t, 1, len(s.metrics.AllMetrics()))
	assert.Equal(t, 1, s.logs.LogRecordCount())
	assert.Equal(t, 1, len(s.profiles.AllProfiles()))

	bad := testdata.GenerateTraces(1)
	bad.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetName("bad \xff\xfe name")
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(bad))
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "invalid UTF-8: %v", err)
	assert.Contains(t, status.Convert(err).Message(), "protoguard: invalid UTF-8 in string field opentelemetry.proto.trace.v1.Span.name at byte offset ")

	for _, method := range []string{
		"/opentelemetry.proto.collector.trace.v1.TraceService/Export",
		"/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
		"/opentelemetry.proto.collector.logs.v1.LogsService/Export",
		"/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
	} {
		var reply []byte
		err = conn.Invoke(ctx, method, rawMessage("\xff\xff\xff garbage"), &reply, grpc.ForceCodecV2(rawCodec{}))
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "%s garbage: %v", method, err)
		assert.Contains(t, status.Convert(err).Message(), "protoguard: malformed protobuf at byte offset 0", method)
	}
	assert.Equal(t, 1, s.traces.SpanCount(), "nothing refused reached the pipeline")

	metadatatest.AssertEqualProtoguardRequestsRefused(t, tel, refusedPoints(map[[2]string]int64{
		{"depth", "grpc"}: 8, {"utf8", "grpc"}: 1, {"malformed", "grpc"}: 4,
	}), metricdatatest.IgnoreTimestamp())
	assertNothingPending(t, g)
}

// TestGRPCConcurrentVerdicts: refusals go to their own RPC only, with
// valid and refused requests interleaved on one connection.
func TestGRPCConcurrentVerdicts(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	grpcAddr, _, s, g := otlpWithGuard(t, tel, defaultConfig(), nil)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	valid := ptraceotlp.NewExportRequestFromTraces(deepTraces(3))
	deep := ptraceotlp.NewExportRequestFromTraces(deepTraces(200))
	const n = 200
	codesSeen := make([]codes.Code, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := valid
			if i%2 == 1 {
				req = deep
			}
			_, err := ptraceotlp.NewGRPCClient(conn).Export(context.Background(), req)
			codesSeen[i] = status.Code(err)
		}()
	}
	wg.Wait()
	for i, c := range codesSeen {
		want := codes.OK
		if i%2 == 1 {
			want = codes.InvalidArgument
		}
		assert.Equal(t, want, c, "request %d", i)
	}
	assert.Equal(t, n/2, s.traces.SpanCount())
	assertNothingPending(t, g)
}

// TestAuthenticationFirst: behind an authenticator, a refused request
// without a valid token is answered Unauthenticated (401), not
// InvalidArgument, is not counted, and leaves nothing behind; with the token,
// it is refused.
func TestAuthenticationFirst(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	grpcAddr, httpAddr, s, g := otlpWithGuardAuth(t, tel, defaultConfig(), nil, true)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	deep := ptraceotlp.NewExportRequestFromTraces(deepTraces(200))
	deepBody, err := deep.MarshalProto()
	require.NoError(t, err)
	for _, tok := range []string{"", "bad", "good"} {
		ctx := context.Background()
		if tok != "" {
			ctx = grpcmetadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
		}
		_, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, deep)
		req, rerr := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/traces", bytes.NewReader(deepBody))
		require.NoError(t, rerr)
		req.Header.Set("Content-Type", pbContentType)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, rerr := http.DefaultClient.Do(req)
		require.NoError(t, rerr)
		resp.Body.Close()
		if tok == "good" {
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "token %q: %v", tok, err)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		} else {
			assert.Equal(t, codes.Unauthenticated, status.Code(err), "token %q: %v", tok, err)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		}
	}
	assert.Zero(t, s.traces.SpanCount())
	metadatatest.AssertEqualProtoguardRequestsRefused(t, tel, refusedPoints(map[[2]string]int64{
		{"depth", "grpc"}: 1, {"depth", "http"}: 1,
	}), metricdatatest.IgnoreTimestamp())
	assertNothingPending(t, g)
}

func assertNothingPending(t *testing.T, g *guard) {
	t.Helper()
	n := 0
	g.pending.Range(func(any, any) bool { n++; return true })
	assert.Zero(t, n, "refusals left in the hand-over map")
}

// TestThroughOTLPReceiverHTTP: the same over OTLP/HTTP, protobuf and JSON,
// plain and gzipped (checked after confighttp decompressed it): 400 with a
// google.rpc.Status in the request's encoding, as the otlp receiver answers.
func TestThroughOTLPReceiverHTTP(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	_, httpAddr, s, _ := otlpWithGuard(t, tel, defaultConfig(), map[string]any{"max_request_body_size": 4 << 20})

	post := func(path, contentType, encoding string, body []byte) (int, *spb.Status, string) {
		if encoding == "gzip" {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			_, _ = zw.Write(body)
			require.NoError(t, zw.Close())
			body = z.Bytes()
		}
		req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+path, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", contentType)
		if encoding != "" {
			req.Header.Set("Content-Encoding", encoding)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		msg, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		st := &spb.Status{}
		if resp.StatusCode != http.StatusOK {
			if contentType == jsonContentType {
				assert.NoError(t, protojson.Unmarshal(msg, st), "%s", msg)
			} else {
				assert.NoError(t, proto.Unmarshal(msg, st), "%q", msg)
			}
			assert.Equal(t, contentType, resp.Header.Get("Content-Type"))
		}
		return resp.StatusCode, st, string(msg)
	}
	type request struct {
		path          string
		proto, json   func(int) []byte
		itemsDeliverd func() int
	}
	mustP := func(b []byte, err error) []byte { require.NoError(t, err); return b }
	requests := []request{
		{"/v1/traces",
			func(l int) []byte { return mustP(ptraceotlp.NewExportRequestFromTraces(deepTraces(l)).MarshalProto()) },
			func(l int) []byte { return mustP(ptraceotlp.NewExportRequestFromTraces(deepTraces(l)).MarshalJSON()) },
			s.traces.SpanCount},
		{"/v1/metrics",
			func(l int) []byte {
				return mustP(pmetricotlp.NewExportRequestFromMetrics(deepMetrics(l)).MarshalProto())
			},
			func(l int) []byte {
				return mustP(pmetricotlp.NewExportRequestFromMetrics(deepMetrics(l)).MarshalJSON())
			},
			func() int { return len(s.metrics.AllMetrics()) }},
		{"/v1/logs",
			func(l int) []byte { return mustP(plogotlp.NewExportRequestFromLogs(deepLogs(l)).MarshalProto()) },
			func(l int) []byte { return mustP(plogotlp.NewExportRequestFromLogs(deepLogs(l)).MarshalJSON()) },
			s.logs.LogRecordCount},
		{"/v1development/profiles",
			func(l int) []byte {
				return mustP(pprofileotlp.NewExportRequestFromProfiles(deepProfiles(l)).MarshalProto())
			},
			func(l int) []byte {
				return mustP(pprofileotlp.NewExportRequestFromProfiles(deepProfiles(l)).MarshalJSON())
			},
			func() int { return len(s.profiles.AllProfiles()) }},
	}
	for _, r := range requests {
		for _, enc := range []string{"", "gzip"} {
			code, _, msg := post(r.path, pbContentType, enc, r.proto(64))
			assert.Equal(t, http.StatusOK, code, "%s %s at max_depth: %s", r.path, enc, msg)
			code, _, msg = post(r.path, jsonContentType, enc, r.json(64))
			assert.Equal(t, http.StatusOK, code, "%s %s JSON at max_depth: %s", r.path, enc, msg)

			code, st, _ := post(r.path, pbContentType, enc, r.proto(65))
			assert.Equal(t, http.StatusBadRequest, code, r.path)
			assert.Equal(t, int32(codes.InvalidArgument), st.Code)
			assert.Contains(t, st.Message, "protoguard: attribute nesting deeper than max_depth 64 at byte offset ", r.path)
			// JSON: 4 brackets a level; max_depth+4 levels are over the limit wherever they sit.
			code, st, _ = post(r.path, jsonContentType, enc, r.json(64+4))
			assert.Equal(t, http.StatusBadRequest, code, r.path)
			assert.Equal(t, int32(codes.InvalidArgument), st.Code)
			assert.Contains(t, st.Message, "protoguard: JSON nesting deeper than 267 brackets (max_depth 64) at byte offset ", r.path)
		}
		assert.Equal(t, 4, r.itemsDeliverd(), "%s: the four requests at max_depth, none of the others", r.path)
	}

	bad := testdata.GenerateTraces(1)
	bad.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("k\xff", "v")
	code, st, _ := post("/v1/traces", pbContentType, "", mustP(ptraceotlp.NewExportRequestFromTraces(bad).MarshalProto()))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, st.Message, "protoguard: invalid UTF-8 in string field opentelemetry.proto.common.v1.KeyValue.key at byte offset ")
	code, st, _ = post("/v1/logs", jsonContentType, "", []byte(`{"resourceLogs":[{"resource":{"attributes":[{"key":"k","value":{"stringValue":"`+"\xff"+`"}}]}}]}`))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, st.Message, "protoguard: invalid UTF-8 in JSON at byte offset 79")
	code, st, _ = post("/v1/traces", pbContentType, "", []byte("\xff\xff\xff\xff not protobuf"))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, st.Message, "protoguard: malformed protobuf at byte offset 0 in opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest")

	// What protoguard does not check goes to the receiver as it came: a
	// body over max_request_body_size (the receiver's own 400), another
	// content type (415), another method (405).
	code, _, msg := post("/v1/traces", pbContentType, "", bytes.Repeat([]byte{0x0a, 0x00}, 3<<20))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, msg, "request body too large")
	req, err := http.NewRequest(http.MethodPost, "http://"+httpAddr+"/v1/traces", strings.NewReader("x"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
	resp, err = http.Get("http://" + httpAddr + "/v1/traces")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	metadatatest.AssertEqualProtoguardRequestsRefused(t, tel, refusedPoints(map[[2]string]int64{
		{"depth", "http"}: 16, {"utf8", "http"}: 2, {"malformed", "http"}: 1,
	}), metricdatatest.IgnoreTimestamp())
}

// rawMessage and rawCodec send bytes over gRPC as they are.
type rawMessage []byte

type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(rawMessage))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }
