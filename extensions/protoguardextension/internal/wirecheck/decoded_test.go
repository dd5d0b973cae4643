package wirecheck

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

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
	"go.opentelemetry.io/collector/pdata/testdata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// decodeAlloc is what pdata allocates to decode b, the Export request of
// sig, beyond decoding an empty request: runtime.MemStats.TotalAlloc over
// runs decodes, divided by runs; the least of three such measurements, as
// whatever else allocates meanwhile (the runtime, the test framework) only
// adds.
func decodeAlloc(t testing.TB, sig Signal, b []byte, runs int) float64 {
	t.Helper()
	measure := func(b []byte) float64 {
		least := math.Inf(1)
		for range 3 {
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			for range runs {
				require.NoError(t, pdataDecode(sig, b))
			}
			runtime.ReadMemStats(&m1)
			least = min(least, float64(m1.TotalAlloc-m0.TotalAlloc)/float64(runs))
		}
		return least
	}
	return measure(b) - measure(nil)
}

// nest is n copies of inner as the last field of path, inside one message
// of each field before it: nest([]{1, 2, 2}, nil, 3) is a traces request of
// one ResourceSpans of one ScopeSpans of 3 empty spans.
func nest(path []protowire.Number, inner []byte, n int) []byte {
	var b []byte
	for range n {
		b = protowire.AppendTag(b, path[len(path)-1], protowire.BytesType)
		b = protowire.AppendBytes(b, inner)
	}
	for i := len(path) - 2; i >= 0; i-- {
		b = protowire.AppendBytes(protowire.AppendTag(nil, path[i], protowire.BytesType), b)
	}
	return b
}

// TestDecodedSizePerType measures, for every message type of every signal's
// schema, what pdata allocates to decode one more of it (an empty one, on
// the shortest path from the request), and holds the estimate's cost of it
// (pdataStructs, its slot or wrapper) to that within 8 bytes (the size
// class of a 72-byte Exemplar is 80). When pdata's layout changes, this
// names the types whose figure to update.
func TestDecodedSizePerType(t *testing.T) {
	c := newChecker(t, 64, true)
	var table strings.Builder
	seen := map[*message]bool{}
	for _, sig := range signals {
		type hop struct {
			m    *message
			path []protowire.Number
		}
		queue := []hop{{otlpSchema.roots[sig], nil}}
		for len(queue) > 0 {
			h := queue[0]
			queue = queue[1:]
			for num := range h.m.fields {
				f := &h.m.fields[num]
				if f.kind != kindMessage || seen[f.msg] {
					continue
				}
				seen[f.msg] = true
				path := append(append([]protowire.Number(nil), h.path...), protowire.Number(num))
				queue = append(queue, hop{f.msg, path})
				with := nest(path, nil, 1)
				var without []byte
				if len(path) > 1 {
					without = nest(path[:len(path)-1], nil, 1)
				}
				measured := decodeAlloc(t, sig, with, 1000) - decodeAlloc(t, sig, without, 1000)
				estWith, err := c.CheckProtoSize(sig, with)
				require.Nil(t, err)
				estWithout, err := c.CheckProtoSize(sig, without)
				require.Nil(t, err)
				estimated := estWith - estWithout
				fmt.Fprintf(&table, "| %s | %s | %.0f | %d |\n", f.msg.name, f.name[strings.LastIndexByte(f.name[:strings.LastIndexByte(f.name, '.')], '.')+1:], measured, estimated)
				assert.InDelta(t, measured, float64(estimated), 8, "%s (as %s)", f.msg.name, f.name)
				_, known := pdataStructs[protoreflect.FullName(f.msg.name)]
				assert.True(t, known || math.Abs(measured) < 4, "%s: allocated %0.f bytes, and pdataStructs does not list it", f.msg.name, measured)
			}
		}
	}
	t.Logf("one more of each type, decoded by pdata:\n| type | as | measured bytes | estimated |\n| --- | --- | --- | --- |\n%s", table.String())
}

