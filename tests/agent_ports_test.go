package tests

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	// The decompressors configgrpc registers in the real gateway, so the
	// stand-in accepts whatever compression an agent may be set to (it
	// ships gzip): without one, every export gets Unimplemented, which the
	// agent drops as permanent.
	_ "github.com/mostynb/go-grpc-compression/nonclobbering/snappy"
	_ "github.com/mostynb/go-grpc-compression/nonclobbering/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// agentWrongToken is the credential a pod on the node sends to the agent in
// TestAgentPortsHostile; it must never reach the gateway.
const agentWrongToken = "agentports-wrong-token"

// TestAgentPortsHostile goes over every port the shipped agent
// (configs/agent.yaml, outside Kubernetes as in TestLoadBalancing, its
// gateways one stand-in) opens: OTLP/gRPC, OTLP/HTTP, pyroscope,
// health_check and its own metrics, and checks through /proc that it opens
// no other.
//
// The node-local data ports take no token by design (agent.yaml: reachable
// only from the node's pods, hostPort and NetworkPolicy): without a token and
// with a wrong one, data is accepted, and the stand-in gateway receives it
// with the agent's own FABRIC_INGEST_TOKEN only, never the wrong one. The
// agent has no OTLP profiles (its profiles pipeline takes pyroscope only):
// 404 and Unimplemented.
//
// Bad input on each data port (malformed protobuf and JSON, bodies over the
// limits, gzip bombs, unknown encodings, invalid UTF-8, gRPC garbage) gets a
// 4xx or a non-retryable gRPC code, never a 5xx, a crash or a hang; the
// codes that another change may move (gRPC garbage: Internal or
// InvalidArgument; invalid UTF-8: accepted or refused) are recorded as they
// are. health_check and the metrics port serve their status and metrics
// only, whatever the method. Afterwards the agent is healthy, still
// delivers, and its peak RSS grew by less than 256 MiB. The results go into
// the reliability report.
func TestAgentPortsHostile(t *testing.T) {
	fabricBin(t)
	gw := startGatewayStandIn(t)
	col := startCollectorEnv(t, agentEnv(t, gw.addrs[0], [3]string(gw.addrs)),
		"--config", "configs/agent.yaml", "--config", "tests/testdata/loadbalancing-overlay.yaml")
	var table strings.Builder
	table.WriteString("| port | input | answer |\n| --- | --- | --- |\n")
	row := func(port, input, answer string) { fmt.Fprintf(&table, "| %s | %s | %s |\n", port, input, answer) }

	// The ports the process listens on: the five of its config, no other.
	want := []string{"tcp " + col.GRPC, "tcp " + col.HTTP, "tcp " + col.Pyroscope, "tcp " + col.Health, "tcp " + col.Metrics}
	got := listeningSockets(t, col.cmd.Process.Pid)
	assert.ElementsMatch(t, want, got, "the agent listens on its five configured ports only")
	row("all", "sockets the process listens on (/proc/PID/net)", fmt.Sprintf("%d: OTLP/gRPC, OTLP/HTTP, pyroscope, health_check, metrics", len(got)))
	before := peakRSS(t, col.cmd.Process.Pid)

	conn, err := grpc.NewClient(col.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	grpcCall := func(method string, body []byte, token string, opts ...grpc.CallOption) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		var out []byte
		return conn.Invoke(ctx, method, rawMessage(body), &out, append(opts, grpc.ForceCodecV2(rawCodec{}))...)
	}
	signals := agentSignals()
	pyroscopeURL := func(app string) string { return "http://" + col.Pyroscope + "/ingest?name=" + app + "&format=pprof" }

	// No token and a wrong one: accepted (documented), each request marked
	// by its service.name so the stand-in can tell it arrived.
	var markers []string
	for _, tok := range []struct{ label, value string }{{"no token", ""}, {"wrong token", agentWrongToken}} {
		hdr := map[string]string{"Content-Type": "application/x-protobuf"}
		if tok.value != "" {
			hdr["Authorization"] = "Bearer " + tok.value
		}
		label := strings.ReplaceAll(tok.label, " ", "-")
		var httpAnswers, grpcAnswers []string
		for _, s := range signals {
			m := "agentports-http-" + s.name + "-" + label
			a := agentRequest(t, http.MethodPost, "http://"+col.HTTP+s.path, hdr, s.valid(m))
			assert.Equal(t, http.StatusOK, a.code, "OTLP/HTTP %s, %s: %s", s.name, tok.label, a.msg)
			httpAnswers = append(httpAnswers, strconv.Itoa(a.code))
			m2 := "agentports-grpc-" + s.name + "-" + label
			err := grpcCall(s.method, s.valid(m2), tok.value)
			assert.NoError(t, err, "OTLP/gRPC %s, %s", s.name, tok.label)
			grpcAnswers = append(grpcAnswers, status.Code(err).String())
			markers = append(markers, m, m2)
		}
		row("OTLP/HTTP traces, metrics, logs", tok.label, strings.Join(httpAnswers, ", ")+" (accepted)")
		row("OTLP/gRPC traces, metrics, logs", tok.label, strings.Join(grpcAnswers, ", ")+" (accepted)")

		a := agentRequest(t, http.MethodPost, "http://"+col.HTTP+"/v1development/profiles", hdr, emptyProfilesRequest(t))
		assert.Equal(t, http.StatusNotFound, a.code, "OTLP/HTTP profiles, %s: the agent has no OTLP profiles: %s", tok.label, a.msg)
		err := grpcCall("/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export", emptyProfilesRequest(t), tok.value)
		assert.Equal(t, codes.Unimplemented, status.Code(err), "OTLP/gRPC profiles, %s: %v", tok.label, err)
		row("OTLP profiles (HTTP, gRPC)", tok.label, fmt.Sprintf("%d, %s (no OTLP receiver in the agent's profiles pipeline)", a.code, status.Code(err)))

		m := "agentports-pyroscope-" + label
		pyroHdr := map[string]string{"Content-Type": "application/octet-stream", "Authorization": hdr["Authorization"]}
		a = agentRequest(t, http.MethodPost, pyroscopeURL(m), pyroHdr, outageProfile(1))
		assert.Equal(t, http.StatusOK, a.code, "pyroscope, %s: %s", tok.label, a.msg)
		row("pyroscope", tok.label, fmt.Sprintf("%d (accepted)", a.code))
		markers = append(markers, m)
	}
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		seen := gw.seen()
		for _, m := range markers {
			assert.True(c, seen[m], "%s at the gateway", m)
		}
	}, 30*time.Second, 200*time.Millisecond, "everything accepted reaches the stand-in gateway")

	// Bad input on OTLP/HTTP, every signal.
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 1024 {
		_, _ = zw.Write(zeros)
	}
	require.NoError(t, zw.Close())
	big := make([]byte, 33<<20)
	type httpCase struct {
		name, contentType, encoding string
		body                        func(agentSignal) []byte
		want                        func(int) bool
	}
	for _, c := range []httpCase{
		{"garbage protobuf", "application/x-protobuf", "", func(agentSignal) []byte { return []byte("\xff\xff\xff\xff not protobuf") }, is4xx},
		{"garbage JSON", "application/json", "", func(s agentSignal) []byte { return []byte(s.garbageJSON) }, is4xx},
		{"JSON with the wrong types", "application/json", "", func(s agentSignal) []byte { return []byte(s.wrongTypesJSON) }, is4xx},
		{"body over the 20 MiB limit", "application/x-protobuf", "", func(agentSignal) []byte { return big[:21<<20] }, is4xx},
		{"gzip bomb: 1 GiB of zeros in 1 MiB", "application/x-protobuf", "gzip", func(agentSignal) []byte { return bomb.Bytes() }, is4xx},
		{"unknown Content-Encoding", "application/x-protobuf", "br-unknown", func(s agentSignal) []byte { return s.valid("agentports-unknown-encoding") }, is4xx},
		{"invalid UTF-8 in names, attributes, bodies", "application/x-protobuf", "", func(s agentSignal) []byte { return s.badUTF8 }, below500},
	} {
		var answers []string
		var first string
		for _, s := range signals {
			hdr := map[string]string{"Content-Type": c.contentType, "Content-Encoding": c.encoding}
			a := agentRequest(t, http.MethodPost, "http://"+col.HTTP+s.path, hdr, c.body(s))
			assert.True(t, c.want(a.code), "OTLP/HTTP %s, %s: got %d %q", s.name, c.name, a.code, a.msg)
			answers = append(answers, strconv.Itoa(a.code))
			if first == "" {
				first = markdownSafe(a.msg)
			}
		}
		row("OTLP/HTTP traces, metrics, logs", c.name, strings.TrimSpace(strings.Join(answers, ", ")+" "+first))
	}

	// Bad input on the pyroscope port.
	var mp, noProfile bytes.Buffer
	fmt.Fprintf(&mp, "--b\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"profile.pprof\"\r\n\r\n")
	mp.Write(bomb.Bytes())
	fmt.Fprintf(&mp, "\r\n--b--\r\n")
	fmt.Fprintf(&noProfile, "--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n")
	for _, c := range []struct {
		name, url, contentType, encoding string
		body                             []byte
		want                             func(int) bool
	}{
		{"garbage instead of pprof", pyroscopeURL("agentports-bad"), "application/octet-stream", "", []byte("not a pprof"), is4xx},
		{"gzip bomb, raw body", pyroscopeURL("agentports-bad"), "application/octet-stream", "", bomb.Bytes(), is4xx},
		{"gzip bomb, multipart profile part", pyroscopeURL("agentports-bad"), "multipart/form-data; boundary=b", "", mp.Bytes(), is4xx},
		{"gzip bomb as Content-Encoding: gzip", pyroscopeURL("agentports-bad"), "application/octet-stream", "gzip", bomb.Bytes(), is4xx},
		{"unknown Content-Encoding", pyroscopeURL("agentports-bad"), "application/octet-stream", "br-unknown", outageProfile(2), is4xx},
		{"body over the 32 MiB limit", pyroscopeURL("agentports-bad"), "application/octet-stream", "", big, is4xx},
		{"multipart without a profile part", pyroscopeURL("agentports-bad"), "multipart/form-data; boundary=b", "", noProfile.Bytes(), is4xx},
		{"unknown format (jfr)", "http://" + col.Pyroscope + "/ingest?name=agentports-bad&format=jfr", "application/octet-stream", "", []byte("x"), is4xx},
		{"no name", "http://" + col.Pyroscope + "/ingest?format=pprof", "application/octet-stream", "", outageProfile(3), is4xx},
		{"invalid UTF-8 in the name", pyroscopeURL("agentports-%FF%FE"), "application/octet-stream", "", outageProfile(4), below500},
	} {
		a := agentRequest(t, http.MethodPost, c.url, map[string]string{"Content-Type": c.contentType, "Content-Encoding": c.encoding}, c.body)
		assert.True(t, c.want(a.code), "pyroscope, %s: got %d %q", c.name, a.code, a.msg)
		row("pyroscope", c.name, strings.TrimSpace(fmt.Sprintf("%d %s", a.code, markdownSafe(a.msg))))
	}

	// Bad input on OTLP/gRPC, every signal. grpc.WithCompressor, deprecated,
	// is the only per-connection way to send a body compressed beforehand.
	bombDial := grpc.WithCompressor(passthroughCompressor("gzip"))          //nolint:staticcheck // see above
	unknownDial := grpc.WithCompressor(passthroughCompressor("br-unknown")) //nolint:staticcheck // see above
	for _, c := range []struct {
		name string
		body func(agentSignal) []byte
		opts []grpc.DialOption
		want []codes.Code
	}{
		// grpc-go answers a message its codec cannot decode with Internal,
		// before the receiver sees it; a pre-decode check may make it
		// InvalidArgument. Neither is retryable under OTLP.
		{"garbage instead of protobuf", func(agentSignal) []byte { return []byte("\xff\xff\xff garbage") }, nil, []codes.Code{codes.InvalidArgument, codes.Internal}},
		{"invalid UTF-8 in names, attributes, bodies", func(s agentSignal) []byte { return s.badUTF8 }, nil, []codes.Code{codes.OK, codes.InvalidArgument}},
		{"message over the 4 MiB limit", func(agentSignal) []byte { return big[:5<<20] }, nil, []codes.Code{codes.ResourceExhausted}},
		{"gzip bomb: 1 GiB of zeros in 1 MiB", func(agentSignal) []byte { return bomb.Bytes() }, []grpc.DialOption{bombDial}, []codes.Code{codes.ResourceExhausted}},
		{"unknown grpc-encoding", func(s agentSignal) []byte { return s.valid("agentports-unknown-encoding") }, []grpc.DialOption{unknownDial}, []codes.Code{codes.Unimplemented}},
	} {
		cc := conn
		if c.opts != nil {
			cc, err = grpc.NewClient(col.GRPC, append(c.opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
			require.NoError(t, err)
		}
		var answers []string
		var first string
		for _, s := range signals {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var out []byte
			err := cc.Invoke(ctx, s.method, rawMessage(c.body(s)), &out, grpc.ForceCodecV2(rawCodec{}))
			cancel()
			assert.Contains(t, c.want, status.Code(err), "OTLP/gRPC %s, %s: %v", s.name, c.name, err)
			answers = append(answers, status.Code(err).String())
			if first == "" && err != nil {
				first = markdownSafe(status.Convert(err).Message())
			}
		}
		if cc != conn {
			require.NoError(t, cc.Close())
		}
		row("OTLP/gRPC traces, metrics, logs", c.name, strings.TrimSpace(strings.Join(answers, ", ")+" "+first))
	}

	// The agent's own ports serve their status and metrics, whatever the
	// method, and nothing else: a body is not read, no other path on the
	// metrics port, no pprof or zpages anywhere.
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		body := []byte(nil)
		if m != http.MethodGet {
			body = big[:21<<20]
		}
		h := agentRequest(t, m, "http://"+col.Health+"/", nil, body)
		assert.Equal(t, http.StatusOK, h.code, "health_check %s", m)
		assert.Contains(t, h.msg, `"status":"Server available"`, "health_check %s answers its status", m)
		p := agentRequest(t, m, "http://"+col.Metrics+"/metrics", nil, body)
		assert.Equal(t, http.StatusOK, p.code, "metrics %s", m)
		assert.Contains(t, p.contentType, "text/plain", "metrics %s answers the exposition", m)
		input := m
		if body != nil {
			input += " with a 21 MiB body"
		}
		row("health_check /", input, fmt.Sprintf("%d %s", h.code, healthStatus(h.msg)))
		row("metrics /metrics", input, fmt.Sprintf("%d %s", p.code, p.contentType))
	}
	h := agentRequest(t, http.MethodGet, "http://"+col.Health+"/debug/pprof/", nil, nil)
	assert.Contains(t, h.msg, `"status"`, "health_check answers its status on every path")
	row("health_check", "GET /debug/pprof/ (any other path)", fmt.Sprintf("%d %s", h.code, healthStatus(h.msg)))
	for _, p := range []struct{ port, addr, path string }{
		{"metrics", col.Metrics, "/"},
		{"metrics", col.Metrics, "/debug/pprof/"},
		{"OTLP/HTTP", col.HTTP, "/debug/pprof/"},
		{"OTLP/HTTP", col.HTTP, "/debug/tracez"},
		{"pyroscope", col.Pyroscope, "/debug/pprof/"},
	} {
		a := agentRequest(t, http.MethodGet, "http://"+p.addr+p.path, nil, nil)
		assert.Equal(t, http.StatusNotFound, a.code, "%s %s", p.port, p.path)
		row(p.port, "GET "+p.path, strconv.Itoa(a.code))
	}
	for _, p := range []struct{ port, url string }{
		{"OTLP/HTTP", "http://" + col.HTTP + "/v1/traces"},
		{"pyroscope", pyroscopeURL("agentports-get")},
	} {
		a := agentRequest(t, http.MethodGet, p.url, nil, nil)
		assert.Equal(t, http.StatusMethodNotAllowed, a.code, "GET on %s", p.url)
		row(p.port, "GET on the ingest path", fmt.Sprintf("%d %s", a.code, markdownSafe(a.msg)))
	}

	// Afterwards: alive, healthy, still delivering.
	select {
	case <-col.done:
		t.Fatalf("the agent exited: %v", col.exitErr)
	default:
	}
	a := agentRequest(t, http.MethodGet, "http://"+col.Health+"/", nil, nil)
	assert.Equal(t, http.StatusOK, a.code, "the agent is healthy")
	a = agentRequest(t, http.MethodPost, "http://"+col.HTTP+"/v1/traces", map[string]string{"Content-Type": "application/x-protobuf"}, signals[0].valid("agentports-after"))
	assert.Equal(t, http.StatusOK, a.code)
	assert.Eventually(t, func() bool { return gw.seen()["agentports-after"] }, 30*time.Second, 200*time.Millisecond, "a trace sent afterwards reaches the gateway")
	auth, exports, leaked := gw.credentials(agentWrongToken)
	assert.Equal(t, []string{"Bearer " + gwToken}, auth, "the agent sends the gateway its own token and nothing else")
	assert.Zero(t, leaked, "the wrong token appears in no metadata the gateway receives")
	row("stand-in gateway", "authorization of every export the agent made during the test",
		fmt.Sprintf("`%s` (FABRIC_INGEST_TOKEN) on all %d; the wrong token in the metadata of %d", strings.Join(auth, "`, `"), exports, leaked))
	after := peakRSS(t, col.cmd.Process.Pid)
	assert.Less(t, after-before, int64(256<<20), "peak RSS grew by %d MiB", (after-before)>>20)
	t.Logf("peak RSS %d MiB before, %d MiB after\n%s", before>>20, after>>20, table.String())
	reliability.record("Hostile input and tokens on every agent port",
		"FABRIC_BIN=bin/otelcol-fabric go test -count=1 -run TestAgentPortsHostile ./tests/",
		fmt.Sprintf("Shipped configs/agent.yaml outside Kubernetes, its gateways one OTLP/gRPC stand-in that records the metadata of every export. "+
			"The node-local ports take no token by design (hostPort and NetworkPolicy): a wrong `Authorization` is ignored and never reaches the gateway. "+
			"After all of it the agent was healthy and still delivered; peak RSS %d MiB before, %d MiB after.\n\n%s",
			before>>20, after>>20, table.String()))
	require.Equal(t, 0, col.terminate())
}

