package wirecheck

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/testdata"
	"google.golang.org/protobuf/encoding/protowire"
)

func newChecker(t testing.TB, maxDepth int, checkUTF8 bool) *Checker {
	t.Helper()
	c, err := New(maxDepth, checkUTF8)
	require.NoError(t, err)
	return c
}

func TestNewBounds(t *testing.T) {
	for _, d := range []int{0, -1, MaxDepthLimit + 1} {
		_, err := New(d, true)
		assert.Error(t, err, d)
	}
	for _, d := range []int{1, 64, MaxDepthLimit} {
		_, err := New(d, true)
		assert.NoError(t, err, d)
	}
}

// TestRealPayloadsPass: pdata's own test payloads of every signal, as the
// collector's encoder writes them, pass untouched, in protobuf and JSON.
func TestRealPayloadsPass(t *testing.T) {
	c := newChecker(t, 64, true)
	for sig, data := range map[Signal]any{
		Traces:   testdata.GenerateTraces(20),
		Metrics:  testdata.GenerateMetrics(20),
		Logs:     testdata.GenerateLogs(20),
		Profiles: testdata.GenerateProfiles(20),
	} {
		pb := marshalProto(t, data)
		assert.Nil(t, c.CheckProto(sig, pb), "%s protobuf", sig)
		assert.Nil(t, c.CheckJSON(marshalJSON(t, data)), "%s JSON", sig)
	}
	// Every metric type, with exemplars and bucket counts (packed fixed64).
	assert.Nil(t, c.CheckProto(Metrics, marshalProto(t, testdata.GenerateMetricsAllTypes())))
}

// TestDepth: a value of exactly max_depth levels in the deepest place of
// every signal passes, one level more is refused with the offset of the
// field that opens it; through maps and through slices.
func TestDepth(t *testing.T) {
	for _, maxDepth := range []int{1, 8, 64} {
		c := newChecker(t, maxDepth, true)
		for _, sig := range signals {
			for _, viaSlice := range []bool{false, true} {
				atLimit := marshalProto(t, withValue(sig, func(v pcommon.Value) { setNested(v, maxDepth, viaSlice) }))
				assert.Nil(t, c.CheckProto(sig, atLimit), "%s, %d levels (slice %v)", sig, maxDepth, viaSlice)
				require.NoError(t, pdataDecode(sig, atLimit))

				over := marshalProto(t, withValue(sig, func(v pcommon.Value) { setNested(v, maxDepth+1, viaSlice) }))
				err := c.CheckProto(sig, over)
				if assert.NotNil(t, err, "%s, %d levels (slice %v)", sig, maxDepth+1, viaSlice) {
					assert.Equal(t, ReasonDepth, err.Reason)
					assert.Contains(t, err.Error(), "protoguard: attribute nesting deeper than max_depth")
					// The offset is that of a tag opening an AnyValue field
					// (KeyValue.value 2, AnyValue.array_value 5 /
					// KeyValueList.values 1 -> KeyValue.value 2, ArrayValue.values 1).
					num, typ, n := protowire.ConsumeTag(over[err.Offset:])
					assert.Positive(t, n)
					assert.Equal(t, protowire.BytesType, typ)
					assert.Contains(t, []protowire.Number{1, 2, 5, 6}, num)
				}
			}
		}
	}
}

