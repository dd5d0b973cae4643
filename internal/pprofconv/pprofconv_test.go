package pprofconv

import (
	"bytes"
	"context"
	"runtime/pprof"
	"sort"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
)

var burnSink int

//go:noinline
func burn(d time.Duration) int {
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := range 20000 {
			n += i % 7
		}
	}
	return n
}

// realCPUProfile is what the Go runtime (and so pyroscope-go) produces: a CPU
// profile with samples/count and cpu/nanoseconds, where some samples carry
// span_id and trace_id pprof labels.
func realCPUProfile(t testing.TB) *profile.Profile {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, pprof.StartCPUProfile(&buf))
	pprof.Do(context.Background(), pprof.Labels("span_id", "0102030405060708", "trace_id", "0102030405060708090a0b0c0d0e0f10"), func(context.Context) {
		burnSink += burn(300 * time.Millisecond)
	})
	burnSink += burn(200 * time.Millisecond)
	pprof.StopCPUProfile()
	p, err := profile.Parse(&buf)
	require.NoError(t, err)
	require.NotEmpty(t, p.Sample, "the CPU profile has samples")
	return p
}

type stackTotal map[string]int64

// totals sums sample values per (sample type, stack, labels).
func totals(p *profile.Profile, typeIndex int) stackTotal {
	out := stackTotal{}
	for _, s := range p.Sample {
		var key bytes.Buffer
		for _, l := range s.Location {
			for _, ln := range l.Line {
				key.WriteString(ln.Function.Name)
				key.WriteByte(';')
			}
		}
		var labels []string
		for k, vs := range s.Label {
			for _, v := range vs {
				labels = append(labels, k+"="+v)
			}
		}
		sort.Strings(labels)
		for _, l := range labels {
			key.WriteString("|" + l)
		}
		out[key.String()] += s.Value[typeIndex]
	}
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

// TestRoundTripRealProfile: pprof -> OTLP (one profile per sample type,
// shared dictionary) -> pprof keeps, per sample type, every stack's total,
// its labels, the sample and period types, the period and the time; the
// span labels become a link in the OTLP link table.
func TestRoundTripRealProfile(t *testing.T) {
	src := realCPUProfile(t)
	pd := pprofile.NewProfiles()
	dict := NewDict(pd)
	sp := pd.ResourceProfiles().AppendEmpty().ScopeProfiles().AppendEmpty()
	dict.AppendProfiles(src, sp, 0, 0)
	require.Equal(t, len(src.SampleType), sp.Profiles().Len(), "one OTLP profile per sample type")

	var linked int
	for i, op := range sp.Profiles().All() {
		for _, s := range op.Samples().All() {
			if s.LinkIndex() > 0 {
				link := pd.Dictionary().LinkTable().At(int(s.LinkIndex()))
				assert.Equal(t, "0102030405060708", link.SpanID().String())
				assert.Equal(t, "0102030405060708090a0b0c0d0e0f10", link.TraceID().String())
				linked++
			}
		}
		back, err := ToPprof(pd.Dictionary(), op)
		require.NoError(t, err)
		require.NoError(t, back.CheckValid())
		assert.Equal(t, src.SampleType[i].Type, back.SampleType[0].Type)
		assert.Equal(t, src.SampleType[i].Unit, back.SampleType[0].Unit)
		assert.Equal(t, src.PeriodType.Type, back.PeriodType.Type)
		assert.Equal(t, src.Period, back.Period)
		assert.Equal(t, src.TimeNanos, back.TimeNanos)
		assert.Equal(t, src.DurationNanos, back.DurationNanos)
		assert.Equal(t, totals(src, i), totals(back, 0), "sample type %s: every stack's total and labels", src.SampleType[i].Type)
		// And it encodes and parses as pprof.
		var buf bytes.Buffer
		require.NoError(t, back.Write(&buf))
		_, err = profile.ParseData(buf.Bytes())
		require.NoError(t, err)
	}
	assert.Positive(t, linked, "samples with span_id and trace_id labels are linked")
}

func TestDictDeduplicates(t *testing.T) {
	pd := pprofile.NewProfiles()
	d := NewDict(pd)
	assert.Equal(t, int32(0), d.Str(""), "index 0 is the empty string")
	a, b := d.Str("main"), d.Str("main")
	assert.Equal(t, a, b)
	assert.Equal(t, d.Attr("k", "v"), d.Attr("k", "v"))
	assert.NotEqual(t, d.Attr("k", "v"), d.Attr("k", "w"))
	tr := pcommon.TraceID{1}
	assert.Equal(t, d.Link(tr, pcommon.SpanID{2}), d.Link(tr, pcommon.SpanID{2}))
	for _, n := range []int{pd.Dictionary().FunctionTable().Len(), pd.Dictionary().LocationTable().Len(),
		pd.Dictionary().MappingTable().Len(), pd.Dictionary().StackTable().Len()} {
		assert.Equal(t, 1, n, "every table starts with its zero entry")
	}
}

func TestToPprofRejectsBadIndices(t *testing.T) {
	pd := pprofile.NewProfiles()
	NewDict(pd) // the zero entry of every table: the stack below is index 1
	p := pd.ResourceProfiles().AppendEmpty().ScopeProfiles().AppendEmpty().Profiles().AppendEmpty()
	st := pd.Dictionary().StackTable().AppendEmpty()
	st.LocationIndices().Append(42) // no such location
	s := p.Samples().AppendEmpty()
	s.SetStackIndex(1)
	s.Values().Append(1)
	_, err := ToPprof(pd.Dictionary(), p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "location index 42 out of range")
}
