package tests

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestGatewayPortsHostile goes over every data port the shipped gateway
// opens to the network (OTLP/gRPC, OTLP/HTTP for every signal, pyroscope,
// gobench):
// without a token and with a wrong one, every request is refused with 401 or
// Unauthenticated; with the token, malformed protobuf and JSON, a body over
// the limit, a gzip bomb, invalid UTF-8 and garbage get a 4xx, never a 5xx,
// a crash or a hang; over OTLP/gRPC, invalid UTF-8 and garbage get
// InvalidArgument (protoguard checks the bytes before the receiver decodes
// them: pdata does not check that strings are UTF-8, and grpc-go answers
// what its codec cannot decode with Internal).
// Afterwards the gateway is healthy and its peak RSS grew by less than
// 256 MiB. (fluentforward listens on loopback only: see
// TestFluentForwardHostileThroughBinary; deep nesting:
// TestDeepNestingThroughBinary.) The results go into the reliability report.
func TestGatewayPortsHostile(t *testing.T) {
	col := startGateway(t, prometheusServer(t))
	before := peakRSS(t, col.cmd.Process.Pid)
	var table strings.Builder
	table.WriteString("| port | input | answer |\n| --- | --- | --- |\n")
	row := func(port, input, answer string) { fmt.Fprintf(&table, "| %s | %s | %s |\n", port, input, answer) }

	post := func(url, contentType, encoding, token string, body []byte) (int, string) {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", contentType)
		if encoding != "" {
			req.Header.Set("Content-Encoding", encoding)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		client := http.Client{Timeout: 30 * time.Second}
		resp, err := client.Do(req)
		require.NoError(t, err, "%s: no answer", url)
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return resp.StatusCode, strings.TrimSpace(string(msg))
	}
	traces := nestedTraces(1)
	valid, err := ptraceotlp.NewExportRequestFromTraces(traces).MarshalProto()
	require.NoError(t, err)

	// Authentication on every HTTP data path.
	httpPaths := map[string]string{
		"OTLP/HTTP traces":   "http://" + col.HTTP + "/v1/traces",
		"OTLP/HTTP metrics":  "http://" + col.HTTP + "/v1/metrics",
		"OTLP/HTTP logs":     "http://" + col.HTTP + "/v1/logs",
		"OTLP/HTTP profiles": "http://" + col.HTTP + "/v1development/profiles",
		"pyroscope":          "http://" + col.Pyroscope + "/ingest?name=app.cpu&format=pprof",
		"gobench":            "http://" + col.Gobench + "/v1/benchmarks?run_id=hostile",
	}
	for _, name := range sortedKeys(httpPaths) {
		for _, tok := range []struct{ label, value string }{{"no token", ""}, {"wrong token", "wrong-" + gwToken}} {
			code, msg := post(httpPaths[name], "application/x-protobuf", "", tok.value, valid)
			assert.Equal(t, http.StatusUnauthorized, code, "%s, %s: %s", name, tok.label, msg)
			row(name, tok.label, fmt.Sprint(code))
		}
	}
	// Authentication on gRPC, every signal.
	conn, err := grpc.NewClient(col.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	for _, tok := range []struct{ label, value string }{{"no token", ""}, {"wrong token", "wrong-" + gwToken}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if tok.value != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok.value)
		}
		_, errT := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(traces))
		_, errM := pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequest())
		_, errL := plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequest())
		cancel()
		for sig, e := range map[string]error{"traces": errT, "metrics": errM, "logs": errL} {
			assert.Equal(t, codes.Unauthenticated, status.Code(e), "gRPC %s, %s: %v", sig, tok.label, e)
		}
		row("OTLP/gRPC traces, metrics, logs", tok.label, fmt.Sprintf("%s, %s, %s", status.Code(errT), status.Code(errM), status.Code(errL)))
	}

	// Bad input with the right token.
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 1024 {
		_, _ = zw.Write(zeros)
	}
	require.NoError(t, zw.Close())
	badUTF8 := ptrace.NewTraces()
	s := badUTF8.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName("bad \xff\xfe name")
	s.Attributes().PutStr("k\xff", "v\xc3\x28")
	badUTF8Body, err := ptraceotlp.NewExportRequestFromTraces(badUTF8).MarshalProto()
	require.NoError(t, err)
	cases := []struct {
		name, path, contentType, encoding string
		body                              []byte
		want                              func(int) bool
		wantText                          string
	}{
		{"garbage protobuf", "/v1/traces", "application/x-protobuf", "", []byte("\xff\xff\xff\xff not protobuf"), is4xx, "4xx"},
		{"garbage JSON", "/v1/logs", "application/json", "", []byte(`{"resourceLogs": [{"scopeLogs": [ {"logRecords": [`), is4xx, "4xx"},
		{"JSON with the wrong types", "/v1/metrics", "application/json", "", []byte(`{"resourceMetrics": 7}`), is4xx, "4xx"},
		{"body over the 20 MiB limit", "/v1/traces", "application/x-protobuf", "", bytes.Repeat([]byte{0}, 21<<20), is4xx, "4xx"},
		{"gzip bomb: 1 GiB of zeros in 1 MiB", "/v1/traces", "application/x-protobuf", "gzip", bomb.Bytes(), is4xx, "4xx"},
		{"invalid UTF-8 in span name and attributes", "/v1/traces", "application/x-protobuf", "", badUTF8Body, is4xx, "4xx"},
		{"unknown Content-Encoding", "/v1/traces", "application/x-protobuf", "br-unknown", valid, is4xx, "4xx"},
	}
	for _, c := range cases {
		code, msg := post("http://"+col.HTTP+c.path, c.contentType, c.encoding, gwToken, c.body)
		assert.True(t, c.want(code), "%s: want %s, got %d %q", c.name, c.wantText, code, msg)
		row("OTLP/HTTP "+strings.TrimPrefix(c.path, "/v1/"), c.name, fmt.Sprintf("%d %s", code, markdownSafe(msg)))
	}
	code, msg := post(httpPaths["pyroscope"], "application/octet-stream", "", gwToken, []byte("not a pprof"))
	assert.True(t, is4xx(code), "pyroscope garbage: %d %s", code, msg)
	row("pyroscope", "garbage instead of pprof", fmt.Sprintf("%d %s", code, markdownSafe(msg)))

	for _, c := range []struct {
		name, encoding string
		body           []byte
	}{
		{"garbage instead of go test -bench output", "", []byte("\xff\xff\xff not benchmarks")},
		{"a malformed benchmark line only", "", []byte("BenchmarkX-2 \t 10 \t abc ns/op\n")},
		{"body over the 8 MiB limit", "", bytes.Repeat([]byte("x"), 9<<20)},
		{"gzip bomb: 1 GiB of zeros in 1 MiB", "gzip", bomb.Bytes()},
	} {
		code, msg := post(httpPaths["gobench"], "text/plain", c.encoding, gwToken, c.body)
		assert.True(t, is4xx(code), "gobench %s: %d %s", c.name, code, msg)
		row("gobench", c.name, fmt.Sprintf("%d %s", code, markdownSafe(msg)))
	}

	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+gwToken)
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(badUTF8))
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "gRPC invalid UTF-8: %v", err)
	assert.Contains(t, status.Convert(err).Message(), "protoguard: invalid UTF-8 in string field", "gRPC invalid UTF-8")
	row("OTLP/gRPC traces", "invalid UTF-8 in span name and attributes", fmt.Sprintf("%s %s", status.Code(err), markdownSafe(status.Convert(err).Message())))
	var raw []byte
	err = conn.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", rawMessage("\xff\xff\xff garbage"), &raw, grpc.ForceCodecV2(rawCodec{}))
	// Without protoguard grpc-go answers a message its codec cannot decode
	// with Internal; protoguard's codec checks it first and answers
	// InvalidArgument (not retryable under the OTLP specification).
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "gRPC garbage: %v", err)
	assert.Contains(t, status.Convert(err).Message(), "protoguard: malformed protobuf", "gRPC garbage")
	row("OTLP/gRPC traces", "garbage instead of protobuf", fmt.Sprintf("%s %s", status.Code(err), markdownSafe(status.Convert(err).Message())))

	time.Sleep(2 * time.Second) // tail sampling's decision (1 s) and the exports after it
	resp, err := http.Get("http://" + col.Health + "/")
	require.NoError(t, err, "the gateway is still up")
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	after := peakRSS(t, col.cmd.Process.Pid)
	assert.Less(t, after-before, int64(256<<20), "peak RSS grew by %d MiB", (after-before)>>20)
	t.Logf("peak RSS %d MiB before, %d MiB after\n%s", before>>20, after>>20, table.String())
	reliability.record("Hostile input and authentication on every gateway data port",
		"FABRIC_BIN=bin/otelcol-fabric go test -count=1 -run TestGatewayPortsHostile ./tests/",
		fmt.Sprintf("Shipped configs/gateway.yaml. After all of it the gateway was healthy; peak RSS %d MiB before, %d MiB after.\n\n%s",
			before>>20, after>>20, table.String()))
	require.Equal(t, 0, col.terminate())
}

func is4xx(code int) bool { return code >= 400 && code < 500 }

func below500(code int) bool { return code < 500 }

// markdownSafe makes an answer body fit a table cell: printable text only
// (a 400 over OTLP/HTTP protobuf is a binary google.rpc.Status around its
// message).
func markdownSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '|' {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
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
