// Package pprofconv converts pprof profiles (github.com/google/pprof/profile)
// into OTLP profiles (pdata pprofile, the dictionary format of collector
// v0.145.0). One pprof profile with N sample types becomes N OTLP profiles,
// one per sample type, sharing the batch's dictionary. Shared by the
// pyroscope receiver and the profilelink exporter.
package pprofconv // import "github.com/otelcol-fabric/otelcol-fabric/internal/pprofconv"

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
)

// Label keys that link a sample to a trace. Pyroscope's span-profile
// convention (otel-profiling-go) puts the local root span's id in span_id
// and its name in span_name; some SDKs also set trace_id.
const (
	LabelTraceID  = "trace_id"
	LabelSpanID   = "span_id"
	LabelSpanName = "span_name"
)

// Dict builds a pprofile dictionary with de-duplicated tables. Every table
// starts with its zero entry, as the OTLP profiles format requires.
type Dict struct {
	d         pprofile.ProfilesDictionary
	strings   map[string]int32
	functions map[uint64]int32 // pprof function id -> index
	mappings  map[uint64]int32
	locations map[uint64]int32
	stacks    map[string]int32
	attrs     map[attrKey]int32
	links     map[[24]byte]int32
}

type attrKey struct {
	key string
	str string
	num int64
	isN bool
}

// NewDict starts the dictionary of pd.
func NewDict(pd pprofile.Profiles) *Dict {
	b := &Dict{
		d:         pd.Dictionary(),
		strings:   map[string]int32{},
		functions: map[uint64]int32{},
		mappings:  map[uint64]int32{},
		locations: map[uint64]int32{},
		stacks:    map[string]int32{},
		attrs:     map[attrKey]int32{},
		links:     map[[24]byte]int32{},
	}
	b.Str("")
	b.d.FunctionTable().AppendEmpty()
	b.d.MappingTable().AppendEmpty()
	b.d.LocationTable().AppendEmpty()
	b.d.StackTable().AppendEmpty()
	b.d.AttributeTable().AppendEmpty()
	b.d.LinkTable().AppendEmpty()
	return b
}

// Str interns s in the string table. A string that is not valid UTF-8
// (pprof's string table is bytes; OTLP's strings must be UTF-8, and a
// gateway's protoguard refuses the whole request otherwise) has each invalid
// sequence replaced by U+FFFD.
func (b *Dict) Str(s string) int32 {
	if i, ok := b.strings[s]; ok {
		return i
	}
	i := int32(b.d.StringTable().Len())
	b.d.StringTable().Append(validUTF8(s))
	b.strings[s] = i
	return i
}

func (b *Dict) function(f *profile.Function) int32 {
	if i, ok := b.functions[f.ID]; ok {
		return i
	}
	i := int32(b.d.FunctionTable().Len())
	fn := b.d.FunctionTable().AppendEmpty()
	fn.SetNameStrindex(b.Str(f.Name))
	fn.SetSystemNameStrindex(b.Str(f.SystemName))
	fn.SetFilenameStrindex(b.Str(f.Filename))
	fn.SetStartLine(f.StartLine)
	b.functions[f.ID] = i
	return i
}

func (b *Dict) mapping(m *profile.Mapping) int32 {
	if m == nil {
		return 0
	}
	if i, ok := b.mappings[m.ID]; ok {
		return i
	}
	i := int32(b.d.MappingTable().Len())
	mp := b.d.MappingTable().AppendEmpty()
	mp.SetMemoryStart(m.Start)
	mp.SetMemoryLimit(m.Limit)
	mp.SetFileOffset(m.Offset)
	mp.SetFilenameStrindex(b.Str(m.File))
	b.mappings[m.ID] = i
	return i
}

func (b *Dict) location(l *profile.Location) int32 {
	if i, ok := b.locations[l.ID]; ok {
		return i
	}
	i := int32(b.d.LocationTable().Len())
	loc := b.d.LocationTable().AppendEmpty()
	loc.SetMappingIndex(b.mapping(l.Mapping))
	loc.SetAddress(l.Address)
	for _, ln := range l.Line {
		line := loc.Lines().AppendEmpty()
		if ln.Function != nil {
			line.SetFunctionIndex(b.function(ln.Function))
		}
		line.SetLine(ln.Line)
		line.SetColumn(ln.Column)
	}
	b.locations[l.ID] = i
	return i
}

func (b *Dict) stack(locs []*profile.Location) int32 {
	idx := make([]int32, len(locs))
	var key strings.Builder
	for j, l := range locs {
		idx[j] = b.location(l)
		key.WriteString(strconv.Itoa(int(idx[j])))
		key.WriteByte(',')
	}
	if i, ok := b.stacks[key.String()]; ok {
		return i
	}
	i := int32(b.d.StackTable().Len())
	b.d.StackTable().AppendEmpty().LocationIndices().FromRaw(idx)
	b.stacks[key.String()] = i
	return i
}

