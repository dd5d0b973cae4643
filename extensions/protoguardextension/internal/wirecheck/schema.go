package wirecheck // import "github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/wirecheck"

//go:generate go run gen_profiles.go

import (
	_ "embed"
	"fmt"

	collectorlogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Signal is an OTLP signal, the request message the check walks from.
type Signal uint8

const (
	Traces Signal = iota
	Metrics
	Logs
	Profiles
	numSignals
)

func (s Signal) String() string {
	switch s {
	case Traces:
		return "traces"
	case Metrics:
		return "metrics"
	case Logs:
		return "logs"
	case Profiles:
		return "profiles"
	}
	return fmt.Sprintf("Signal(%d)", uint8(s))
}

// anyValueName is the message whose nesting max_depth limits: attribute
// values and log bodies, nested through ArrayValue and KeyValueList.
const anyValueName = "opentelemetry.proto.common.v1.AnyValue"

// kind is what the walker needs to know of a field: which wire types it may
// have, whether to recurse, whether to check UTF-8.
type kind uint8

const (
	kindUnknown kind = iota // not in the schema: any well-formed field value
	kindVarint              // int32, int64, uint32, uint64, sint32, sint64, bool, enum
	kindFixed32             // fixed32, sfixed32, float
	kindFixed64             // fixed64, sfixed64, double
	kindBytes
	kindString
	kindMessage
)

type field struct {
	kind kind
	// packed: a repeated scalar, which may also come as one length-delimited
	// run of values (both encodings must be accepted, as protobuf-go does).
	packed   bool
	repeated bool
	msg      *message // kindMessage
	name     string   // full name, for error messages

	// What an occurrence costs once decoded (decoded.go): cost bytes, plus
	// its length if copies; a repeated field also grows a slice of slot-byte
	// elements, counted in the walk's grow-th counter (-1: none).
	cost   int32
	slot   int32
	copies bool
	grow   int8
}

// message is one message type of the schema, its fields indexed by number.
type message struct {
	name     string
	fields   []field
	anyValue bool
	// growSlots: the element size of each repeated field the walk counts
	// (field.grow indexes it).
	growSlots []int32
	// jsonNames: the fields by their OTLP/JSON names, lowerCamelCase and
	// as in the .proto (pdata accepts both), by the length of the name.
	jsonNames [][]jsonName
}

type jsonName struct {
	name string
	f    *field
}

// jsonField is the field whose OTLP/JSON name is key, or nil: one of the
// few names of its length.
func (m *message) jsonField(key []byte) *field {
	if len(key) == 0 || len(key) >= len(m.jsonNames) {
		return nil
	}
	for _, n := range m.jsonNames[len(key)] {
		if n.name[0] == key[0] && n.name == string(key) {
			return n.f
		}
	}
	return nil
}

func (m *message) field(num int) *field {
	if num < len(m.fields) {
		return &m.fields[num]
	}
	return nil
}

// maxFieldNumber bounds the dense field tables; OTLP's highest is 16.
const maxFieldNumber = 1 << 10

// schema holds one root message per signal, built once from descriptors.
type schema struct {
	roots [numSignals]*message
}

//go:embed profiles.binpb
var profilesDescriptors []byte

// otlpSchema is built at init from the descriptors of the OTLP version the
// collector links (go.opentelemetry.io/proto/otlp) and, for profiles, from
// the descriptors embedded in profiles.binpb (gen_profiles.go).
var otlpSchema = mustBuildSchema()

func mustBuildSchema() *schema {
	s, err := buildSchema()
	if err != nil {
		panic(fmt.Sprintf("protoguard: building the OTLP schema: %v", err))
	}
	return s
}

func buildSchema() (*schema, error) {
	profiles, err := profilesRequest()
	if err != nil {
		return nil, err
	}
	b := builder{seen: map[protoreflect.FullName]*message{}}
	s := &schema{}
	for sig, md := range [numSignals]protoreflect.MessageDescriptor{
		Traces:   (&collectortrace.ExportTraceServiceRequest{}).ProtoReflect().Descriptor(),
		Metrics:  (&collectormetrics.ExportMetricsServiceRequest{}).ProtoReflect().Descriptor(),
		Logs:     (&collectorlogs.ExportLogsServiceRequest{}).ProtoReflect().Descriptor(),
		Profiles: profiles,
	} {
		if s.roots[sig], err = b.message(md); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// profilesRequest is ExportProfilesServiceRequest from the embedded
// descriptors, resolved against the common and resource descriptors
// registered by go.opentelemetry.io/proto/otlp, in a registry of its own.
func profilesRequest() (protoreflect.MessageDescriptor, error) {
	set := &descriptorpb.FileDescriptorSet{}
	if err := proto.Unmarshal(profilesDescriptors, set); err != nil {
		return nil, fmt.Errorf("profiles.binpb: %w", err)
	}
	local := &protoregistry.Files{}
	r := resolver{local: local}
	for _, fdp := range set.File {
		fd, err := protodesc.NewFile(fdp, r)
		if err != nil {
			return nil, fmt.Errorf("profiles.binpb: %s: %w", fdp.GetName(), err)
		}
		if err := local.RegisterFile(fd); err != nil {
			return nil, err
		}
	}
	d, err := local.FindDescriptorByName("opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest")
	if err != nil {
		return nil, err
	}
	return d.(protoreflect.MessageDescriptor), nil
}

// resolver finds files in local first, then in the global registry.
type resolver struct{ local *protoregistry.Files }

func (r resolver) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	if fd, err := r.local.FindFileByPath(path); err == nil {
		return fd, nil
	}
	return protoregistry.GlobalFiles.FindFileByPath(path)
}

func (r resolver) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	if d, err := r.local.FindDescriptorByName(name); err == nil {
		return d, nil
	}
	return protoregistry.GlobalFiles.FindDescriptorByName(name)
}

type builder struct {
	seen map[protoreflect.FullName]*message
}

func (b *builder) message(md protoreflect.MessageDescriptor) (*message, error) {
	if m, ok := b.seen[md.FullName()]; ok {
		return m, nil
	}
	m := &message{name: string(md.FullName()), anyValue: md.FullName() == anyValueName}
	b.seen[md.FullName()] = m // before the fields: the schema is recursive
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		num := int(fd.Number())
		if num > maxFieldNumber {
			return nil, fmt.Errorf("%s: field number %d above %d", fd.FullName(), num, maxFieldNumber)
		}
		for len(m.fields) <= num {
			m.fields = append(m.fields, field{})
		}
		f := field{name: string(fd.FullName())}
		switch fd.Kind() {
		case protoreflect.BoolKind, protoreflect.EnumKind,
			protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Uint32Kind,
			protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Uint64Kind:
			f.kind = kindVarint
		case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
			f.kind = kindFixed32
		case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
			f.kind = kindFixed64
		case protoreflect.BytesKind:
			f.kind = kindBytes
		case protoreflect.StringKind:
			// protobuf-go rejects invalid UTF-8 in proto3 strings; proto2
			// strings are not checked (OTLP has none).
			f.kind = kindString
			if fd.ParentFile().Syntax() == protoreflect.Proto2 {
				f.kind = kindBytes
			}
		case protoreflect.MessageKind:
			f.kind = kindMessage
			child, err := b.message(fd.Message())
			if err != nil {
				return nil, err
			}
			f.msg = child
		default: // groups: proto2 only, none in OTLP
			return nil, fmt.Errorf("%s: unsupported kind %s", fd.FullName(), fd.Kind())
		}
		f.repeated = fd.IsList()
		f.packed = f.repeated && f.kind <= kindFixed64
		decodedCost(&f, fd, len(m.growSlots))
		if f.grow >= 0 {
			m.growSlots = append(m.growSlots, f.slot)
		}
		m.fields[num] = f
	}
	for i := range fields.Len() {
		fd := fields.Get(i)
		f := &m.fields[fd.Number()]
		for _, name := range []string{fd.JSONName(), string(fd.Name())} {
			for len(m.jsonNames) <= len(name) {
				m.jsonNames = append(m.jsonNames, nil)
			}
			if m.jsonField([]byte(name)) == nil {
				m.jsonNames[len(name)] = append(m.jsonNames[len(name)], jsonName{name, f})
			}
		}
	}
	return m, nil
}
