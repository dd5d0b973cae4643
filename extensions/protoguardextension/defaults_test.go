package protoguardextension

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/wirecheck"
)

// requestOf is a traces request just under limit bytes of one resource and
// one scope whose spans are copies of span (encoded Span bytes), as
// tests/memory_test.go TestRequestExpansion builds it.
func requestOf(span []byte, limit int) []byte {
	per := len(span) + 1 + len(protowire.AppendVarint(nil, uint64(len(span))))
	var spans []byte
	for range (limit - 64) / per {
		spans = protowire.AppendBytes(protowire.AppendTag(spans, 2, protowire.BytesType), span)
	}
	scope := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), spans)
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), scope)
}

// TestDefaultMaxDecodedSize: at the gateway's body limit (20 MiB), the
// default max_decoded_size (128 MiB) takes a request of ordinary spans
// (name, IDs, 12 string attributes: TestRequestExpansion's) and refuses
// one of empty spans or of spans of 100 tiny attributes; the estimate of
// the ordinary one is held to what pdata allocates to decode it.
func TestDefaultMaxDecodedSize(t *testing.T) {
	const limit = 20 << 20
	var tiny []byte
	for i := range 100 {
		any := protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), uint64(i%100))
		kv := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), fmt.Sprintf("k%d", i%10))
		kv = protowire.AppendBytes(protowire.AppendTag(kv, 2, protowire.BytesType), any)
		tiny = protowire.AppendBytes(protowire.AppendTag(tiny, 9, protowire.BytesType), kv)
	}
	ordinary := ptrace.NewSpan()
	ordinary.SetName("GET /api/v1/items/{id}")
	ordinary.SetTraceID(pcommon.TraceID{1, 2, 3})
	ordinary.SetSpanID(pcommon.SpanID{4, 5})
	ordinary.SetStartTimestamp(1)
	ordinary.SetEndTimestamp(2)
	for i := range 12 {
		ordinary.Attributes().PutStr(fmt.Sprintf("attribute.%d", i), "a value of some thirty bytes..")
	}
	td := ptrace.NewTraces()
	ordinary.CopyTo(td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty())
	one, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	require.NoError(t, err)
	ordinarySpan := one // the one span's bytes, inside resource_spans, scope_spans, spans
	for range 3 {
		_, _, n := protowire.ConsumeTag(ordinarySpan)
		ordinarySpan, _ = protowire.ConsumeBytes(ordinarySpan[n:])
	}
	require.NotEmpty(t, ordinarySpan)

	c, err := wirecheck.New(64, true)
	require.NoError(t, err)
	for _, s := range []struct {
		name   string
		span   []byte
		passes bool
	}{
		{"empty spans", nil, false},
		{"spans of 100 tiny attributes", tiny, false},
		{"ordinary spans", ordinarySpan, true},
	} {
		body := requestOf(s.span, limit)
		size, werr := c.CheckProtoSize(wirecheck.Traces, body)
		require.Nil(t, werr)
		t.Logf("%s: %.1f MiB on the wire, estimated %s once decoded (%.1f bytes per wire byte)",
			s.name, float64(len(body))/(1<<20), wirecheck.FormatBytes(size), float64(size)/float64(len(body)))
		assert.Equal(t, s.passes, size <= defaultMaxDecodedSize, s.name)
		if s.passes {
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			require.NoError(t, ptraceotlp.NewExportRequest().UnmarshalProto(body))
			runtime.ReadMemStats(&m1)
			allocated := float64(m1.TotalAlloc - m0.TotalAlloc)
			t.Logf("%s: pdata allocated %.1f MiB to decode it (estimate / allocated %.2f)", s.name, allocated/(1<<20), float64(size)/allocated)
			assert.InEpsilon(t, allocated, float64(size), 0.3)
		}
	}
}
