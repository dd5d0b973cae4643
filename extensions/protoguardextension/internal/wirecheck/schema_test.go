package wirecheck

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	collectorlogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

func requestDescriptor(sig Signal) protoreflect.MessageDescriptor {
	switch sig {
	case Traces:
		return (&collectortrace.ExportTraceServiceRequest{}).ProtoReflect().Descriptor()
	case Metrics:
		return (&collectormetrics.ExportMetricsServiceRequest{}).ProtoReflect().Descriptor()
	case Logs:
		return (&collectorlogs.ExportLogsServiceRequest{}).ProtoReflect().Descriptor()
	}
	md, err := profilesRequest()
	if err != nil {
		panic(err)
	}
	return md
}

func TestSchema(t *testing.T) {
	for _, sig := range signals {
		root := otlpSchema.roots[sig]
		require.NotNil(t, root, sig)
		assert.True(t, strings.HasPrefix(root.name, "opentelemetry.proto.collector."), root.name)
		assert.Equal(t, kindMessage, root.field(1).kind, "%s: resource_%s", sig, sig)
	}
	kv := otlpSchema.roots[Logs].field(1).msg.field(1).msg.field(1) // Resource.attributes
	require.Equal(t, "opentelemetry.proto.resource.v1.Resource.attributes", kv.name)
	av := kv.msg.field(2).msg
	assert.True(t, av.anyValue)
	assert.Equal(t, kindString, av.field(1).kind, "string_value")
	assert.Equal(t, kindBytes, av.field(7).kind, "bytes_value")
	// The deepest first AnyValue in JSON: a metric exemplar's filtered
	// attribute: {resourceMetrics:[{scopeMetrics:[{metrics:[{exponentialHistogram:
	// {dataPoints:[{exemplars:[{filteredAttributes:[{value:{
	assert.Equal(t, 15, jsonFirstAnyValue)
	assert.Equal(t, 15+4*63, JSONDepthLimit(64))
}

// TestEveryFieldAsEncoded fills every field of every message of each
// signal's request (every oneof choice in turn, repeated fields twice,
// AnyValue nested 3 levels), encodes it with protobuf-go, and checks that the
// wire check passes it and pdata decodes it: the descriptors the check
// walks and pdata's generated decoder agree on every field's wire type.
func TestEveryFieldAsEncoded(t *testing.T) {
	c := newChecker(t, 3, true)
	for _, sig := range signals {
		md := requestDescriptor(sig)
		for variant := range 7 { // AnyValue has the most oneof choices: 7
			msg := dynamicpb.NewMessage(md)
			fill(msg, variant, 3)
			for _, det := range []bool{false, true} {
				b, err := proto.MarshalOptions{Deterministic: det}.Marshal(msg)
				require.NoError(t, err)
				assert.Nil(t, c.CheckProto(sig, b), "%s, variant %d", sig, variant)
				assert.NoError(t, pdataDecode(sig, b), "%s, variant %d", sig, variant)
			}
		}
	}
}

// fill sets every field of m: the variant-th field of each oneof, two
// elements of repeated fields, AnyValue at most anyLevels deep.
func fill(m protoreflect.Message, variant, anyLevels int) {
	md := m.Descriptor()
	if md.FullName() == anyValueName {
		anyLevels--
	}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if oo := fd.ContainingOneof(); oo != nil && !oo.IsSynthetic() {
			choice := variant % oo.Fields().Len()
			if md.FullName() == anyValueName && anyLevels <= 0 && choice >= 4 && choice <= 5 {
				choice = 0 // no array_value or kvlist_value at the last level
			}
			if oo.Fields().Get(choice) != fd {
				continue
			}
		}
		if fd.IsList() {
			l := m.Mutable(fd).List()
			for j := range 2 {
				l.Append(fieldValue(m, fd, l.NewElement(), variant+j, anyLevels))
			}
			continue
		}
		var el protoreflect.Value
		if fd.Kind() == protoreflect.MessageKind {
			el = m.NewField(fd)
		}
		m.Set(fd, fieldValue(m, fd, el, variant, anyLevels))
	}
}

func fieldValue(_ protoreflect.Message, fd protoreflect.FieldDescriptor, el protoreflect.Value, variant, anyLevels int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.MessageKind:
		fill(el.Message(), variant, anyLevels)
		return el
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(1)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(-int32(variant) - 1)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(-1 << 40)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(300)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(1 << 62)
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(1.5)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(-2.5)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString("héllo ✓ " + string(fd.Name()))
	case protoreflect.BytesKind:
		switch {
		case strings.HasSuffix(string(fd.Name()), "trace_id"), fd.Name() == "profile_id":
			return protoreflect.ValueOfBytes([]byte("0123456789abcdef"))
		case strings.HasSuffix(string(fd.Name()), "span_id"):
			return protoreflect.ValueOfBytes([]byte("01234567"))
		}
		return protoreflect.ValueOfBytes([]byte{0xff, 0x00, 0xfe})
	}
	panic(fd.Kind())
}