// agentSignal is one OTLP signal the agent takes: where, and its bodies.
type agentSignal struct {
	name, path, method          string
	valid                       func(serviceName string) []byte
	badUTF8                     []byte
	garbageJSON, wrongTypesJSON string
}

func agentSignals() []agentSignal {
	resource := func(r pcommon.Resource, name string) { r.Attributes().PutStr("service.name", name) }
	traces := func(name string) []byte {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		resource(rs.Resource(), name)
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetName("probe")
		s.SetTraceID(pcommon.TraceID{1, 2, 3})
		s.SetSpanID(pcommon.SpanID{1})
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		return b
	}
	metrics := func(name string) []byte {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		resource(rm.Resource(), name)
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("agentports.probe")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		dp.SetIntValue(1)
		b, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
		return b
	}
	logs := func(name string) []byte {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		resource(rl.Resource(), name)
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		lr.Body().SetStr("probe")
		b, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
		return b
	}

	badTraces := ptrace.NewTraces()
	s := badTraces.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName("bad \xff\xfe name")
	s.Attributes().PutStr("k\xff", "v\xc3\x28")
	badT, _ := ptraceotlp.NewExportRequestFromTraces(badTraces).MarshalProto()
	badMetrics := pmetric.NewMetrics()
	m := badMetrics.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("bad \xff\xfe name")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.Attributes().PutStr("k\xff", "v\xc3\x28")
	dp.SetIntValue(1)
	badM, _ := pmetricotlp.NewExportRequestFromMetrics(badMetrics).MarshalProto()
	badLogs := plog.NewLogs()
	lr := badLogs.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr("bad \xff\xfe body")
	lr.Attributes().PutStr("k\xff", "v\xc3\x28")
	badL, _ := plogotlp.NewExportRequestFromLogs(badLogs).MarshalProto()

	return []agentSignal{
		{"traces", "/v1/traces", "/opentelemetry.proto.collector.trace.v1.TraceService/Export", traces, badT,
			`{"resourceSpans": [{"scopeSpans": [ {"spans": [`, `{"resourceSpans": 7}`},
		{"metrics", "/v1/metrics", "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", metrics, badM,
			`{"resourceMetrics": [{"scopeMetrics": [ {"metrics": [`, `{"resourceMetrics": 7}`},
		{"logs", "/v1/logs", "/opentelemetry.proto.collector.logs.v1.LogsService/Export", logs, badL,
			`{"resourceLogs": [{"scopeLogs": [ {"logRecords": [`, `{"resourceLogs": 7}`},
	}
}