// validUTF8 is s with each invalid UTF-8 sequence replaced by U+FFFD.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// Attr interns a string attribute.
func (b *Dict) Attr(key, value string) int32 {
	k := attrKey{key: key, str: value}
	if i, ok := b.attrs[k]; ok {
		return i
	}
	i := int32(b.d.AttributeTable().Len())
	kv := b.d.AttributeTable().AppendEmpty()
	kv.SetKeyStrindex(b.Str(key))
	kv.Value().SetStr(validUTF8(value))
	b.attrs[k] = i
	return i
}

func (b *Dict) numAttr(key string, value int64, unit string) int32 {
	k := attrKey{key: key, num: value, isN: true, str: unit}
	if i, ok := b.attrs[k]; ok {
		return i
	}
	i := int32(b.d.AttributeTable().Len())
	kv := b.d.AttributeTable().AppendEmpty()
	kv.SetKeyStrindex(b.Str(key))
	kv.Value().SetInt(value)
	if unit != "" {
		kv.SetUnitStrindex(b.Str(unit))
	}
	b.attrs[k] = i
	return i
}

// Link interns a trace/span link.
func (b *Dict) Link(trace pcommon.TraceID, span pcommon.SpanID) int32 {
	var k [24]byte
	copy(k[:16], trace[:])
	copy(k[16:], span[:])
	if i, ok := b.links[k]; ok {
		return i
	}
	i := int32(b.d.LinkTable().Len())
	l := b.d.LinkTable().AppendEmpty()
	l.SetTraceID(trace)
	l.SetSpanID(span)
	b.links[k] = i
	return i
}

// AppendProfiles converts p into one OTLP profile per sample type, appended
// to sp, with tables in b. fallbackStart and fallbackDuration are used when
// p carries no time (the ingest API's from and until).
func (b *Dict) AppendProfiles(p *profile.Profile, sp pprofile.ScopeProfiles, fallbackStart pcommon.Timestamp, fallbackDuration uint64) {
	for ti, st := range p.SampleType {
		prof := sp.Profiles().AppendEmpty()
		prof.SampleType().SetTypeStrindex(b.Str(st.Type))
		prof.SampleType().SetUnitStrindex(b.Str(st.Unit))
		if p.PeriodType != nil {
			prof.PeriodType().SetTypeStrindex(b.Str(p.PeriodType.Type))
			prof.PeriodType().SetUnitStrindex(b.Str(p.PeriodType.Unit))
		}
		prof.SetPeriod(p.Period)
		if p.TimeNanos > 0 {
			prof.SetTime(pcommon.Timestamp(p.TimeNanos))
			prof.SetDurationNano(uint64(max(p.DurationNanos, 0)))
		} else {
			prof.SetTime(fallbackStart)
			prof.SetDurationNano(fallbackDuration)
		}
		prof.SetOriginalPayloadFormat("pprof")
		for _, s := range p.Sample {
			if ti >= len(s.Value) || s.Value[ti] == 0 {
				continue
			}
			smp := prof.Samples().AppendEmpty()
			smp.SetStackIndex(b.stack(s.Location))
			smp.Values().Append(s.Value[ti])
			var traceID pcommon.TraceID
			var spanID pcommon.SpanID
			var haveTrace, haveSpan bool
			for k, vs := range s.Label {
				for _, v := range vs {
					smp.AttributeIndices().Append(b.Attr(k, v))
				}
				if len(vs) == 0 {
					continue
				}
				switch k {
				case LabelTraceID:
					haveTrace = DecodeHex(vs[0], traceID[:])
				case LabelSpanID:
					haveSpan = DecodeHex(vs[0], spanID[:])
				}
			}
			for k, vs := range s.NumLabel {
				units := s.NumUnit[k]
				for j, v := range vs {
					unit := ""
					if j < len(units) {
						unit = units[j]
					}
					smp.AttributeIndices().Append(b.numAttr(k, v, unit))
				}
			}
			if haveTrace && haveSpan {
				smp.SetLinkIndex(b.Link(traceID, spanID))
			}
		}
	}
}

// DecodeHex decodes a hex id (trace or span id) of exactly len(dst) bytes.
func DecodeHex(s string, dst []byte) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

