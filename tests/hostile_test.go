package tests

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tinylib/msgp/msgp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// peakRSS is a process's peak resident set (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestPyroscopeBombThroughBinary: 1 GiB of zeros gzipped into a body of
// about 1 MiB, sent to the pyroscope port of the embedded default (the
// agent's node port 4040 takes the same), raw and as pyroscope-go's
// multipart form: 413 naming the limit, the process alive and its peak RSS
// far below what inflating it would take. (It used to be OOM-killed.)
func TestPyroscopeBombThroughBinary(t *testing.T) {
	col := startCollector(t)
	var bomb bytes.Buffer
	zw, err := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	require.NoError(t, err)
	zeros := make([]byte, 1<<20)
	for range 1024 {
		_, _ = zw.Write(zeros)
	}
	require.NoError(t, zw.Close())
	t.Logf("1 GiB of zeros gzipped: %d bytes", bomb.Len())
	before := peakRSS(t, col.cmd.Process.Pid)

	var mp bytes.Buffer
	fmt.Fprintf(&mp, "--b\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"profile.pprof\"\r\n\r\n")
	mp.Write(bomb.Bytes())
	fmt.Fprintf(&mp, "\r\n--b--\r\n")
	for _, tc := range []struct {
		name, contentType string
		body              []byte
	}{
		{"raw", "application/octet-stream", bomb.Bytes()},
		{"multipart", "multipart/form-data; boundary=b", mp.Bytes()},
	} {
		resp, err := http.Post("http://"+col.Pyroscope+"/ingest?name=bomb&format=pprof", tc.contentType, bytes.NewReader(tc.body))
		require.NoError(t, err, tc.name)
		msg := make([]byte, 512)
		n, _ := resp.Body.Read(msg)
		resp.Body.Close()
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "%s: %s", tc.name, msg[:n])
		assert.Contains(t, string(msg[:n]), "max_decompressed_size", tc.name)
	}
	resp, err := http.Get("http://" + col.Health + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "still healthy")
	after := peakRSS(t, col.cmd.Process.Pid)
	t.Logf("peak RSS %d MiB before, %d MiB after the two bombs", before>>20, after>>20)
	reliability.record("Decompression bomb on the pyroscope port",
		"FABRIC_BIN=bin/otelcol-fabric go test -count=1 -run TestPyroscopeBombThroughBinary ./tests/",
		fmt.Sprintf("1 GiB of zeros gzipped into %d bytes, raw and as pyroscope-go's multipart form: 413 naming max_decompressed_size, "+
			"still healthy. Peak RSS %d MiB before, %d MiB after (it used to be OOM-killed in under 2 s).", bomb.Len(), before>>20, after>>20))
	assert.Less(t, after-before, int64(128<<20), "peak RSS grew by less than 128 MiB")
	require.Equal(t, 0, col.terminate())
}

// fluentLogBodies reads the file exporter's logs.jsonl (one OTLP/JSON batch
// a line) and returns the body of every record tagged tag.
func fluentLogBodies(t *testing.T, dataDir, tag string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "logs.jsonl"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var bodies []string
	var u plog.JSONUnmarshaler
	for line := range bytes.Lines(b) {
		logs, err := u.UnmarshalLogs(line)
		require.NoError(t, err)
		for _, rl := range logs.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if v, ok := lr.Attributes().Get("fluent.tag"); ok && v.Str() == tag {
						bodies = append(bodies, lr.Body().AsString())
					}
				}
			}
		}
	}
	return bodies
}