func emptyProfilesRequest(t *testing.T) []byte {
	t.Helper()
	b, err := pprofileotlp.NewExportRequest().MarshalProto()
	require.NoError(t, err)
	return b
}

// healthStatus is health_check's answer without the times that change
// with every run: {"status":"Server available",...}.
func healthStatus(msg string) string {
	if status, _, ok := strings.Cut(msg, ","); ok {
		return markdownSafe(status) + ",...}"
	}
	return markdownSafe(msg)
}

// agentAnswer is an HTTP answer: its code, the start of its body, its type.
type agentAnswer struct {
	code             int
	msg, contentType string
}

// agentRequest sends one request with the given headers (empty values are
// left out) and fails the test if there is no answer within 30 s.
func agentRequest(t *testing.T, method, url string, header map[string]string, body []byte) agentAnswer {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	require.NoError(t, err)
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	client := http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	require.NoError(t, err, "%s %s: no answer", method, url)
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	_, _ = io.Copy(io.Discard, resp.Body)
	return agentAnswer{resp.StatusCode, strings.TrimSpace(string(msg)), resp.Header.Get("Content-Type")}
}

// passthroughCompressor labels a gRPC message with an encoding without
// compressing it: the test sends a body it compressed itself (a gzip bomb),
// or an encoding the agent does not know.
type passthroughCompressor string

