// Copyright The OpenTelemetry Authors
// SPDX-License-Identifier: Apache-2.0

package fluentforwardreceiver // import "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/fluentforwardreceiver"

import (
	"fmt"
	"io"
	"slices"

	"github.com/tinylib/msgp/msgp"
)

// Bounds on what one Forward event may declare (contrib issue #48519). The
// receiver reads MessagePack straight from a TCP connection, where a 5-byte
// header can declare 4 GiB of array, map, string or binary; allocating for
// that before the bytes arrive lets anyone who reaches the port crash the
// collector. Each declared length is checked against these before anything
// is allocated for it, and what is allocated ahead of the data is at most
// preallocLimit elements: the rest grows as bytes arrive, so memory follows
// what a client sends, not what its headers claim.
const (
	// maxTagLength bounds the tag, which mode detection peeks in whole; it
	// stays below readBufferSize so that the peek never grows the buffer.
	maxTagLength = 4 << 10
	// maxStringLength bounds one str or bin key or value.
	maxStringLength = 16 << 20
	// maxContainerLength bounds the declared length of one array or map in a
	// record or in the options.
	maxContainerLength = 1 << 20
	// maxNestingDepth bounds how deep arrays and maps nest in a record.
	maxNestingDepth = 100
	// maxEntries bounds the entries of one Forward or PackedForward event.
	// Each becomes a log record of about 240 bytes, from as little as 3
	// bytes of entries, which gzip compresses a thousandfold: this, not
	// maxPackedForwardSize, bounds the memory of a compressed event.
	maxEntries = 1 << 17
	// maxPackedForwardSize bounds the entries of a PackedForward event, and,
	// when they are gzip-compressed, what they inflate to.
	maxPackedForwardSize = 64 << 20
	// maxExtensionLength bounds an ext value, which msgp peeks in whole into
	// the read buffer; EventTime, the one ext of the protocol, is 8 bytes.
	maxExtensionLength = 1 << 10
	// preallocLimit bounds the elements allocated ahead of their bytes.
	preallocLimit = 256
)

// boundReader sets the msgp Reader's own limits, which apply to what it
// still decodes itself: ext payloads, and any array, map, str or bin read
// through its ReadIntf rather than readIntf.
func boundReader(dc *msgp.Reader) *msgp.Reader {
	dc.SetMaxElements(maxExtensionLength)
	dc.SetMaxStringLength(maxStringLength)
	dc.SetMaxRecursionDepth(maxNestingDepth)
	return dc
}

// limitError says which declared length broke which bound; it wraps
// msgp.ErrLimitExceeded.
func limitError(what string, declared, limit uint64) error {
	return fmt.Errorf("%s of %d is over this receiver's limit of %d: %w", what, declared, limit, msgp.ErrLimitExceeded)
}

// readIntf is (*msgp.Reader).ReadIntf within the bounds above: it reads
// arrays, maps, strings and binaries itself, allocating as their elements
// and bytes arrive; every other type is fixed-size or bounded by
// boundReader and is left to ReadIntf. depth counts the enclosing arrays
// and maps.
func readIntf(dc *msgp.Reader, depth int) (any, error) {
	t, err := dc.NextType()
	if err != nil {
		return nil, err
	}
	switch t {
	case msgp.StrType:
		return readString(dc, maxStringLength)
	case msgp.BinType:
		return readBytes(dc, maxStringLength)
	case msgp.ArrayType, msgp.MapType:
		if depth >= maxNestingDepth {
			return nil, limitError("nesting depth", uint64(depth)+1, maxNestingDepth)
		}
		if t == msgp.ArrayType {
			return readArray(dc, depth+1)
		}
		return readMap(dc, depth+1)
	default:
		return dc.ReadIntf()
	}
}

func readArray(dc *msgp.Reader, depth int) ([]any, error) {
	n, err := dc.ReadArrayHeader()
	if err != nil {
		return nil, err
	}
	if n > maxContainerLength {
		return nil, limitError("array length", uint64(n), maxContainerLength)
	}
	out := make([]any, 0, min(n, preallocLimit))
	for range n {
		v, err := readIntf(dc, depth)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// readMap reads a map with str keys, as ReadIntf does.
func readMap(dc *msgp.Reader, depth int) (map[string]any, error) {
	n, err := dc.ReadMapHeader()
	if err != nil {
		return nil, err
	}
	if n > maxContainerLength {
		return nil, limitError("map length", uint64(n), maxContainerLength)
	}
	out := make(map[string]any, min(n, preallocLimit))
	for range n {
		k, err := readString(dc, maxStringLength)
		if err != nil {
			return nil, err
		}
		v, err := readIntf(dc, depth)
		if err != nil {
			return nil, msgp.WrapError(err, k)
		}
		out[k] = v
	}
	return out, nil
}

// readKey reads a record key: a str, or, from some clients, a bin.
func readKey(dc *msgp.Reader) (string, error) {
	t, err := dc.NextType()
	if err != nil {
		return "", err
	}
	if t == msgp.BinType {
		b, err := readBytes(dc, maxStringLength)
		return string(b), err
	}
	return readString(dc, maxStringLength)
}

func readString(dc *msgp.Reader, limit uint32) (string, error) {
	b, err := readStringBytes(dc, limit)
	if err != nil {
		return "", err
	}
	return msgp.UnsafeString(b), nil
}

func readStringBytes(dc *msgp.Reader, limit uint32) ([]byte, error) {
	n, err := dc.ReadStringHeader()
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, limitError("string length", uint64(n), uint64(limit))
	}
	return readBody(dc, n)
}

func readBytes(dc *msgp.Reader, limit uint32) ([]byte, error) {
	n, err := dc.ReadBytesHeader()
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, limitError("binary length", uint64(n), uint64(limit))
	}
	return readBody(dc, n)
}

// readBody reads the n bytes that follow a str or bin header, growing its
// buffer as they arrive.
func readBody(dc *msgp.Reader, n uint32) ([]byte, error) {
	const firstChunk = 64 << 10
	size := int(n)
	b := make([]byte, 0, min(size, firstChunk))
	for len(b) < size {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(size-len(b), len(b)))
		}
		end := min(cap(b), size)
		k, err := dc.ReadFull(b[len(b):end])
		b = b[:len(b)+k]
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// inflateLimit fails the read that takes an inflated stream past limit
// bytes, so that a gzip bomb in a PackedForward event stops at
// maxPackedForwardSize instead of inflating on until memory runs out.
type inflateLimit struct {
	r     io.Reader
	limit int64
	read  int64
}

func (l *inflateLimit) Read(p []byte) (int, error) {
	if room := l.limit - l.read + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	if l.read > l.limit {
		return 0, fmt.Errorf("PackedForward entries inflate to more than this receiver's limit of %d bytes: %w", l.limit, msgp.ErrLimitExceeded)
	}
	return n, err
}