// kvInt is a KeyValue of an int value, kvStr of a string value.
func kvInt(key string, v int64) []byte {
	any := protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), uint64(v))
	kv := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), key)
	return protowire.AppendBytes(protowire.AppendTag(kv, 2, protowire.BytesType), any)
}

func kvStr(key, v string) []byte {
	any := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), v)
	kv := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), key)
	return protowire.AppendBytes(protowire.AppendTag(kv, 2, protowire.BytesType), any)
}

// repeat is n copies of inner as field num.
func repeat(num protowire.Number, inner []byte, n int) []byte {
	var b []byte
	for range n {
		b = protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), inner)
	}
	return b
}

// ordinarySpans are spans as TestRequestExpansion (tests/memory_test.go)
// sends them: a name, IDs, timestamps, 12 string attributes.
func ordinarySpans(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("GET /api/v1/items/{id}")
		sp.SetTraceID(pcommon.TraceID{1, 2, 3, byte(i)})
		sp.SetSpanID(pcommon.SpanID{4, 5, byte(i)})
		sp.SetStartTimestamp(1)
		sp.SetEndTimestamp(2)
		for j := range 12 {
			sp.Attributes().PutStr(fmt.Sprintf("attribute.%d", j), "a value of some thirty bytes..")
		}
	}
	return td
}

