package protoguardextension

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/pdata/testdata"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/wirecheck"
)

// sdkTraces is a batch as an SDK's batch span processor sends it: 512
// spans (its default batch size) of one service, each with 8 attributes and
// an event.
func sdkTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	for i := range 10 {
		rs.Resource().Attributes().PutStr(fmt.Sprintf("resource.key.%d", i), "some-resource-value")
	}
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	ss.Scope().SetVersion("0.63.0")
	for i := range 512 {
		s := ss.Spans().AppendEmpty()
		s.SetName("GET /api/v1/orders/{id}")
		s.SetTraceID(pcommon.TraceID{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
		s.SetSpanID(pcommon.SpanID{byte(i), 1, 2, 3, 4, 5, 6, 7})
		s.SetParentSpanID(pcommon.SpanID{8, 1, 2, 3, 4, 5, 6, 7})
		s.SetKind(ptrace.SpanKindServer)
		s.SetStartTimestamp(1_700_000_000_000_000_000)
		s.SetEndTimestamp(1_700_000_000_010_000_000)
		a := s.Attributes()
		a.PutStr("http.request.method", "GET")
		a.PutStr("url.path", "/api/v1/orders/12345")
		a.PutStr("url.scheme", "https")
		a.PutInt("http.response.status_code", 200)
		a.PutStr("server.address", "orders.internal")
		a.PutInt("server.port", 8443)
		a.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36")
		a.PutStr("network.protocol.version", "1.1")
		e := s.Events().AppendEmpty()
		e.SetName("message")
		e.Attributes().PutInt("message.uncompressed_size", 1234)
	}
	return td
}

// sdkLogs: 512 records with a message body and 6 attributes.
func sdkLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	for i := range 10 {
		rl.Resource().Attributes().PutStr(fmt.Sprintf("resource.key.%d", i), "some-resource-value")
	}
	sl := rl.ScopeLogs().AppendEmpty()
	for i := range 512 {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(1_700_000_000_000_000_000)
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		lr.Body().SetStr(fmt.Sprintf("order %d shipped to warehouse east-1 after 3 retries", i))
		lr.SetTraceID(pcommon.TraceID{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
		lr.SetSpanID(pcommon.SpanID{byte(i), 1, 2, 3, 4, 5, 6, 7})
		a := lr.Attributes()
		a.PutStr("code.function.name", "ship")
		a.PutStr("code.file.path", "orders/ship.go")
		a.PutInt("code.line.number", 42)
		a.PutStr("order.id", "12345")
		a.PutStr("warehouse", "east-1")
		a.PutInt("retries", 3)
	}
	return ld
}

// BenchmarkOTLPRequest compares, on the same request, the check with its
// decoded-size estimate (step=check) with pdata's decode the receiver runs
// after it (step=decode):
//
//	go test -run '^$' -bench BenchmarkOTLPRequest -benchmem -count 6 ./extensions/protoguardextension/ > bench.txt
//	benchstat -col /step bench.txt
//
// "at_limit" is pdata's testdata span with one attribute nested max_depth
// (64) levels, the deepest value the check passes; "deep" is the attack: the
// same attribute nested 100,000 levels (1.7 MB), refused by the check after
// max_depth levels, decoded whole by pdata.
func BenchmarkOTLPRequest(b *testing.B) {
	c, err := wirecheck.New(64, true)
	require.NoError(b, err)
	mustP := func(p []byte, err error) []byte { require.NoError(b, err); return p }
	traces := mustP(ptraceotlp.NewExportRequestFromTraces(sdkTraces()).MarshalProto())
	tracesJSON := mustP(ptraceotlp.NewExportRequestFromTraces(sdkTraces()).MarshalJSON())
	metrics := mustP(pmetricotlp.NewExportRequestFromMetrics(testdata.GenerateMetrics(512)).MarshalProto())
	logs := mustP(plogotlp.NewExportRequestFromLogs(sdkLogs()).MarshalProto())
	profiles := mustP(pprofileotlp.NewExportRequestFromProfiles(testdata.GenerateProfiles(512)).MarshalProto())
	atLimit := mustP(ptraceotlp.NewExportRequestFromTraces(deepTraces(64)).MarshalProto())
	deep := mustP(ptraceotlp.NewExportRequestFromTraces(deepTraces(100_000)).MarshalProto())
	// The check as the middleware runs it: with the decoded-size estimate.
	proto := func(sig wirecheck.Signal) func([]byte) *wirecheck.Error {
		return func(p []byte) *wirecheck.Error {
			_, err := c.CheckProtoSize(sig, p)
			return err
		}
	}
	checkJSON := func(p []byte) *wirecheck.Error {
		_, err := c.CheckJSONSize(wirecheck.Traces, p)
		return err
	}
	for _, tc := range []struct {
		name   string
		body   []byte
		check  func([]byte) *wirecheck.Error
		decode func([]byte) error
	}{
		{"traces", traces, proto(wirecheck.Traces),
			func(p []byte) error { return ptraceotlp.NewExportRequest().UnmarshalProto(p) }},
		{"traces_json", tracesJSON, checkJSON,
			func(p []byte) error { return ptraceotlp.NewExportRequest().UnmarshalJSON(p) }},
		{"metrics", metrics, proto(wirecheck.Metrics),
			func(p []byte) error { return pmetricotlp.NewExportRequest().UnmarshalProto(p) }},
		{"logs", logs, proto(wirecheck.Logs),
			func(p []byte) error { return plogotlp.NewExportRequest().UnmarshalProto(p) }},
		{"profiles", profiles, proto(wirecheck.Profiles),
			func(p []byte) error { return pprofileotlp.NewExportRequest().UnmarshalProto(p) }},
		{"at_limit", atLimit, proto(wirecheck.Traces),
			func(p []byte) error { return ptraceotlp.NewExportRequest().UnmarshalProto(p) }},
		{"deep", deep, proto(wirecheck.Traces),
			func(p []byte) error { return ptraceotlp.NewExportRequest().UnmarshalProto(p) }},
	} {
		wantRefused := tc.name == "deep"
		require.Equal(b, wantRefused, tc.check(tc.body) != nil, tc.name)
		b.Run("signal="+tc.name+"/step=check", func(b *testing.B) {
			b.SetBytes(int64(len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if (tc.check(tc.body) != nil) != wantRefused {
					b.Fatal("unexpected verdict")
				}
			}
		})
		b.Run("signal="+tc.name+"/step=decode", func(b *testing.B) {
			b.SetBytes(int64(len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := tc.decode(tc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