// ToPprof converts one OTLP profile (with its batch's dictionary) back into
// a pprof profile with a single sample type. Sample attributes become pprof
// labels (strings) and numeric labels (integers).
func ToPprof(dict pprofile.ProfilesDictionary, prof pprofile.Profile) (*profile.Profile, error) {
	st := dict.StringTable()
	str := func(i int32) string {
		if i < 0 || int(i) >= st.Len() {
			return ""
		}
		return st.At(int(i))
	}
	out := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: str(prof.SampleType().TypeStrindex()), Unit: str(prof.SampleType().UnitStrindex())}},
		TimeNanos:     int64(prof.Time()),
		DurationNanos: int64(prof.DurationNano()),
		Period:        prof.Period(),
	}
	if pt := prof.PeriodType(); pt.TypeStrindex() != 0 || pt.UnitStrindex() != 0 {
		out.PeriodType = &profile.ValueType{Type: str(pt.TypeStrindex()), Unit: str(pt.UnitStrindex())}
	}
	functions := map[int32]*profile.Function{}
	mappings := map[int32]*profile.Mapping{}
	locations := map[int32]*profile.Location{}
	fnTable, mapTable, locTable := dict.FunctionTable(), dict.MappingTable(), dict.LocationTable()
	function := func(i int32) (*profile.Function, error) {
		if f, ok := functions[i]; ok {
			return f, nil
		}
		if i <= 0 || int(i) >= fnTable.Len() {
			return nil, fmt.Errorf("function index %d out of range", i)
		}
		fn := fnTable.At(int(i))
		f := &profile.Function{ID: uint64(len(out.Function) + 1), Name: str(fn.NameStrindex()),
			SystemName: str(fn.SystemNameStrindex()), Filename: str(fn.FilenameStrindex()), StartLine: fn.StartLine()}
		functions[i] = f
		out.Function = append(out.Function, f)
		return f, nil
	}
	mapping := func(i int32) *profile.Mapping {
		if i <= 0 || int(i) >= mapTable.Len() {
			return nil
		}
		if m, ok := mappings[i]; ok {
			return m
		}
		mp := mapTable.At(int(i))
		m := &profile.Mapping{ID: uint64(len(out.Mapping) + 1), Start: mp.MemoryStart(), Limit: mp.MemoryLimit(),
			Offset: mp.FileOffset(), File: str(mp.FilenameStrindex())}
		mappings[i] = m
		out.Mapping = append(out.Mapping, m)
		return m
	}
	location := func(i int32) (*profile.Location, error) {
		if l, ok := locations[i]; ok {
			return l, nil
		}
		if i <= 0 || int(i) >= locTable.Len() {
			return nil, fmt.Errorf("location index %d out of range", i)
		}
		loc := locTable.At(int(i))
		l := &profile.Location{ID: uint64(len(out.Location) + 1), Address: loc.Address(), Mapping: mapping(loc.MappingIndex())}
		for _, ln := range loc.Lines().All() {
			f, err := function(ln.FunctionIndex())
			if err != nil {
				return nil, err
			}
			l.Line = append(l.Line, profile.Line{Function: f, Line: ln.Line(), Column: ln.Column()})
		}
		locations[i] = l
		out.Location = append(out.Location, l)
		return l, nil
	}
	stacks, attrs := dict.StackTable(), dict.AttributeTable()
	for _, s := range prof.Samples().All() {
		if s.Values().Len() == 0 {
			continue
		}
		var total int64
		for _, v := range s.Values().All() {
			total += v
		}
		smp := &profile.Sample{Value: []int64{total}}
		if si := s.StackIndex(); si > 0 && int(si) < stacks.Len() {
			for _, li := range stacks.At(int(si)).LocationIndices().All() {
				l, err := location(li)
				if err != nil {
					return nil, err
				}
				smp.Location = append(smp.Location, l)
			}
		}
		for _, ai := range s.AttributeIndices().All() {
			if ai <= 0 || int(ai) >= attrs.Len() {
				continue
			}
			kv := attrs.At(int(ai))
			key := str(kv.KeyStrindex())
			if kv.Value().Type() == pcommon.ValueTypeInt {
				if smp.NumLabel == nil {
					smp.NumLabel = map[string][]int64{}
				}
				smp.NumLabel[key] = append(smp.NumLabel[key], kv.Value().Int())
				continue
			}
			if smp.Label == nil {
				smp.Label = map[string][]string{}
			}
			smp.Label[key] = append(smp.Label[key], kv.Value().AsString())
		}
		// A link from the link table becomes trace_id/span_id labels, the
		// form Pyroscope and the exporter's join read.
		if li := s.LinkIndex(); li > 0 && int(li) < dict.LinkTable().Len() {
			link := dict.LinkTable().At(int(li))
			if smp.Label == nil {
				smp.Label = map[string][]string{}
			}
			if _, ok := smp.Label[LabelTraceID]; !ok && !link.TraceID().IsEmpty() {
				smp.Label[LabelTraceID] = []string{link.TraceID().String()}
			}
			if _, ok := smp.Label[LabelSpanID]; !ok && !link.SpanID().IsEmpty() {
				smp.Label[LabelSpanID] = []string{link.SpanID().String()}
			}
		}
		out.Sample = append(out.Sample, smp)
	}
	return out, nil
}
