// Package wirecheck checks the bytes of an OTLP request against the OTLP
// schema before anything decodes them: protobuf well-formedness, the nesting
// depth of AnyValue, and UTF-8 in proto3 strings; for OTLP/JSON the bracket
// depth and UTF-8. In the same pass it estimates what pdata will allocate to
// decode the request (decoded.go). It is O(n) in the request size and
// allocates only to describe a failure.
package wirecheck // import "github.com/otelcol-fabric/otelcol-fabric/extensions/protoguardextension/internal/wirecheck"

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Reason is why a request is refused.
type Reason uint8

const (
	ReasonDepth Reason = iota + 1
	ReasonMalformed
	ReasonUTF8
	// ReasonTooLarge: the decoded-size estimate is over the caller's limit
	// (TooLarge).
	ReasonTooLarge
	// ReasonBusy: the caller's budget for requests being decoded cannot
	// take this one now (Busy).
	ReasonBusy
)

func (r Reason) String() string {
	switch r {
	case ReasonDepth:
		return "depth"
	case ReasonMalformed:
		return "malformed"
	case ReasonUTF8:
		return "utf8"
	case ReasonTooLarge:
		return "too_large"
	case ReasonBusy:
		return "busy"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Error is a refused request: why, where, and a message for the sender.
type Error struct {
	Reason Reason
	Offset int // byte offset in the (decompressed) request
	msg    string
}

func (e *Error) Error() string { return e.msg }

// TooLarge refuses a request whose decoded-size estimate is over limit.
func TooLarge(estimate, limit int64) *Error {
	return &Error{Reason: ReasonTooLarge, msg: fmt.Sprintf(
		"protoguard: request would take about %s once decoded, over max_decoded_size %s; send it in smaller requests",
		FormatBytes(estimate), FormatBytes(limit))}
}

// Busy refuses, for now, a request whose decoded-size estimate the budget
// for requests being decoded cannot take: inFlight of budget are held.
func Busy(estimate, inFlight, budget int64) *Error {
	return &Error{Reason: ReasonBusy, msg: fmt.Sprintf(
		"protoguard: busy: decoding this request (about %s) would take the requests being decoded (%s) over max_in_flight_decoded %s; retry later",
		FormatBytes(estimate), FormatBytes(inFlight), FormatBytes(budget))}
}

// FormatBytes is n bytes in the largest binary unit it holds, to one decimal.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// MaxDepthLimit is the highest max_depth a Checker takes: the walk recurses
// once per message level, at most three per AnyValue level.
const MaxDepthLimit = 1000

// Checker checks requests; it is immutable and safe for concurrent use.
type Checker struct {
	maxDepth  int
	checkUTF8 bool
	// maxMessageDepth bounds all message nesting, a guard should a schema
	// ever recurse other than through AnyValue: OTLP's structure is at most
	// 9 levels deep, and each AnyValue level is at most 3 message levels
	// (AnyValue, KeyValueList, KeyValue).
	maxMessageDepth int
	maxJSONDepth    int
}

// New returns a Checker refusing AnyValue nested deeper than maxDepth
// (1 to MaxDepthLimit) and, with checkUTF8, invalid UTF-8 in strings.
func New(maxDepth int, checkUTF8 bool) (*Checker, error) {
	if maxDepth < 1 || maxDepth > MaxDepthLimit {
		return nil, fmt.Errorf("max depth %d outside [1, %d]", maxDepth, MaxDepthLimit)
	}
	return &Checker{
		maxDepth:        maxDepth,
		checkUTF8:       checkUTF8,
		maxMessageDepth: 3*maxDepth + 32,
		maxJSONDepth:    JSONDepthLimit(maxDepth),
	}, nil
}

// CheckProto checks b, an OTLP/protobuf Export request of signal sig. It
// returns nil if b may be decoded.
func (c *Checker) CheckProto(sig Signal, b []byte) *Error {
	_, err := c.CheckProtoSize(sig, b)
	return err
}

// CheckProtoSize checks b as CheckProto does and, if it passes, estimates
// how many bytes pdata allocates to decode it (decoded.go).
func (c *Checker) CheckProtoSize(sig Signal, b []byte) (int64, *Error) {
	return c.walk(b, 0, otlpSchema.roots[sig], 0, 1)
}

// walk checks b, the encoding of message m starting at byte off of the
// request, whose innermost enclosing AnyValue is at level anyDepth and which
// is itself at message level depth, and returns what decoding it allocates
// (decoded.go). A malformed field is reported at the offset of its tag (or
// of the broken tag).
//
// Tags, lengths and varints of one byte (nearly all of them in OTLP) are
// read inline; anything longer, and every error, goes through protowire.
func (c *Checker) walk(b []byte, off int, m *message, anyDepth, depth int) (int64, *Error) {
	var size int64
	// counts: the elements appended to each of m's repeated fields, whose
	// slices are sized once m ends.
	var counts [maxGrowing]int64
	for i := 0; i < len(b); {
		tagAt := i
		var num protowire.Number
		var typ protowire.Type
		if t := b[i]; t < 0x80 && t >= 1<<3 {
			num, typ = protowire.Number(t>>3), protowire.Type(t&7)
			i++
		} else {
			var n int
			if num, typ, n = protowire.ConsumeTag(b[i:]); n < 0 {
				return 0, malformed(off+i, m, protowire.ParseError(n))
			}
			i += n
		}
		f := m.field(int(num))
		if f == nil || f.kind == kindUnknown {
			// Unknown fields are kept by protobuf-go and skipped by pdata:
			// only their framing is checked. Groups are refused: proto3 has
			// none, and pdata v1.51 cannot skip one that holds a field.
			if typ == protowire.StartGroupType || typ == protowire.EndGroupType {
				return 0, &Error{Reason: ReasonMalformed, Offset: off + tagAt, msg: fmt.Sprintf(
					"protoguard: malformed protobuf at byte offset %d in %s: field %d has wire type %s (no OTLP field is a group)", off+tagAt, m.name, num, wireTypeName(typ))}
			}
			n := protowire.ConsumeFieldValue(num, typ, b[i:])
			if n < 0 {
				return 0, malformed(off+tagAt, m, protowire.ParseError(n))
			}
			i += n
			continue
		}
		switch {
		case typ == protowire.BytesType && (f.kind >= kindBytes || f.packed):
			var v []byte
			if i < len(b) && b[i] < 0x80 && int(b[i]) < len(b)-i {
				l := int(b[i])
				v = b[i+1 : i+1+l]
				i += 1 + l
			} else {
				var n int
				if v, n = protowire.ConsumeBytes(b[i:]); n < 0 {
					return 0, malformed(off+tagAt, m, protowire.ParseError(n))
				}
				i += n
			}
			start := off + i - len(v)
			switch f.kind {
			case kindBytes:
				if f.copies {
					size += stringCost(len(v))
				}
			case kindString:
				if c.checkUTF8 && !utf8.Valid(v) {
					return 0, invalidUTF8(start+firstInvalid(v), f)
				}
				size += stringCost(len(v))
			case kindMessage:
				d := anyDepth
				if f.msg.anyValue {
					if d++; d > c.maxDepth {
						return 0, c.tooDeep(off + tagAt)
					}
				}
				if depth >= c.maxMessageDepth {
					return 0, c.tooDeep(off + tagAt)
				}
				sub, err := c.walk(v, start, f.msg, d, depth+1)
				if err != nil {
					return 0, err
				}
				size += sub
			default: // a packed run of scalars
				n, err := checkPacked(v, start, f)
				if err != nil {
					return 0, err
				}
				if f.kind == kindVarint {
					// appended value by value
					if f.grow >= 0 {
						counts[f.grow] += int64(n)
					} else {
						size += int64(n) * int64(f.slot)
					}
				} else {
					size += int64(len(v)) // made whole
				}
				continue
			}
		case typ != scalarWireType(f.kind):
			return 0, &Error{Reason: ReasonMalformed, Offset: off + tagAt, msg: fmt.Sprintf(
				"protoguard: malformed protobuf at byte offset %d: field %s has wire type %s", off+tagAt, f.name, wireTypeName(typ))}
		case typ == protowire.VarintType && i < len(b) && b[i] < 0x80:
			i++
		case typ == protowire.Fixed64Type && len(b)-i >= 8:
			i += 8
		default:
			n := protowire.ConsumeFieldValue(num, typ, b[i:])
			if n < 0 {
				return 0, malformed(off+tagAt, m, protowire.ParseError(n))
			}
			i += n
		}
		size += int64(f.cost)
		switch {
		case f.grow >= 0:
			counts[f.grow]++
		case f.slot > 0:
			size += int64(f.slot)
		}
	}
	for g, slot := range m.growSlots {
		if counts[g] > 0 {
			size += sliceGrowth(counts[g], int64(slot))
		}
	}
	return size, nil
}

// scalarWireType is the wire type of one value of a scalar kind; BytesType
// (never a scalar's) for the others.
func scalarWireType(k kind) protowire.Type {
	switch k {
	case kindVarint:
		return protowire.VarintType
	case kindFixed32:
		return protowire.Fixed32Type
	case kindFixed64:
		return protowire.Fixed64Type
	}
	return protowire.BytesType
}

// checkPacked checks a packed run of scalars (whole values, nothing left
// over) and returns how many values it holds.
func checkPacked(v []byte, start int, f *field) (int, *Error) {
	switch f.kind {
	case kindVarint:
		// Fast: every varint ends with a byte below 0x80 within 10 bytes.
		// A run of 9 continuation bytes, or an unterminated last varint,
		// is decided value by value.
		run, values := 0, 0
		for _, c := range v {
			if c < 0x80 {
				run = 0
				values++
			} else if run++; run >= 9 {
				break
			}
		}
		if run == 0 {
			return values, nil
		}
		values = 0
		for i := 0; i < len(v); values++ {
			_, n := protowire.ConsumeVarint(v[i:])
			if n < 0 {
				return 0, &Error{Reason: ReasonMalformed, Offset: start + i, msg: fmt.Sprintf(
					"protoguard: malformed protobuf at byte offset %d: packed field %s: %v", start+i, f.name, protowire.ParseError(n))}
			}
			i += n
		}
		return values, nil
	case kindFixed32, kindFixed64:
		size := 4
		if f.kind == kindFixed64 {
			size = 8
		}
		if len(v)%size != 0 {
			return 0, &Error{Reason: ReasonMalformed, Offset: start, msg: fmt.Sprintf(
				"protoguard: malformed protobuf at byte offset %d: packed field %s is %d bytes, not a multiple of %d", start, f.name, len(v), size)}
		}
		return len(v) / size, nil
	}
	return 0, nil
}

func (c *Checker) tooDeep(off int) *Error {
	return &Error{Reason: ReasonDepth, Offset: off, msg: fmt.Sprintf(
		"protoguard: attribute nesting deeper than max_depth %d at byte offset %d", c.maxDepth, off)}
}

func malformed(off int, m *message, err error) *Error {
	return &Error{Reason: ReasonMalformed, Offset: off, msg: fmt.Sprintf(
		"protoguard: malformed protobuf at byte offset %d in %s: %v", off, m.name, err)}
}

func invalidUTF8(off int, f *field) *Error {
	return &Error{Reason: ReasonUTF8, Offset: off, msg: fmt.Sprintf(
		"protoguard: invalid UTF-8 in string field %s at byte offset %d", f.name, off)}
}

// firstInvalid is the offset of the first byte of b that is not valid UTF-8.
func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

func wireTypeName(t protowire.Type) string {
	switch t {
	case protowire.VarintType:
		return "varint"
	case protowire.Fixed32Type:
		return "fixed32"
	case protowire.Fixed64Type:
		return "fixed64"
	case protowire.BytesType:
		return "bytes"
	case protowire.StartGroupType:
		return "start group"
	case protowire.EndGroupType:
		return "end group"
	}
	return fmt.Sprintf("%d", t)
}