func (c passthroughCompressor) Do(w io.Writer, p []byte) error {
	_, err := w.Write(p)
	return err
}

func (c passthroughCompressor) Type() string { return string(c) }

// gatewayStandIn is an OTLP/gRPC server for traces, metrics, logs and
// profiles on three loopback ports, standing in for the gateways behind the
// agent: it records the metadata of every export and the service.name of
// every resource it receives.
type gatewayStandIn struct {
	addrs    []string
	mu       sync.Mutex
	md       []metadata.MD
	services map[string]bool
}

func startGatewayStandIn(t *testing.T) *gatewayStandIn {
	t.Helper()
	g := &gatewayStandIn{services: map[string]bool{}}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, &standInTraces{g: g})
	pmetricotlp.RegisterGRPCServer(srv, &standInMetrics{g: g})
	plogotlp.RegisterGRPCServer(srv, &standInLogs{g: g})
	pprofileotlp.RegisterGRPCServer(srv, &standInProfiles{g: g})
	for range 3 {
		l := listen(t)
		g.addrs = append(g.addrs, l.Addr().String())
		go func() { _ = srv.Serve(l) }()
	}
	t.Cleanup(srv.Stop)
	return g
}

func (g *gatewayStandIn) record(ctx context.Context, resources func(func(pcommon.Resource))) {
	md, _ := metadata.FromIncomingContext(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.md = append(g.md, md.Copy())
	resources(func(r pcommon.Resource) {
		if v, ok := r.Attributes().Get("service.name"); ok {
			g.services[v.Str()] = true
		}
	})
}

func (g *gatewayStandIn) seen() map[string]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]bool, len(g.services))
	for k := range g.services {
		out[k] = true
	}
	return out
}

