package wirecheck

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

var signals = []Signal{Traces, Metrics, Logs, Profiles}

// setNested makes v a value of exactly levels AnyValue levels: a string at
// level 1, a map (or a slice) around the level below otherwise.
func setNested(v pcommon.Value, levels int, viaSlice bool) {
	for ; levels > 1; levels-- {
		if viaSlice {
			v = v.SetEmptySlice().AppendEmpty()
		} else {
			v = v.SetEmptyMap().PutEmpty("a")
		}
	}
	v.SetStr("leaf")
}

// withValue returns a request of sig whose value in the deepest place OTLP
// puts an AnyValue (traces: a span event's attribute; metrics: an
// exponential histogram exemplar's filtered attribute; logs: the body;
// profiles: the dictionary's attribute table) is set by set.
func withValue(sig Signal, set func(pcommon.Value)) any {
	switch sig {
	case Traces:
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "wirecheck")
		s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		s.SetName("span")
		s.SetTraceID(pcommon.TraceID{1})
		s.SetSpanID(pcommon.SpanID{1})
		set(s.Events().AppendEmpty().Attributes().PutEmpty("deep"))
		return td
	case Metrics:
		md := pmetric.NewMetrics()
		m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("metric")
		dp := m.SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
		dp.SetCount(1)
		ex := dp.Exemplars().AppendEmpty()
		ex.SetDoubleValue(1)
		set(ex.FilteredAttributes().PutEmpty("deep"))
		return md
	case Logs:
		ld := plog.NewLogs()
		lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		set(lr.Body())
		return ld
	case Profiles:
		pd := pprofile.NewProfiles()
		dic := pd.Dictionary()
		dic.StringTable().Append("", "deep")
		kv := dic.AttributeTable().AppendEmpty()
		kv.SetKeyStrindex(1)
		set(kv.Value())
		p := pd.ResourceProfiles().AppendEmpty().ScopeProfiles().AppendEmpty().Profiles().AppendEmpty()
		p.Samples().AppendEmpty().AttributeIndices().Append(0)
		return pd
	}
	panic(sig)
}

// marshalProto is the Export request of data (ptrace.Traces, ...) as the
// collector's own encoder writes it.
func marshalProto(t testing.TB, data any) []byte {
	t.Helper()
	var b []byte
	var err error
	switch d := data.(type) {
	case ptrace.Traces:
		b, err = ptraceotlp.NewExportRequestFromTraces(d).MarshalProto()
	case pmetric.Metrics:
		b, err = pmetricotlp.NewExportRequestFromMetrics(d).MarshalProto()
	case plog.Logs:
		b, err = plogotlp.NewExportRequestFromLogs(d).MarshalProto()
	case pprofile.Profiles:
		b, err = pprofileotlp.NewExportRequestFromProfiles(d).MarshalProto()
	default:
		t.Fatalf("unexpected %T", data)
	}
	require.NoError(t, err)
	return b
}

func marshalJSON(t testing.TB, data any) []byte {
	t.Helper()
	var b []byte
	var err error
	switch d := data.(type) {
	case ptrace.Traces:
		b, err = ptraceotlp.NewExportRequestFromTraces(d).MarshalJSON()
	case pmetric.Metrics:
		b, err = pmetricotlp.NewExportRequestFromMetrics(d).MarshalJSON()
	case plog.Logs:
		b, err = plogotlp.NewExportRequestFromLogs(d).MarshalJSON()
	case pprofile.Profiles:
		b, err = pprofileotlp.NewExportRequestFromProfiles(d).MarshalJSON()
	default:
		t.Fatalf("unexpected %T", data)
	}
	require.NoError(t, err)
	return b
}

// pdataDecode decodes b as the otlp receiver does.
func pdataDecode(sig Signal, b []byte) error {
	switch sig {
	case Traces:
		return ptraceotlp.NewExportRequest().UnmarshalProto(b)
	case Metrics:
		return pmetricotlp.NewExportRequest().UnmarshalProto(b)
	case Logs:
		return plogotlp.NewExportRequest().UnmarshalProto(b)
	case Profiles:
		return pprofileotlp.NewExportRequest().UnmarshalProto(b)
	}
	panic(sig)
}

func pdataDecodeJSON(sig Signal, b []byte) error {
	switch sig {
	case Traces:
		return ptraceotlp.NewExportRequest().UnmarshalJSON(b)
	case Metrics:
		return pmetricotlp.NewExportRequest().UnmarshalJSON(b)
	case Logs:
		return plogotlp.NewExportRequest().UnmarshalJSON(b)
	case Profiles:
		return pprofileotlp.NewExportRequest().UnmarshalJSON(b)
	}
	panic(sig)
}

// isIDLengthError: pdata refuses trace, span and profile IDs of the wrong
// length, a semantic rule the wire check does not apply.
func isIDLengthError(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "unmarshal: invalid ") && strings.HasSuffix(err.Error(), "ID length")
}
