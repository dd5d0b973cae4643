// Copyright The OpenTelemetry Authors
// SPDX-License-Identifier: Apache-2.0

package fluentforwardreceiver

import (
	"strings"
	"testing"
)

// FuzzDecodeStream sends arbitrary bytes through the connection handler, as
// a client on the receiver's port would: whatever they declare, decoding
// must end in an error or in records, never in a panic or a runaway
// allocation.
//
//	go test -run '^$' -fuzz FuzzDecodeStream -fuzztime 60s
func FuzzDecodeStream(f *testing.F) {
	for _, name := range []string{"message-event", "forward-event", "forward-packed", "forward-packed-compressed"} {
		f.Add(parseHexDump("testdata/" + name))
	}
	// The issue #13 crasher and its variants (see TestDecodeBoundsDeclaredLengths).
	f.Add([]byte{0x92, 0xa3, 't', 'a', 'g', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add(cat([]byte{0x93, 0xa3, 't', 'a', 'g', 0x90}, map32(0xffffffff)))
	f.Add(messageEvent(map32(0xffffffff)))
	f.Add(messageEvent(logRecord(str32(0xffffffff))))
	f.Add(messageEvent(logRecord(bin32(0xffffffff))))
	f.Add(messageEvent(logRecord(array32(0xffffffff))))
	f.Add(messageEvent(map32(1), bin32(0xffffffff)))
	f.Add(messageEvent(logRecord(nestedArrays(200))))
	f.Add(cat([]byte{0x93, 0xa3, 't', 'a', 'g'}, header32(0xc9, 0xffffffff), []byte{0x00}))
	f.Add(cat([]byte{0x92}, str32(0xffffffff)))
	f.Add(cat([]byte{0x92, 0xa3, 't', 'a', 'g'}, bin32(0xffffffff)))
	f.Add(packedForward(entries(80, strings.Repeat("a", mib)), true))
	f.Add(packedForward(entries(3, "a line"), true))

	// What any input may allocate: inflating stops at maxPackedForwardSize,
	// and its strings are read in chunks that grow to twice their length.
	const maxAlloc = 4 * maxPackedForwardSize
	f.Fuzz(func(t *testing.T, b []byte) {
		alloc := allocated(func() { _, _ = decodeStream(t, b) })
		if alloc > maxAlloc+uint64(64*len(b)) {
			t.Fatalf("decoding %d bytes allocated %d MiB", len(b), alloc/mib)
		}
	})
}