// sdkSpans: an HTTP server's spans, 8 attributes and an event each, under a
// resource of 10 attributes (the benchmark's traces).
func sdkSpans(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	for i := range 10 {
		rs.Resource().Attributes().PutStr(fmt.Sprintf("resource.key.%d", i), "some-resource-value")
	}
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
	for i := range n {
		s := ss.Spans().AppendEmpty()
		s.SetName("GET /api/v1/orders/{id}")
		s.SetTraceID(pcommon.TraceID{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
		s.SetSpanID(pcommon.SpanID{byte(i), 1, 2, 3, 4, 5, 6, 7})
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

// histograms: n histogram points of 3 attributes, 10 buckets, 2 exemplars.
func histograms(n int, exponential bool) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("http.server.request.duration")
	m.SetUnit("s")
	if exponential {
		m.SetEmptyExponentialHistogram()
	} else {
		m.SetEmptyHistogram()
	}
	for range n {
		var attrs pcommon.Map
		var ex pmetric.ExemplarSlice
		if exponential {
			p := m.ExponentialHistogram().DataPoints().AppendEmpty()
			p.SetCount(10)
			p.Positive().BucketCounts().FromRaw([]uint64{1, 2, 3, 4, 0, 0, 0, 0, 0, 0})
			attrs, ex = p.Attributes(), p.Exemplars()
		} else {
			p := m.Histogram().DataPoints().AppendEmpty()
			p.SetCount(10)
			p.BucketCounts().FromRaw([]uint64{1, 2, 3, 4, 0, 0, 0, 0, 0, 0})
			p.ExplicitBounds().FromRaw([]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5})
			attrs, ex = p.Attributes(), p.Exemplars()
		}
		attrs.PutStr("http.route", "/api/v1/orders/{id}")
		attrs.PutStr("http.request.method", "GET")
		attrs.PutInt("http.response.status_code", 200)
		for range 2 {
			e := ex.AppendEmpty()
			e.SetDoubleValue(0.02)
			e.SetTraceID(pcommon.TraceID{1})
			e.SetSpanID(pcommon.SpanID{1})
		}
	}
	return md
}

// sums: n int sum points of 4 attributes.
func sums(n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("http.server.requests")
	dps := m.SetEmptySum().DataPoints()
	for i := range n {
		p := dps.AppendEmpty()
		p.SetIntValue(int64(i))
		p.SetTimestamp(1)
		a := p.Attributes()
		a.PutStr("http.route", "/api/v1/orders/{id}")
		a.PutStr("http.request.method", "GET")
		a.PutInt("http.response.status_code", 200)
		a.PutStr("user.id", fmt.Sprintf("u-%05d", i))
	}
	return md
}

// logRecords: n records with a message body and 6 attributes.
func logRecords(n int) plog.Logs {
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	for i := range n {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(1_700_000_000_000_000_000)
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		lr.Body().SetStr(fmt.Sprintf("order %d shipped to warehouse east-1 after 3 retries", i))
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

// calibrationShapes are the request shapes TestDecodedSizeCalibration holds
// the estimate to, from the worst (2 bytes on the wire per decoded struct)
// to ordinary ones, per signal.
func calibrationShapes(t testing.TB) []struct {
	name string
	sig  Signal
	body []byte
} {
	var tiny []byte // a span of 100 attributes, 10 bytes each (Span.attributes)
	for i := range 100 {
		tiny = append(tiny, repeat(9, kvInt(fmt.Sprintf("k%d", i%10), int64(i%100)), 1)...)
	}
	// Sample.values (2, packed int64), Sample.attribute_indices (3, packed int32)
	samples := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), []byte{1, 2, 3, 4, 5, 6, 7, 0x80, 1})
	samples = protowire.AppendBytes(protowire.AppendTag(samples, 3, protowire.BytesType), []byte{1, 2, 3, 4})
	return []struct {
		name string
		sig  Signal
		body []byte
	}{
		{"empty spans x 100,000", Traces, nest([]protowire.Number{1, 2, 2}, nil, 100_000)},
		{"empty scope spans x 100,000", Traces, nest([]protowire.Number{1, 2}, nil, 100_000)},
		{"empty resource spans x 100,000", Traces, nest([]protowire.Number{1}, nil, 100_000)},
		{"spans of 100 tiny int attributes x 1,000", Traces, nest([]protowire.Number{1, 2, 2}, tiny, 1_000)},
		{"one span of 200,000 int attributes", Traces, nest([]protowire.Number{1, 2, 2, 9}, kvInt("k", 1), 200_000)},
		{"one span of 200,000 empty attributes", Traces, nest([]protowire.Number{1, 2, 2, 9}, nil, 200_000)},
		{"one span of 100,000 string attributes (10 B)", Traces, nest([]protowire.Number{1, 2, 2, 9}, kvStr("key", "0123456789"), 100_000)},
		{"one span of 100,000 empty events", Traces, nest([]protowire.Number{1, 2, 2, 11}, nil, 100_000)},
		{"one span of 100,000 empty links", Traces, nest([]protowire.Number{1, 2, 2, 13}, nil, 100_000)},
		{"ordinary spans x 10,000 (name, ids, 12 string attributes)", Traces, marshalProto(t, ordinarySpans(10_000))},
		{"SDK spans x 5,000 (8 attributes, an event)", Traces, marshalProto(t, sdkSpans(5_000))},
		{"pdata testdata spans x 10,000", Traces, marshalProto(t, testdata.GenerateTraces(10_000))},

		{"empty metrics x 100,000", Metrics, nest([]protowire.Number{1, 2, 2}, nil, 100_000)},
		{"metrics of an empty gauge x 100,000", Metrics, nest([]protowire.Number{1, 2, 2}, []byte{0x2a, 0x00}, 100_000)},
		{"empty number points x 100,000", Metrics, nest([]protowire.Number{1, 2, 2, 5, 1}, nil, 100_000)},
		{"empty histogram points x 100,000", Metrics, nest([]protowire.Number{1, 2, 2, 9, 1}, nil, 100_000)},
		{"empty exponential histogram points x 100,000", Metrics, nest([]protowire.Number{1, 2, 2, 10, 1}, nil, 100_000)},
		{"empty summary points x 100,000", Metrics, nest([]protowire.Number{1, 2, 2, 11, 1}, nil, 100_000)},
		{"a point of 100,000 empty exemplars", Metrics, nest([]protowire.Number{1, 2, 2, 5, 1, 5}, nil, 100_000)},
		{"sum points x 10,000 (4 attributes)", Metrics, marshalProto(t, sums(10_000))},
		{"histogram points x 5,000 (3 attributes, 10 buckets, 2 exemplars)", Metrics, marshalProto(t, histograms(5_000, false))},
		{"exponential histogram points x 5,000", Metrics, marshalProto(t, histograms(5_000, true))},
		{"pdata testdata metrics x 5,000", Metrics, marshalProto(t, testdata.GenerateMetrics(5_000))},

		{"empty log records x 100,000", Logs, nest([]protowire.Number{1, 2, 2}, nil, 100_000)},
		{"log records x 10,000 (body, 6 attributes)", Logs, marshalProto(t, logRecords(10_000))},
		{"pdata testdata logs x 10,000", Logs, marshalProto(t, testdata.GenerateLogs(10_000))},

		{"empty samples x 100,000", Profiles, nest([]protowire.Number{1, 2, 2, 2}, nil, 100_000)},
		{"samples of 8 values and 4 attribute indices x 50,000", Profiles, nest([]protowire.Number{1, 2, 2, 2}, samples, 50_000)},
		{"a string table of 100,000 strings (10 B)", Profiles, repeat(2, repeat(5, []byte("0123456789"), 100_000), 1)},
		{"pdata testdata profiles x 5,000", Profiles, marshalProto(t, testdata.GenerateProfiles(5_000))},
	}
}

// TestDecodedSizeCalibration holds the estimate to what pdata allocates to
// decode requests of each shape, in protobuf and in OTLP/JSON (the same
// data, as pdata encodes it): within 0.7x to 1.5x.
func TestDecodedSizeCalibration(t *testing.T) {
	c := newChecker(t, 64, true)
	var table strings.Builder
	for _, s := range calibrationShapes(t) {
		est, err := c.CheckProtoSize(s.sig, s.body)
		require.Nil(t, err, s.name)
		actual := decodeAlloc(t, s.sig, s.body, 1)
		ratio := float64(est) / actual
		assert.True(t, ratio >= 0.7 && ratio <= 1.5, "%s: estimated %d bytes, pdata allocated %.0f (%.2fx)", s.name, est, actual, ratio)

		js := toJSON(t, s.sig, s.body)
		jsonEst, err := c.CheckJSONSize(s.sig, js)
		require.Nil(t, err, s.name)
		jsonActual := decodeAllocJSON(t, s.sig, js, 1)
		jsonRatio := float64(jsonEst) / jsonActual
		assert.True(t, jsonRatio >= 0.7 && jsonRatio <= 1.5, "%s as JSON: estimated %d bytes, pdata allocated %.0f (%.2fx)", s.name, jsonEst, jsonActual, jsonRatio)

		fmt.Fprintf(&table, "| %s | %s | %.1f | %.1f | %.1f | %.2f | %.1f | %.1f | %.2f |\n", s.sig, s.name,
			float64(len(s.body))/(1<<20), actual/(1<<20), float64(est)/(1<<20), ratio,
			float64(len(js))/(1<<20), jsonActual/(1<<20), jsonRatio)
	}
	t.Logf("\n| signal | request | protobuf MiB | pdata allocated MiB | estimated MiB | estimate / allocated | JSON MiB | allocated MiB | estimate / allocated |\n"+
		"| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n%s", table.String())
}

// toJSON is the request b of sig as pdata encodes it in OTLP/JSON.
func toJSON(t testing.TB, sig Signal, b []byte) []byte {
	t.Helper()
	var js []byte
	var err error
	switch sig {
	case Traces:
		r := ptraceotlp.NewExportRequest()
		require.NoError(t, r.UnmarshalProto(b))
		js, err = r.MarshalJSON()
	case Metrics:
		r := pmetricotlp.NewExportRequest()
		require.NoError(t, r.UnmarshalProto(b))
		js, err = r.MarshalJSON()
	case Logs:
		r := plogotlp.NewExportRequest()
		require.NoError(t, r.UnmarshalProto(b))
		js, err = r.MarshalJSON()
	case Profiles:
		r := pprofileotlp.NewExportRequest()
		require.NoError(t, r.UnmarshalProto(b))
		js, err = r.MarshalJSON()
	}
	require.NoError(t, err)
	return js
}

// decodeAllocJSON is decodeAlloc for OTLP/JSON.
func decodeAllocJSON(t testing.TB, sig Signal, b []byte, runs int) float64 {
	t.Helper()
	measure := func(b []byte) float64 {
		least := math.Inf(1)
		for range 3 {
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			for range runs {
				require.NoError(t, pdataDecodeJSON(sig, b))
			}
			runtime.ReadMemStats(&m1)
			least = min(least, float64(m1.TotalAlloc-m0.TotalAlloc)/float64(runs))
		}
		return least
	}
	return measure(b) - measure([]byte("{}"))
}

// TestDecodedSizeJSONKeys: OTLP/JSON keys in either spelling pdata reads
// (lowerCamelCase, snake_case), and escaped, are found in the schema; keys
// pdata skips cost only their own bytes.
func TestDecodedSizeJSONKeys(t *testing.T) {
	c := newChecker(t, 64, true)
	spans := strings.Repeat("{},", 999) + "{}"
	estimate := func(body string) int64 {
		est, err := c.CheckJSONSize(Traces, []byte(body))
		require.Nil(t, err)
		require.NoError(t, pdataDecodeJSON(Traces, []byte(body)))
		return est
	}
	camel := estimate(`{"resourceSpans":[{"scopeSpans":[{"spans":[` + spans + `]}]}]}`)
	assert.Greater(t, camel, int64(1000*216))
	assert.InDelta(t, camel, estimate(`{"resource_spans":[{"scope_spans":[{"spans":[`+spans+`]}]}]}`), 16)
	assert.InDelta(t, camel, estimate(`{"resourceSpans":[{"scopeSpans":[{"sp\u0061ns":[`+spans+`]}]}]}`), 16)
	assert.InDelta(t, camel, estimate(`{"resourceSpans" : [ {"scopeSpans": [{ "spans" :[`+strings.ReplaceAll(spans, ",", " ,\n ")+`] } ] } ] }`), 16)
	unknown := estimate(`{"resourceSpans":[{"scopeSpans":[{"notSpans":[` + spans + `]}]}]}`)
	assert.Less(t, unknown, int64(1000))
}

// TestDecodedSizeJSONDeep: values nested as deep as the default max_depth
// allows are estimated with the schema; deeper (max_depth 100), beyond
// jsonTracked brackets, level by level without it (jsonUntracked an
// object): both within 0.7x to 1.5x of what pdata allocates, in maps and in
// arrays.
func TestDecodedSizeJSONDeep(t *testing.T) {
	require.GreaterOrEqual(t, jsonTracked, JSONDepthLimit(64))
	for _, levels := range []int{64, 100} {
		c := newChecker(t, levels, true)
		for _, viaSlice := range []bool{false, true} {
			ld := plog.NewLogs()
			sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
			for range 100 {
				setNested(sl.LogRecords().AppendEmpty().Body(), levels, viaSlice)
			}
			js := marshalJSON(t, ld)
			est, err := c.CheckJSONSize(Logs, js)
			require.Nil(t, err)
			actual := decodeAllocJSON(t, Logs, js, 3)
			ratio := float64(est) / actual
			t.Logf("100 log bodies nested %d levels (arrays %v): estimated %d, pdata allocated %.0f (%.2fx)", levels, viaSlice, est, actual, ratio)
			assert.True(t, ratio >= 0.7 && ratio <= 1.5, "%d levels (arrays %v): %.2fx", levels, viaSlice, ratio)
		}
	}
}