// TestFluentForwardHostileThroughBinary: the 10 bytes of issue #13
// (["tag", array32 0xffffffff]) and variants sent to a fluentforward port:
// each connection is closed, the process stays alive and healthy with its
// peak RSS far below what the declared lengths would take, and a real client
// (fluent-logger-golang, EventTime timestamps, acknowledged chunks) is
// delivered exactly afterwards. (Contrib v0.145.0 as released dies on the
// first input with "fatal error: out of memory".)
func TestFluentForwardHostileThroughBinary(t *testing.T) {
	port := freePort(t)
	col := startCollectorEnv(t, []string{fmt.Sprintf("FABRIC_FLUENTFORWARD_ENDPOINT=127.0.0.1:%d", port)},
		"--config", "configs/local.yaml", "--config", "tests/testdata/fluentforward-overlay.yaml")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	before := peakRSS(t, col.cmd.Process.Pid)

	// 80 entries of [0, {"log": 1 MiB}], gzipped: 80 MiB inflated.
	entry := msgp.AppendInt64(msgp.AppendArrayHeader(nil, 2), 0)
	entry = msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(entry, 1), "log"), strings.Repeat("a", 1<<20))
	var bomb bytes.Buffer
	zw, err := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	require.NoError(t, err)
	for range 80 {
		_, _ = zw.Write(entry)
	}
	require.NoError(t, zw.Close())
	packed := msgp.AppendString(msgp.AppendArrayHeader(nil, 3), "bomb")
	packed = msgp.AppendBytes(packed, bomb.Bytes())
	packed = msgp.AppendString(msgp.AppendString(msgp.AppendMapHeader(packed, 1), "compressed"), "gzip")

	for _, tc := range []struct {
		name  string
		input []byte
	}{
		{"issue #13: forward entries array32 of 4Gi", []byte{0x92, 0xa3, 't', 'a', 'g', 0xdd, 0xff, 0xff, 0xff, 0xff}},
		{"forward options map32 of 4Gi", []byte{0x93, 0xa3, 't', 'a', 'g', 0x90, 0xdf, 0xff, 0xff, 0xff, 0xff}},
		{"record value array32 of 4Gi", []byte{0x93, 0xa3, 't', 'a', 'g', 0x00, 0x81, 0xa3, 'l', 'o', 'g', 0xdd, 0xff, 0xff, 0xff, 0xff}},
		{"tag str32 of 4Gi", []byte{0x92, 0xdb, 0xff, 0xff, 0xff, 0xff}},
		{"packed forward bin32 of 4Gi", []byte{0x92, 0xa3, 't', 'a', 'g', 0xc6, 0xff, 0xff, 0xff, 0xff}},
		{fmt.Sprintf("packed forward gzip bomb: 80 MiB of entries in %d bytes", len(packed)), packed},
	} {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err, tc.name)
		_, err = conn.Write(tc.input)
		require.NoError(t, err, tc.name)
		// The receiver closes the connection when it gives up on the input.
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
		_, _ = io.Copy(io.Discard, conn)
		conn.Close()
		resp, err := http.Get("http://" + col.Health + "/")
		if err != nil {
			select {
			case <-col.done:
			case <-time.After(10 * time.Second):
			}
			t.Fatalf("collector unreachable after %s (exited: %v): %v", tc.name, col.exitErr, err)
		}
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "healthy after %s", tc.name)
	}
	after := peakRSS(t, col.cmd.Process.Pid)
	t.Logf("peak RSS %d MiB before, %d MiB after the hostile inputs", before>>20, after>>20)
	defer func() {
		if !t.Failed() {
			reliability.record("Hostile input on the fluentforward port",
				"FABRIC_BIN=bin/otelcol-fabric go test -count=1 -run TestFluentForwardHostileThroughBinary ./tests/",
				fmt.Sprintf("Each input on its own connection, then 50 records from fluent-logger-golang, each delivered exactly once. "+
					"The connection is closed on each hostile input and the collector stays healthy (the contrib v0.145.0 receiver died "+
					"with `fatal error: runtime: out of memory` on the first). Peak RSS %d MiB before, %d MiB after.\n\n"+
					"Inputs: 10-byte forward entries array32 of 4Gi (issue #13), options map32 of 4Gi, record value array32 of 4Gi, "+
					"tag str32 of 4Gi, packed forward bin32 of 4Gi, packed forward gzip bomb (80 MiB of entries).", before>>20, after>>20))
		}
	}()
	assert.Less(t, after-before, int64(256<<20), "peak RSS grew by less than 256 MiB")

	logger, err := fluent.New(fluent.Config{FluentHost: "127.0.0.1", FluentPort: port, SubSecondPrecision: true, RequestAck: true})
	require.NoError(t, err)
	const n = 50
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("line %d", i))
		require.NoError(t, logger.Post("fabric.test", map[string]any{"message": want[i], "i": i}))
	}
	require.NoError(t, logger.Close())
	assert.Eventually(t, func() bool { return len(fluentLogBodies(t, col.DataDir, "fabric.test")) >= n },
		30*time.Second, 200*time.Millisecond, "%d records in logs.jsonl", n)
	assert.ElementsMatch(t, want, fluentLogBodies(t, col.DataDir, "fabric.test"), "every record exactly once")
	assert.Empty(t, fluentLogBodies(t, col.DataDir, "bomb"), "nothing of the bomb")
	require.Equal(t, 0, col.terminate())
}

// nestedTraces is one span whose attribute "deep" nests maps `depth` levels
// deep, and one log whose body does.
func nestedTraces(depth int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "deep")
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName("deep")
	s.SetTraceID(pcommon.TraceID{1})
	s.SetSpanID(pcommon.SpanID{1})
	m := s.Attributes().PutEmptyMap("deep")
	for range depth {
		m = m.PutEmptyMap("a")
	}
	return td
}

