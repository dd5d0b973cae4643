package wirecheck // import "github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/wirecheck"

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// OTLP/JSON gets a bracket-depth scan, not a schema walk (the decoded-size
// estimate alone follows the schema, by the keys). Its limit is the
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
	_, err := c.checkJSON(nil, b)
	return err
}

// CheckJSONSize checks b as CheckJSON does and, if it passes, estimates
// how many bytes pdata allocates to decode it, b being an Export request of
// signal sig: what decoding the same data from protobuf allocates
// (decoded.go), each object's message type found from the key that holds it.
func (c *Checker) CheckJSONSize(sig Signal, b []byte) (int64, *Error) {
	return c.checkJSON(otlpSchema.roots[sig], b)
}

// jsonTracked is how many brackets deep the estimate follows the schema:
// all the way down values of 64 levels (JSONDepthLimit(64) is 267), the
// default max_depth. Deeper, every object is taken for a level of a nested
// value (jsonUntracked) and every string for a key or a string value. The
// frames live on the stack of each check (6.4 KiB).
const jsonTracked = 272

// jsonUntracked is what an object deeper than jsonTracked brackets is
// taken to cost: a level of a nested map is three objects and five strings
// (kvlistValue{values[{key,value{), about 100 bytes decoded
// (TestDecodedSizeJSONDeep).
const jsonUntracked = 32

// jsonFrame is an open object or array.
type jsonFrame struct {
	m     *message // an object: its message; nil if not in the schema
	f     *field   // an array: the repeated field it holds; nil if none
	n     int32    // an array: its elements so far
	array bool
}

// checkJSON is CheckJSON, estimating the decoded size of a request whose
// root message is root (nil: no estimate).
func (c *Checker) checkJSON(root *message, b []byte) (int64, *Error) {
	if c.checkUTF8 && !utf8.Valid(b) {
		off := firstInvalid(b)
		return 0, &Error{Reason: ReasonUTF8, Offset: off, msg: fmt.Sprintf(
			"protoguard: invalid UTF-8 in JSON at byte offset %d", off)}
	}
	var (
		stack   [jsonTracked]jsonFrame
		top     *jsonFrame // stack[depth-1]; nil at depth 0 and beyond jsonTracked
		depth   int
		size    int64
		pending *field // the field the next value is for, in the object on top
		inKey   bool   // the next string in the object on top is a key
		keyBuf  [64]byte
	)
	for i := 0; i < len(b); i++ {
		ch := b[i]
		var scalar []byte // a value other than an object or an array
		quoted := false
		switch ch {
		case ' ', '\t', '\n', '\r':
			continue
		case ':':
			inKey = false
			continue
		case ',':
			inKey = top != nil && !top.array
			continue
		case '"':
			start := i + 1
			// To the closing quote: the next one, unless a backslash
			// precedes it somewhere in the string.
			end := bytes.IndexByte(b[start:], '"')
			escaped := false
			if end < 0 {
				end = len(b) - start
			}
			if bytes.IndexByte(b[start:start+end], '\\') >= 0 {
				escaped = true
				for i = start; i < len(b) && b[i] != '"'; i++ {
					if b[i] == '\\' {
						i++ // the escaped byte, which may be a quote
					}
				}
				end = min(i, len(b)) - start
			}
			i = start + end
			str := b[start : start+end]
			if inKey && top != nil && !top.array {
				// pdata's JSON decoder allocates each key it reads.
				size += stringCost(len(str))
				pending = nil
				if top.m != nil {
					if escaped {
						str = unescapeKey(str, &keyBuf)
					}
					pending = top.m.jsonField(str)
				}
				continue
			}
			scalar, quoted = str, true
		case '{', '[':
			if depth++; depth > c.maxJSONDepth {
				return 0, &Error{Reason: ReasonDepth, Offset: i, msg: fmt.Sprintf(
					"protoguard: JSON nesting deeper than %d brackets (max_depth %d) at byte offset %d", c.maxJSONDepth, c.maxDepth, i)}
			}
			fr := jsonFrame{array: ch == '['}
			switch {
			case depth > jsonTracked:
				if ch == '{' {
					size += jsonUntracked
				}
			case depth == 1:
				if ch == '{' {
					fr.m = root
				}
			case top.array:
				if f := top.f; f != nil {
					top.n++
					if ch == '{' && f.kind == kindMessage {
						fr.m = f.msg
						size += int64(f.cost)
					}
				}
			case pending != nil:
				switch f := pending; {
				case ch == '[':
					if f.repeated {
						fr.f = f
					}
				case f.kind == kindMessage:
					fr.m = f.msg
					size += int64(f.cost)
				}
			}
			pending = nil
			inKey = ch == '{'
			top = nil
			if depth <= jsonTracked {
				stack[depth-1] = fr
				top = &stack[depth-1]
			}
			continue
		case '}', ']':
			if top != nil && top.array && top.f != nil && top.n > 0 {
				size += sliceGrowth(int64(top.n), int64(top.f.slot))
			}
			if depth > 0 {
				depth--
			}
			top = nil
			if depth >= 1 && depth <= jsonTracked {
				top = &stack[depth-1]
			}
			pending = nil
			inKey = false
			continue
		default: // a number, true, false, null (or not JSON: the decoder's to refuse)
			start := i
			for i+1 < len(b) && !isJSONDelimiter(b[i+1]) {
				i++
			}
			scalar = b[start : i+1]
		}
		// A string or other scalar value: what it costs depends on the
		// field it is for.
		var f *field
		switch {
		case top == nil:
			if depth > jsonTracked && quoted {
				size += stringCost(len(scalar))
			}
			continue
		case top.array:
			if f = top.f; f == nil {
				continue
			}
			top.n++
		default:
			if f, pending = pending, nil; f == nil {
				continue
			}
			size += int64(f.cost)
		}
		if quoted && f.copies {
			if f.kind == kindBytes {
				size += stringCost(len(scalar) * 3 / 4) // base64
			} else {
				size += stringCost(len(scalar))
			}
		}
	}
	if root == nil {
		size = 0
	}
	return size, nil
}

func isJSONDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ':', '"', '{', '[', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// unescapeKey is s, a JSON string's contents, with its escapes decoded,
// in buf; nil if it does not fit or is not ASCII (no OTLP key is either).
func unescapeKey(s []byte, buf *[64]byte) []byte {
	n := 0
	for i := 0; i < len(s); i++ {
		if n == len(buf) {
			return nil
		}
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'u':
				if i+4 >= len(s) {
					return nil
				}
				var r rune
				for _, h := range s[i+1 : i+5] {
					r <<= 4
					switch {
					case h >= '0' && h <= '9':
						r |= rune(h - '0')
					case h >= 'a' && h <= 'f':
						r |= rune(h - 'a' + 10)
					case h >= 'A' && h <= 'F':
						r |= rune(h - 'A' + 10)
					default:
						return nil
					}
				}
				if r >= 0x80 {
					return nil
				}
				c = byte(r)
				i += 4
			case 'n', 't', 'r', 'b', 'f':
				return nil // control characters: in no OTLP key
			default: // " \\ /
				c = s[i]
			}
		}
		buf[n] = c
		n++
	}
	return buf[:n]
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
