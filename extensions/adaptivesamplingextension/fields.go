package adaptivesamplingextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/adaptivesamplingextension"

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// fieldKind is what a key field reads from a trace.
type fieldKind int

const (
	fieldResourceAttribute fieldKind = iota // resource.attributes.<key> of the root span's resource
	fieldSpanAttribute                      // span.attributes.<key> of the root span
	fieldSpanName                           // span.name of the root span
	fieldSpanKind                           // span.kind of the root span
	fieldSpanStatus                         // span.status of the root span: Unset, Ok, Error
	fieldHTTPStatusClass                    // span.http_status_class of the root span: 1xx..5xx
	fieldTraceError                         // trace.error: true when any span has status Error
)

const (
	resourceAttributesPrefix = "resource.attributes."
	spanAttributesPrefix     = "span.attributes."
)

// fieldGrammar is what an error about an unknown field lists.
const fieldGrammar = "resource.attributes.<key>, span.attributes.<key>, span.name, span.kind, span.status, span.http_status_class, trace.error"

// field is one parsed entry of key_fields.
type field struct {
	kind fieldKind
	key  string // the attribute key, for the attribute kinds
}

func parseField(s string) (field, error) {
	switch s {
	case "span.name":
		return field{kind: fieldSpanName}, nil
	case "span.kind":
		return field{kind: fieldSpanKind}, nil
	case "span.status":
		return field{kind: fieldSpanStatus}, nil
	case "span.http_status_class":
		return field{kind: fieldHTTPStatusClass}, nil
	case "trace.error":
		return field{kind: fieldTraceError}, nil
	}
	if k, ok := strings.CutPrefix(s, resourceAttributesPrefix); ok && k != "" {
		return field{kind: fieldResourceAttribute, key: k}, nil
	}
	if k, ok := strings.CutPrefix(s, spanAttributesPrefix); ok && k != "" {
		return field{kind: fieldSpanAttribute, key: k}, nil
	}
	return field{}, fmt.Errorf("unknown field %q; a field is one of %s", s, fieldGrammar)
}

// traceView is what the key fields read from a trace: its root span (or,
// without one, the span that started first) with its resource, and whether
// any span failed.
type traceView struct {
	root     ptrace.Span
	resource pcommon.Resource
	found    bool
	errored  bool
	spans    int64
}

// view scans the trace's spans once.
func view(td ptrace.Traces) traceView {
	var v traceView
	var rootStart pcommon.Timestamp
	rootIsRoot := false
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				s := spans.At(k)
				v.spans++
				if s.Status().Code() == ptrace.StatusCodeError {
					v.errored = true
				}
				isRoot := s.ParentSpanID().IsEmpty()
				start := s.StartTimestamp()
				// A root span wins over any child; among equals the one
				// that started first, so every gateway picks the same span
				// whatever order the batches arrived in.
				better := !v.found ||
					(isRoot && !rootIsRoot) ||
					(isRoot == rootIsRoot && start < rootStart)
				if better {
					v.root, v.resource, v.found = s, rs.Resource(), true
					rootStart, rootIsRoot = start, isRoot
				}
			}
		}
	}
	return v
}

// appendValue appends the field's value for the trace to buf, framed so
// that no two different value lists make the same key: 'M' for a missing
// value, else '=', the length of the value (cut to maxLen bytes) as a
// uvarint, and the value.
func (f field) appendValue(buf []byte, v *traceView, maxLen int) []byte {
	var val string
	ok := v.found
	if ok {
		switch f.kind {
		case fieldResourceAttribute:
			val, ok = attrString(v.resource.Attributes(), f.key)
		case fieldSpanAttribute:
			val, ok = attrString(v.root.Attributes(), f.key)
		case fieldSpanName:
			val = v.root.Name()
		case fieldSpanKind:
			val = v.root.Kind().String()
		case fieldSpanStatus:
			val = v.root.Status().Code().String()
		case fieldHTTPStatusClass:
			val, ok = httpStatusClass(v.root.Attributes())
		}
	}
	if f.kind == fieldTraceError {
		// Known even without a root: a trace with no span failed.
		val, ok = strconv.FormatBool(v.errored), true
	}
	if !ok {
		return append(buf, 'M')
	}
	if len(val) > maxLen {
		val = val[:maxLen]
	}
	buf = append(buf, '=')
	buf = binary.AppendUvarint(buf, uint64(len(val)))
	return append(buf, val...)
}

func attrString(m pcommon.Map, key string) (string, bool) {
	v, ok := m.Get(key)
	if !ok {
		return "", false
	}
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str(), true
	}
	return v.AsString(), true
}

// httpStatusClass is the class (2xx, 4xx...) of the root span's HTTP
// response status code: http.response.status_code (semantic conventions
// 1.23+), or http.status_code before them.
func httpStatusClass(m pcommon.Map) (string, bool) {
	v, ok := m.Get("http.response.status_code")
	if !ok {
		if v, ok = m.Get("http.status_code"); !ok {
			return "", false
		}
	}
	var code int64
	switch v.Type() {
	case pcommon.ValueTypeInt:
		code = v.Int()
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(v.Str(), 10, 64)
		if err != nil {
			return "", false
		}
		code = n
	default:
		return "", false
	}
	if code < 100 || code > 599 {
		return "", false
	}
	return statusClasses[code/100-1], true
}

var statusClasses = [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"}