// TestDepthJSON: in JSON, what the protobuf check passes passes, and one
// level more than the bracket limit covers is refused.
func TestDepthJSON(t *testing.T) {
	for _, maxDepth := range []int{1, 8, 64} {
		c := newChecker(t, maxDepth, true)
		for _, sig := range signals {
			for _, viaSlice := range []bool{false, true} {
				atLimit := marshalJSON(t, withValue(sig, func(v pcommon.Value) { setNested(v, maxDepth, viaSlice) }))
				assert.Nil(t, c.CheckJSON(atLimit), "%s, %d levels (slice %v)", sig, maxDepth, viaSlice)
				require.NoError(t, pdataDecodeJSON(sig, atLimit))
			}
			// Maps nest 4 brackets a level: the limit is reached within 4
			// levels more (fewer where the value sits less deep than an exemplar's).
			over := marshalJSON(t, withValue(sig, func(v pcommon.Value) { setNested(v, maxDepth+4, false) }))
			err := c.CheckJSON(over)
			if assert.NotNil(t, err, "%s, %d levels", sig, maxDepth+4) {
				assert.Equal(t, ReasonDepth, err.Reason)
				assert.Contains(t, "{[", string(over[err.Offset]))
			}
		}
	}
}

// TestDepthJSONShallowest: how far beyond max_depth JSON goes where the
// bracket limit is loosest, a resource attribute (7 brackets down): 87
// levels through arrays, 66 through maps (README).
func TestDepthJSONShallowest(t *testing.T) {
	c := newChecker(t, 64, true)
	for _, tc := range []struct {
		viaSlice bool
		most     int
	}{{true, 87}, {false, 66}} {
		for levels, pass := range map[int]bool{tc.most: true, tc.most + 1: false} {
			td := ptrace.NewTraces()
			setNested(td.ResourceSpans().AppendEmpty().Resource().Attributes().PutEmpty("deep"), levels, tc.viaSlice)
			err := c.CheckJSON(marshalJSON(t, td))
			assert.Equal(t, pass, err == nil, "%d levels (slice %v): %v", levels, tc.viaSlice, err)
		}
	}
}

func TestJSONScan(t *testing.T) {
	c := newChecker(t, 1, true)
	limit := JSONDepthLimit(1)
	deep := func(n int) string {
		s := ""
		for range n {
			s += "["
		}
		for range n {
			s += "]"
		}
		return s
	}
	for _, tc := range []struct {
		name, body string
		want       Reason
	}{
		{"at the bracket limit", deep(limit), 0},
		{"over the bracket limit", deep(limit + 1), ReasonDepth},
		{"brackets inside strings do not count", `{"a":"` + deep(limit+5) + `"}`, 0},
		{"escaped quote keeps the string open", `{"a":"\"` + deep(limit+5) + `"}`, 0},
		{"escaped backslash closes it", `{"a":"\\"` + deep(limit + 1)[:limit+1] + `}`, ReasonDepth},
		{"invalid UTF-8", `{"a":"` + "\xff" + `"}`, ReasonUTF8},
		{"empty", ``, 0},
		{"unterminated string", `{"a":"[[[`, 0},
	} {
		err := c.CheckJSON([]byte(tc.body))
		if tc.want == 0 {
			assert.Nil(t, err, tc.name)
		} else if assert.NotNil(t, err, tc.name) {
			assert.Equal(t, tc.want, err.Reason, tc.name)
		}
	}
	assert.Nil(t, newChecker(t, 1, false).CheckJSON([]byte(`{"a":"`+"\xff"+`"}`)), "check_utf8 off")
}