// credentials returns the distinct authorization values the exports came
// with, how many exports there were, and in how many the secret appears in
// any metadata key or value.
func (g *gatewayStandIn) credentials(secret string) (auth []string, exports, leaked int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, md := range g.md {
		for _, v := range md.Get("authorization") {
			if !slices.Contains(auth, v) {
				auth = append(auth, v)
			}
		}
		for k, vs := range md {
			if strings.Contains(k, secret) || slices.ContainsFunc(vs, func(v string) bool { return strings.Contains(v, secret) }) {
				leaked++
				break
			}
		}
	}
	slices.Sort(auth)
	return auth, len(g.md), leaked
}

type standInTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	g *gatewayStandIn
}

func (s standInTraces) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.g.record(ctx, func(f func(pcommon.Resource)) {
		for _, r := range req.Traces().ResourceSpans().All() {
			f(r.Resource())
		}
	})
	return ptraceotlp.NewExportResponse(), nil
}

type standInMetrics struct {
	pmetricotlp.UnimplementedGRPCServer
	g *gatewayStandIn
}

func (s standInMetrics) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	s.g.record(ctx, func(f func(pcommon.Resource)) {
		for _, r := range req.Metrics().ResourceMetrics().All() {
			f(r.Resource())
		}
	})
	return pmetricotlp.NewExportResponse(), nil
}

