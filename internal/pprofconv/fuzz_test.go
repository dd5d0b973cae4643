package pprofconv

import (
	"io"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
)

// FuzzToPprof is this package's fuzzing (it has no README): arbitrary bytes
// decoded as OTLP profiles (pprofile.ProtoUnmarshaler), every profile
// converted back to pprof with ToPprof and encoded (Write), as the
// profilelink exporter does with what the profiles pipeline hands it:
// errors are fine, panics are not. Seeds: a real Go CPU profile with span
// labels converted by AppendProfiles (so the link and attribute tables are
// filled), a batch with out-of-range and negative indices into every
// dictionary table (strings, functions, mappings, locations, stacks,
// attributes, links), a sample referencing tables that are empty (not even
// their zero entries), and an empty batch. 60 s without a failure:
//
//	go test -run '^$' -fuzz '^FuzzToPprof$' -fuzztime 60s -parallel 1 ./internal/pprofconv/
func FuzzToPprof(f *testing.F) {
	marshal := func(pd pprofile.Profiles) []byte {
		b, err := (&pprofile.ProtoMarshaler{}).MarshalProfiles(pd)
		require.NoError(f, err)
		return b
	}

	// A real profile, converted.
	converted := pprofile.NewProfiles()
	dict := NewDict(converted)
	dict.AppendProfiles(realCPUProfile(f), converted.ResourceProfiles().AppendEmpty().ScopeProfiles().AppendEmpty(), 0, 0)
	f.Add(marshal(converted))

	// Indices out of range (and negative) into every table, on a
	// dictionary that has its zero entries.
	bad := pprofile.NewProfiles()
	d := NewDict(bad)
	fn := bad.Dictionary().FunctionTable().AppendEmpty()
	fn.SetNameStrindex(1 << 20)
	fn.SetFilenameStrindex(-3)
	loc := bad.Dictionary().LocationTable().AppendEmpty()
	loc.SetMappingIndex(99)
	loc.Lines().AppendEmpty().SetFunctionIndex(1)
	loc2 := bad.Dictionary().LocationTable().AppendEmpty()
	loc2.SetMappingIndex(-1)
	loc2.Lines().AppendEmpty().SetFunctionIndex(math.MaxInt32)
	bad.Dictionary().StackTable().AppendEmpty().LocationIndices().Append(1, 1, -7)
	bad.Dictionary().StackTable().AppendEmpty().LocationIndices().Append(2)
	kv := bad.Dictionary().AttributeTable().AppendEmpty()
	kv.SetKeyStrindex(500)
	kv.Value().SetInt(math.MinInt64)
	p := bad.ResourceProfiles().AppendEmpty().ScopeProfiles().AppendEmpty().Profiles().AppendEmpty()
	p.SampleType().SetTypeStrindex(-1)
	p.SampleType().SetUnitStrindex(1 << 30)
	p.PeriodType().SetTypeStrindex(7)
	p.SetTime(pcommon.Timestamp(math.MaxUint64))
	p.SetDurationNano(math.MaxUint64)
	for _, mk := range []func(s pprofile.Sample){
		func(s pprofile.Sample) { s.SetStackIndex(1); s.SetLinkIndex(1 << 20) },
		func(s pprofile.Sample) { s.SetStackIndex(2) },
		func(s pprofile.Sample) { s.SetStackIndex(1 << 20); s.AttributeIndices().Append(1, -1, 1<<20) },
		func(s pprofile.Sample) {
			s.SetStackIndex(-5)
			s.SetLinkIndex(d.Link(pcommon.TraceID{}, pcommon.SpanID{}))
		},
		func(s pprofile.Sample) { s.SetLinkIndex(-1) },
	} {
		s := p.Samples().AppendEmpty()
		s.Values().Append(math.MaxInt64, math.MaxInt64)
		mk(s)
	}
	p.Samples().AppendEmpty() // no values
	f.Add(marshal(bad))

	// Empty tables (not even the zero entries) referenced by a sample.
	empty := pprofile.NewProfiles()
	p = empty.ResourceProfiles().AppendEmpty().ScopeProfiles().AppendEmpty().Profiles().AppendEmpty()
	s := p.Samples().AppendEmpty()
	s.SetStackIndex(0)
	s.SetLinkIndex(0)
	s.AttributeIndices().Append(0)
	s.Values().Append(1)
	f.Add(marshal(empty))
	f.Add(marshal(pprofile.NewProfiles()))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		pd, err := (&pprofile.ProtoUnmarshaler{}).UnmarshalProfiles(data)
		if err != nil {
			return
		}
		for _, rp := range pd.ResourceProfiles().All() {
			for _, sp := range rp.ScopeProfiles().All() {
				for _, prof := range sp.Profiles().All() {
					out, err := ToPprof(pd.Dictionary(), prof)
					if err != nil {
						continue
					}
					_ = out.Write(io.Discard)
				}
			}
		}
	})
}