func nestedLogs(depth int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "deep")
	m := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetEmptyMap()
	for range depth {
		m = m.PutEmptyMap("a")
	}
	return ld
}

// TestDeepNestingThroughBinary sends the shipped gateway a span attribute
// and a log body nested a million levels deep over OTLP/HTTP (about 17 MB,
// under the 20 MiB body limit), a log body 100,000 levels deep as OTLP/JSON,
// and a span attribute 100,000 levels deep over OTLP/gRPC (1.5 MB):
// protoguard refuses each before the receiver decodes it (400 with a
// google.rpc.Status of code InvalidArgument; gRPC InvalidArgument), naming
// max_depth; the gateway stays alive and healthy and its peak RSS grows by
// less than 256 MiB. Measured: 2,790 MiB peak before tagguard's
// max_value_depth (OOM-killed in a 2 GiB pod: issue #13), about 1,150 MiB
// after it (pdata's recursive decoder, which runs before any processor),
// about 240 MiB with protoguard (reading and checking the bodies).
func TestDeepNestingThroughBinary(t *testing.T) {
	col := startGateway(t, prometheusServer(t))
	before := peakRSS(t, col.cmd.Process.Pid)

	tr, err := ptraceotlp.NewExportRequestFromTraces(nestedTraces(1_000_000)).MarshalProto()
	require.NoError(t, err)
	lg, err := plogotlp.NewExportRequestFromLogs(nestedLogs(1_000_000)).MarshalProto()
	require.NoError(t, err)
	lgJSON, err := plogotlp.NewExportRequestFromLogs(nestedLogs(100_000)).MarshalJSON()
	require.NoError(t, err)
	t.Logf("OTLP/HTTP bodies: traces %d bytes, logs %d bytes, JSON logs %d bytes", len(tr), len(lg), len(lgJSON))
	for _, r := range []struct {
		path, contentType string
		body              []byte
	}{{"/v1/traces", "application/x-protobuf", tr}, {"/v1/logs", "application/x-protobuf", lg}, {"/v1/logs", "application/json", lgJSON}} {
		req, err := http.NewRequest(http.MethodPost, "http://"+col.HTTP+r.path, bytes.NewReader(r.body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", r.contentType)
		req.Header.Set("Authorization", "Bearer "+gwToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("%s %s: %d %.200q; peak RSS now %d MiB", r.path, r.contentType, resp.StatusCode, msg, peakRSS(t, col.cmd.Process.Pid)>>20)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s %s", r.path, r.contentType)
		assert.Equal(t, r.contentType, resp.Header.Get("Content-Type"), "a google.rpc.Status in the request's encoding")
		assert.Contains(t, string(msg), "deeper than", "%s %s", r.path, r.contentType)
		assert.Contains(t, string(msg), "max_depth 64", "%s %s", r.path, r.contentType)
	}

	conn, err := grpc.NewClient(col.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+gwToken)
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(nestedTraces(100_000)))
	t.Logf("gRPC 100,000 deep: %v", err)
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "gRPC 100,000 deep: %v", err)
	assert.Contains(t, status.Convert(err).Message(), "protoguard: attribute nesting deeper than max_depth 64")

	resp, err := http.Get("http://" + col.Health + "/")
	require.NoError(t, err, "the gateway is still up")
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	after := peakRSS(t, col.cmd.Process.Pid)
	t.Logf("peak RSS %d MiB before, %d MiB after", before>>20, after>>20)
	assert.Less(t, after-before, int64(256<<20), "peak RSS grew by %d MiB", (after-before)>>20)
	reliability.record("Deeply nested attributes on the OTLP ports",
		"FABRIC_BIN=bin/otelcol-fabric go test -count=1 -run TestDeepNestingThroughBinary ./tests/",
		fmt.Sprintf("Shipped configs/gateway.yaml. A span attribute and a log body nested 1,000,000 deep over OTLP/HTTP (%d and %d bytes), "+
			"a log body 100,000 deep as OTLP/JSON (%d bytes), one span attribute 100,000 deep over gRPC: each refused by protoguard before "+
			"decoding (400 InvalidArgument, gRPC InvalidArgument, naming max_depth 64), still healthy. Peak RSS %d MiB before, %d MiB after "+
			"(2,790 MiB before tagguard's max_value_depth; about 1,150 MiB before protoguard, all of it pdata's recursive decoder).",
			len(tr), len(lg), len(lgJSON), before>>20, after>>20))
	require.Equal(t, 0, col.terminate())
}