type standInLogs struct {
	plogotlp.UnimplementedGRPCServer
	g *gatewayStandIn
}

func (s standInLogs) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	s.g.record(ctx, func(f func(pcommon.Resource)) {
		for _, r := range req.Logs().ResourceLogs().All() {
			f(r.Resource())
		}
	})
	return plogotlp.NewExportResponse(), nil
}

type standInProfiles struct {
	pprofileotlp.UnimplementedGRPCServer
	g *gatewayStandIn
}

func (s standInProfiles) Export(ctx context.Context, req pprofileotlp.ExportRequest) (pprofileotlp.ExportResponse, error) {
	s.g.record(ctx, func(f func(pcommon.Resource)) {
		for _, r := range req.Profiles().ResourceProfiles().All() {
			f(r.Resource())
		}
	})
	return pprofileotlp.NewExportResponse(), nil
}

// listeningSockets lists what a process listens on: its TCP sockets in
// LISTEN and its unconnected UDP sockets ("tcp 127.0.0.1:4317"), from its
// socket inodes (/proc/PID/fd) looked up in /proc/PID/net/{tcp,tcp6,udp,udp6}.
func listeningSockets(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if ino, ok := strings.CutPrefix(target, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	var out []string
	for _, table := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		require.NoError(t, err)
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			listening := f[3] == "0A" // TCP_LISTEN
			if strings.HasPrefix(table, "udp") {
				_, remotePort, _ := strings.Cut(f[2], ":")
				listening = remotePort == "0000"
			}
			if listening {
				out = append(out, strings.TrimSuffix(table, "6")+" "+procAddr(t, f[1]))
			}
		}
	}
	return out
}

// procAddr decodes a /proc/net address: the IP as 32-bit words in host
// (little-endian) order, the port in hex.
func procAddr(t *testing.T, s string) string {
	t.Helper()
	ipHex, portHex, _ := strings.Cut(s, ":")
	ip, err := hex.DecodeString(ipHex)
	require.NoError(t, err)
	for i := 0; i+4 <= len(ip); i += 4 {
		slices.Reverse(ip[i : i+4])
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	require.NoError(t, err)
	return net.JoinHostPort(net.IP(ip).String(), strconv.FormatUint(port, 10))
}
