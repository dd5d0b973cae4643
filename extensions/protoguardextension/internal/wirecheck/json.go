package wirecheck // import "github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/wirecheck"

import (
	"fmt"
	"unicode/utf8"
)

// OTLP/JSON gets a bracket-depth scan, not a schema walk. Its limit is the
// bracket depth at which the deepest legitimate AnyValue of max_depth levels
// can open: jsonFirstAnyValue brackets down to the first AnyValue in the
// deepest place OTLP puts one (a metric exemplar's filtered attribute), then
// 4 per level (kvlistValue{ values[ {key, value{ ). Every request the
// protobuf check accepts is accepted in JSON too; values nested elsewhere,
// or through arrays (3 brackets per level), get a few levels more.
const jsonBracketsPerLevel = 4

// jsonFirstAnyValue is the bracket depth of the first AnyValue's object in
// the deepest place of any signal's request, from the schema.
var jsonFirstAnyValue = otlpSchema.jsonFirstAnyValue()

// JSONDepthLimit is the bracket depth OTLP/JSON may reach with maxDepth.
func JSONDepthLimit(maxDepth int) int {
	return jsonFirstAnyValue + jsonBracketsPerLevel*(maxDepth-1)
}

// CheckJSON checks b, an OTLP/JSON Export request: brackets nested no
// deeper than JSONDepthLimit(max_depth) and, with check_utf8, valid UTF-8
// (RFC 8259 requires it). Syntax is left to the decoder.
func (c *Checker) CheckJSON(b []byte) *Error {
	if c.checkUTF8 && !utf8.Valid(b) {
		off := firstInvalid(b)
		return &Error{Reason: ReasonUTF8, Offset: off, msg: fmt.Sprintf(
			"protoguard: invalid UTF-8 in JSON at byte offset %d", off)}
	}
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++ // the escaped byte, which may be a quote
				}
			}
		case '{', '[':
			if depth++; depth > c.maxJSONDepth {
				return &Error{Reason: ReasonDepth, Offset: i, msg: fmt.Sprintf(
					"protoguard: JSON nesting deeper than %d brackets (max_depth %d) at byte offset %d", c.maxJSONDepth, c.maxDepth, i)}
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// jsonFirstAnyValue is the deepest bracket depth, over the signals, at
// which an AnyValue not inside another AnyValue opens in OTLP/JSON: the
// request object is depth 1, a message field adds 1 (its object), a
// repeated one 2 (the array and the element's object).
func (s *schema) jsonFirstAnyValue() int {
	memo := map[*message]int{}
	var deepest func(m *message) int // below m's object; 0 if no AnyValue
	deepest = func(m *message) int {
		if d, ok := memo[m]; ok {
			return d
		}
		memo[m] = 0 // cycles other than through AnyValue: not counted again
		best := 0
		for i := range m.fields {
			f := &m.fields[i]
			if f.kind != kindMessage {
				continue
			}
			step := 1
			if f.repeated {
				step = 2
			}
			if f.msg.anyValue {
				best = max(best, step)
			} else if d := deepest(f.msg); d > 0 {
				best = max(best, step+d)
			}
		}
		memo[m] = best
		return best
	}
	first := 0
	for _, root := range s.roots {
		first = max(first, 1+deepest(root))
	}
	return first
}
