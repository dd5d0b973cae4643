package profilelinkexporter

import (
	"context"
	"io"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-fabric/otelcol-fabric/internal/pprofconv"
)

// checkLabel fails unless Pyroscope would accept value as a label value.
func checkLabel(t *testing.T, what, name, value string) {
	if !utf8.ValidString(value) || len(value) > maxLabelValueLength {
		t.Fatalf("%s %q: value of %d bytes (valid UTF-8: %v) Pyroscope refuses", what, name, len(value), utf8.ValidString(value))
	}
}

// FuzzConvertAndLink decodes arbitrary OTLP traces into the span index and
// arbitrary OTLP profiles through what the exporter does before a push:
// conversion to pprof, series labels from the resource and the profile
// name, linking samples to their local root span, removing sample labels
// Pyroscope would refuse, encoding the pprof, and the subset returned for a
// retry. No panic, and every label that would be sent is one Pyroscope
// accepts (valid UTF-8, at most 2048 bytes; sample label names legacy
// label names). Seeds: the exporter tests' profile and spans (linked
// through the link table and through a span_id label), and edge cases:
// span parent cycles, out-of-range dictionary indices, invalid UTF-8 and
// oversized strings in the resource, the sample types and the labels.
func FuzzConvertAndLink(f *testing.F) {
	mp := func(pd pprofile.Profiles) []byte {
		b, err := (&pprofile.ProtoMarshaler{}).MarshalProfiles(pd)
		require.NoError(f, err)
		return b
	}
	mt := func(td ptrace.Traces) []byte {
		b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		require.NoError(f, err)
		return b
	}
	f.Add(mt(spans()), mp(cpuProfile(0)))
	f.Add(mt(spans()), mp(threeProfiles()))

	// A cycle of parents, and a span whose id is the zero id.
	cycle := ptrace.NewTraces()
	ss := cycle.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for _, ids := range [][2]pcommon.SpanID{{leafA, childA}, {childA, leafA}, {{}, leafA}} {
		s := ss.Spans().AppendEmpty()
		s.SetSpanID(ids[0])
		s.SetParentSpanID(ids[1])
		s.SetFlags(flagHasIsRemote)
		s.SetName(strings.Repeat("\xff", 3000))
	}
	f.Add(mt(cycle), mp(cpuProfile(1)))

	// Hostile strings and indices.
	bad := cpuProfile(2)
	rp := bad.ResourceProfiles().At(0)
	rp.Resource().Attributes().PutStr("service.name", "\xc3"+strings.Repeat("é", 1500))
	rp.Resource().Attributes().PutStr("service.version", "\xff\xfe")
	rp.Resource().Attributes().PutEmptyBytes("deployment.environment.name").FromRaw([]byte{0xff})
	d := bad.Dictionary()
	p := rp.ScopeProfiles().At(0).Profiles().At(0)
	p.SampleType().SetTypeStrindex(int32(d.StringTable().Len()))
	d.StringTable().Append("\xffnot-utf8-sample-type")
	kv := d.AttributeTable().AppendEmpty()
	kv.SetKeyStrindex(int32(d.StringTable().Len()))
	d.StringTable().Append(pprofconv.LabelSpanID)
	kv.Value().SetStr("\xff" + strings.Repeat("0", 15))
	kv2 := d.AttributeTable().AppendEmpty()
	kv2.SetKeyStrindex(int32(d.StringTable().Len()))
	d.StringTable().Append("http.route")
	kv2.Value().SetStr(strings.Repeat("\xe2\x82", 1100))
	smp := p.Samples().At(2)
	smp.AttributeIndices().Append(int32(d.AttributeTable().Len()-2), int32(d.AttributeTable().Len()-1), math.MaxInt32, -1)
	smp.SetLinkIndex(math.MaxInt32)
	p.AttributeIndices().Append(-4, math.MaxInt32)
	f.Add(mt(spans()), mp(bad))
	f.Add([]byte{}, []byte{})

	cfg := createDefaultConfig().(*Config)
	cfg.Index.MaxSpans = 8 // evictions
	cfg.LinkWait = 0
	cfg.SpanNameLabel = true
	f.Fuzz(func(t *testing.T, traces, profiles []byte) {
		l, err := newLinker(exportertestSettings(), cfg)
		require.NoError(t, err)
		defer func() { require.NoError(t, l.Shutdown(context.Background())) }()
		if td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(traces); err == nil {
			require.NoError(t, l.consumeTraces(context.Background(), td))
		}
		pd, err := (&pprofile.ProtoUnmarshaler{}).UnmarshalProfiles(profiles)
		if err != nil {
			return
		}
		batch := l.convert(pd)
		require.NoError(t, l.linkAll(context.Background(), batch))
		for _, s := range batch {
			l.sanitizeSampleLabels(s)
			for _, lp := range s.labels {
				checkLabel(t, "series label", lp.Name, lp.Value)
			}
			for _, smp := range s.prof.Sample {
				for k, vs := range smp.Label {
					if k != pprofconv.LabelSpanID && k != pprofconv.LabelTraceID && k != "profile_id" && !legacyLabelName.MatchString(labelName(k)) {
						t.Fatalf("sample label name %q left in", k)
					}
					for _, v := range vs {
						checkLabel(t, "sample label", k, v)
					}
				}
			}
			if err := s.prof.Write(io.Discard); err != nil {
				t.Fatalf("encode: %v", err)
			}
		}
		if _, err := (&pprofile.ProtoMarshaler{}).MarshalProfiles(subset(pd, batch)); err != nil {
			t.Fatalf("the retry subset does not encode: %v", err)
		}
	})
}