// TestMalformed: truncations, garbage, wrong wire types and bad packed
// runs are refused as malformed, in every signal, and pdata refuses them
// too.
func TestMalformed(t *testing.T) {
	c := newChecker(t, 64, true)
	for _, sig := range signals {
		valid := marshalProto(t, withValue(sig, func(v pcommon.Value) { setNested(v, 3, false) }))
		cases := map[string][]byte{
			"garbage":                       []byte("\xff\xff\xff\xff not protobuf"),
			"truncated by one byte":         valid[:len(valid)-1],
			"length past the end":           {0x0a, 0x05, 0x0a},
			"tag without its length":        {0x0a},
			"varint field without value":    {0x0a, 0x02, 0x0a, 0x00, 0x10},
			"field number 0":                {0x02, 0x00},
			"end group without start":       {0x0c},
			"wire type 6":                   {0x0e},
			"varint for a message field":    {0x08, 0x01},
			"overlong varint":               append([]byte{0x08}, []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")...),
			"resource field as fixed32":     {0x0a, 0x05, 0x0d, 1, 2, 3, 4},
			"unknown field, truncated":      {0x0a, 0x02, 0xf8, 0x07},
			"unknown group, not terminated": {0x0a, 0x02, 0xfb, 0x07},
			"unknown group holding a field": append(append([]byte(nil), valid...), 0xfb, 0x07, 0x08, 0x07, 0xfc, 0x07),
		}
		for name, b := range cases {
			err := c.CheckProto(sig, b)
			if assert.NotNil(t, err, "%s: %s", sig, name) {
				assert.Equal(t, ReasonMalformed, err.Reason, "%s: %s: %v", sig, name, err)
				assert.Contains(t, err.Error(), "protoguard: malformed protobuf at byte offset")
			}
			assert.Error(t, pdataDecode(sig, b), "%s: %s: pdata accepts it", sig, name)
		}
		assert.Nil(t, c.CheckProto(sig, nil), "%s: an empty request is valid", sig)
	}
}

func TestMalformedPacked(t *testing.T) {
	c := newChecker(t, 64, true)
	// ExportMetricsServiceRequest{resource_metrics{scope_metrics{metrics{
	// histogram(9){data_points(1){bucket_counts(6): 7 bytes}}}}}}
	dp := []byte{0x32, 0x07, 1, 2, 3, 4, 5, 6, 7}
	b := wrap(wrap(wrap(wrap(wrap(dp, 1), 9), 2), 2), 1)
	err := c.CheckProto(Metrics, b)
	if assert.NotNil(t, err) {
		assert.Equal(t, ReasonMalformed, err.Reason)
		assert.Contains(t, err.Error(), "packed field opentelemetry.proto.metrics.v1.HistogramDataPoint.bucket_counts is 7 bytes, not a multiple of 8")
	}
	assert.Error(t, pdataDecode(Metrics, b))
	// Sample.values (2): packed varints, the last one cut.
	sample := []byte{0x12, 0x02, 0x01, 0x80}
	b = wrap(wrap(wrap(wrap(sample, 2), 2), 2), 1)
	err = c.CheckProto(Profiles, b)
	if assert.NotNil(t, err) {
		assert.Equal(t, ReasonMalformed, err.Reason)
		assert.Contains(t, err.Error(), "packed field opentelemetry.proto.profiles.v1development.Sample.values")
	}
	assert.Error(t, pdataDecode(Profiles, b))
	// The same values unpacked, and packed whole, pass.
	for _, s := range [][]byte{{0x10, 0x01, 0x10, 0x80, 0x01}, {0x12, 0x03, 0x01, 0x80, 0x01}} {
		b = wrap(wrap(wrap(wrap(s, 2), 2), 2), 1)
		assert.Nil(t, c.CheckProto(Profiles, b))
		assert.NoError(t, pdataDecode(Profiles, b))
	}
}

// wrap is b as field num (length-delimited) of an enclosing message.
func wrap(b []byte, num protowire.Number) []byte {
	out := protowire.AppendTag(nil, num, protowire.BytesType)
	return append(protowire.AppendBytes(out, b), nil...)
}

// TestUnknownFieldsPass: fields a newer OTLP may add are skipped, as
// protobuf-go and pdata skip them, whatever their wire type (but groups,
// which proto3 does not have: TestMalformed).
func TestUnknownFieldsPass(t *testing.T) {
	c := newChecker(t, 64, true)
	for _, sig := range signals {
		b := marshalProto(t, withValue(sig, func(v pcommon.Value) { v.SetStr("x") }))
		for _, typ := range []protowire.Type{protowire.VarintType, protowire.Fixed32Type, protowire.Fixed64Type, protowire.BytesType} {
			u := protowire.AppendTag(append([]byte(nil), b...), 1000, typ)
			switch typ {
			case protowire.VarintType:
				u = protowire.AppendVarint(u, 1<<40)
			case protowire.Fixed32Type:
				u = protowire.AppendFixed32(u, 1)
			case protowire.Fixed64Type:
				u = protowire.AppendFixed64(u, 1)
			case protowire.BytesType:
				u = protowire.AppendBytes(u, []byte("\xff not checked"))
			}
			assert.Nil(t, c.CheckProto(sig, u), "%s, unknown field of wire type %d", sig, typ)
			assert.NoError(t, pdataDecode(sig, u), "%s, unknown field of wire type %d", sig, typ)
		}
	}
}

// TestUTF8: invalid UTF-8 in a key, a string value, a span name, a metric
// name, a profile's string table: refused with check_utf8 (protobuf-go's
// decoder refuses them too), passed without; bytes values are not strings.
func TestUTF8(t *testing.T) {
	on, off := newChecker(t, 64, true), newChecker(t, 64, false)
	bad := "ok \xc3\x28 bad"
	for _, sig := range signals {
		for name, data := range map[string]any{
			"value": withValue(sig, func(v pcommon.Value) { v.SetStr(bad) }),
			"key":   withValue(sig, func(v pcommon.Value) { v.SetEmptyMap().PutStr(bad, "v") }),
		} {
			b := marshalProto(t, data)
			err := on.CheckProto(sig, b)
			if assert.NotNil(t, err, "%s %s", sig, name) {
				assert.Equal(t, ReasonUTF8, err.Reason)
				assert.Contains(t, err.Error(), "protoguard: invalid UTF-8 in string field opentelemetry.proto.common.v1.")
				assert.Equal(t, byte(0xc3), b[err.Offset], "the offset points at the first invalid byte")
			}
			assert.Nil(t, off.CheckProto(sig, b), "%s %s, check_utf8 off", sig, name)
		}
		b := marshalProto(t, withValue(sig, func(v pcommon.Value) { v.SetEmptyBytes().FromRaw([]byte("\xff\xfe")) }))
		assert.Nil(t, on.CheckProto(sig, b), "%s: bytes are not UTF-8 checked", sig)
	}
	td := testdata.GenerateTraces(1)
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetName(bad)
	err := on.CheckProto(Traces, marshalProto(t, td))
	if assert.NotNil(t, err) {
		assert.Contains(t, err.Error(), "opentelemetry.proto.trace.v1.Span.name")
	}
	pd := testdata.GenerateProfiles(1)
	pd.Dictionary().StringTable().Append(bad)
	err = on.CheckProto(Profiles, marshalProto(t, pd))
	if assert.NotNil(t, err) {
		assert.Contains(t, err.Error(), "opentelemetry.proto.profiles.v1development.ProfilesDictionary.string_table")
	}
}

// TestNoAllocations: the check, and the estimate, allocate nothing on a
// valid request.
func TestNoAllocations(t *testing.T) {
	c := newChecker(t, 64, true)
	for _, sig := range signals {
		b := marshalProto(t, withValue(sig, func(v pcommon.Value) { setNested(v, 64, false) }))
		assert.Zero(t, testing.AllocsPerRun(20, func() { _ = c.CheckProto(sig, b) }), sig)
	}
	j := marshalJSON(t, testdata.GenerateTraces(10))
	assert.Zero(t, testing.AllocsPerRun(20, func() { _ = c.CheckJSON(j) }))
	assert.Zero(t, testing.AllocsPerRun(20, func() { _, _ = c.CheckJSONSize(Traces, j) }))
	escaped := []byte(`{"resourceSpans":[{"scopeSpans":[{"sp\u0061ns":[{},{}]}]}]}`)
	assert.Zero(t, testing.AllocsPerRun(20, func() { _, _ = c.CheckJSONSize(Traces, escaped) }))
}
