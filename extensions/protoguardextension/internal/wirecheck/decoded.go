package wirecheck // import "github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/wirecheck"

import (
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The decoded-size estimate: what pdata's decoder (pdata v1.51.0, its
// UnmarshalProto with the default feature gates: no proto pooling) allocates
// to decode a request, computed during the walk from what each field costs
// once decoded:
//
//   - a message held by pointer ([]*Span, a oneof's *Gauge) costs its
//     struct's allocation (pdataStructs); a oneof adds its 8-byte wrapper
//     (Metric_Gauge{*Gauge}); a message embedded in its parent (Resource,
//     Status, KeyValue.value) costs nothing of its own;
//   - a repeated field costs the slice pdata appends to, as Go grows it
//     (sliceGrowth): 8 bytes a slot for pointers, the struct's own size for
//     the few types held by value ([]KeyValue, []AnyValue, []Exemplar), the
//     scalar's size for repeated scalars;
//   - strings and copied bytes cost their length (rounded up to 8); IDs are
//     fixed-size arrays inside their struct and cost nothing;
//   - a scalar in a oneof costs its wrapper (AnyValue_IntValue{int64}: 8,
//     AnyValue_StringValue{string}: 16, AnyValue_BytesValue{[]byte}: 24);
//   - a packed run of fixed-size scalars is made whole (its length); a
//     packed run of varints is appended value by value.
//
// The struct sizes below were measured, not derived: each is what decoding
// one more instance of the type allocates, minus its slot or wrapper
// (runtime.MemStats.TotalAlloc around pdata's UnmarshalProto;
// TestDecodedSizePerType measures them again and fails when pdata's
// layout changes). The whole estimate is held to pdata's allocation for
// request shapes from the worst (empty spans) to ordinary ones by
// TestDecodedSizeCalibration.

// pdataStructs is the allocation of one decoded struct of each OTLP message
// type pdata holds by pointer (its Go size class), or, for the types held by
// value in their parent's slices (inline), the struct's Go size.
var pdataStructs = map[protoreflect.FullName]struct {
	size   int32
	inline bool
}{
	// common, resource
	"opentelemetry.proto.common.v1.KeyValue":     {32, true},
	"opentelemetry.proto.common.v1.AnyValue":     {16, true},
	"opentelemetry.proto.common.v1.ArrayValue":   {24, false},
	"opentelemetry.proto.common.v1.KeyValueList": {24, false},
	"opentelemetry.proto.common.v1.EntityRef":    {80, false},
	// traces
	"opentelemetry.proto.trace.v1.ResourceSpans": {128, false},
	"opentelemetry.proto.trace.v1.ScopeSpans":    {112, false},
	"opentelemetry.proto.trace.v1.Span":          {208, false},
	"opentelemetry.proto.trace.v1.Span.Event":    {64, false},
	"opentelemetry.proto.trace.v1.Span.Link":     {80, false},
	// metrics
	"opentelemetry.proto.metrics.v1.ResourceMetrics":                  {128, false},
	"opentelemetry.proto.metrics.v1.ScopeMetrics":                     {112, false},
	"opentelemetry.proto.metrics.v1.Metric":                           {96, false},
	"opentelemetry.proto.metrics.v1.Gauge":                            {24, false},
	"opentelemetry.proto.metrics.v1.Sum":                              {32, false},
	"opentelemetry.proto.metrics.v1.Histogram":                        {32, false},
	"opentelemetry.proto.metrics.v1.ExponentialHistogram":             {32, false},
	"opentelemetry.proto.metrics.v1.Summary":                          {24, false},
	"opentelemetry.proto.metrics.v1.NumberDataPoint":                  {96, false},
	"opentelemetry.proto.metrics.v1.HistogramDataPoint":               {160, false},
	"opentelemetry.proto.metrics.v1.ExponentialHistogramDataPoint":    {192, false},
	"opentelemetry.proto.metrics.v1.SummaryDataPoint":                 {96, false},
	"opentelemetry.proto.metrics.v1.SummaryDataPoint.ValueAtQuantile": {16, false},
	"opentelemetry.proto.metrics.v1.Exemplar":                         {72, true},
	// logs
	"opentelemetry.proto.logs.v1.ResourceLogs": {128, false},
	"opentelemetry.proto.logs.v1.ScopeLogs":    {112, false},
	"opentelemetry.proto.logs.v1.LogRecord":    {128, false},
	// profiles (development)
	"opentelemetry.proto.profiles.v1development.ResourceProfiles": {96, false},
	"opentelemetry.proto.profiles.v1development.ScopeProfiles":    {112, false},
	"opentelemetry.proto.profiles.v1development.Profile":          {160, false},
	"opentelemetry.proto.profiles.v1development.Sample":           {80, false},
	"opentelemetry.proto.profiles.v1development.Mapping":          {64, false},
	"opentelemetry.proto.profiles.v1development.Location":         {64, false},
	"opentelemetry.proto.profiles.v1development.Line":             {24, false},
	"opentelemetry.proto.profiles.v1development.Function":         {24, false},
	"opentelemetry.proto.profiles.v1development.Link":             {24, false},
	"opentelemetry.proto.profiles.v1development.KeyValueAndUnit":  {24, false},
	"opentelemetry.proto.profiles.v1development.Stack":            {24, false},
}

// defaultStructSize stands for a message type missing from pdataStructs (a
// newer OTLP than the table): about a mid-sized OTLP struct.
const defaultStructSize = 128

// idFields are bytes fields pdata decodes into fixed-size arrays inside their
// struct (TraceID, SpanID, ProfileID): nothing allocated.
var idFields = map[protoreflect.Name]bool{
	"trace_id": true, "span_id": true, "parent_span_id": true, "profile_id": true,
}

// maxGrowing bounds the repeated fields of one message whose slices the walk
// sizes exactly; more (none in OTLP: ProfilesDictionary has 7) are sized as
// if each occurrence began a slice of its own.
const maxGrowing = 8

// decodedCost sets what f, a field of the message described by fd, costs
// once decoded (the comment at the top of this file); grow is the number of
// growing fields the message has so far.
func decodedCost(f *field, fd protoreflect.FieldDescriptor, grow int) {
	f.grow = -1
	oneof := fd.ContainingOneof() != nil && !fd.ContainingOneof().IsSynthetic()
	switch f.kind {
	case kindMessage:
		s, ok := pdataStructs[fd.Message().FullName()]
		if !ok {
			s.size = defaultStructSize
		}
		switch {
		case f.repeated && s.inline:
			f.slot = s.size
		case f.repeated:
			f.slot, f.cost = 8, s.size
		case oneof:
			f.cost = 8 + s.size
		}
	case kindString:
		f.copies = true
		switch {
		case f.repeated:
			f.slot = 16
		case oneof:
			f.cost = 16
		}
	case kindBytes:
		f.copies = !idFields[fd.Name()]
		switch {
		case f.repeated:
			f.slot = 24
		case oneof:
			f.cost = 24
		}
	default: // scalars
		switch {
		case f.repeated:
			f.slot = scalarSize(fd.Kind())
		case oneof:
			f.cost = 8
		}
	}
	if f.slot > 0 && grow < maxGrowing {
		f.grow = int8(grow)
	}
}

// scalarSize is the Go size of a scalar of kind k as pdata holds it.
func scalarSize(k protoreflect.Kind) int32 {
	switch k {
	case protoreflect.BoolKind:
		return 1
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Uint32Kind, protoreflect.EnumKind,
		protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return 4
	}
	return 8
}

// sliceGrowth is what appending n elements of size elem, one at a time, to
// a nil slice allocates in all: every backing array Go's append allocates
// on the way (runtime.nextslicecap: double up to 256 elements, then about
// 1.25x), before rounding to size classes.
func sliceGrowth(n, elem int64) int64 {
	var total, c int64
	for c < n {
		switch {
		case c == 0:
			c = 1
		case c < 256:
			c *= 2
		default:
			c += (c + 3*256) >> 2
		}
		total += c * elem
	}
	return total
}

// stringCost is what copying a string or bytes value of n bytes allocates:
// n rounded up to 8 (the allocator's smallest granule).
func stringCost(n int) int64 { return int64(n+7) &^ 7 }
