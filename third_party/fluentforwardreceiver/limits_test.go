// Copyright The OpenTelemetry Authors
// SPDX-License-Identifier: Apache-2.0

package fluentforwardreceiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tinylib/msgp/msgp"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"

	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/fluentforwardreceiver/internal/metadata"
)

// byteConn is a connection that reads b and discards what is written to it
// (acknowledgments); handleConn uses nothing else of a net.Conn.
type byteConn struct {
	net.Conn
	r io.Reader
}

func (c byteConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (byteConn) Write(p []byte) (int, error)  { return len(p), nil }

var (
	testServerOnce sync.Once
	testServer     *server
	testEvents     chan event
)

// decodeStream runs b through the server's connection handler, as if a
// client had sent it and closed the connection, and returns the number of
// log records it decoded and the error that ended the connection.
func decodeStream(tb testing.TB, b []byte) (int, error) {
	testServerOnce.Do(func() {
		telemetryBuilder, err := metadata.NewTelemetryBuilder(componenttest.NewNopTelemetrySettings())
		require.NoError(tb, err)
		testEvents = make(chan event)
		testServer = newServer(testEvents, zap.NewNop(), telemetryBuilder)
	})
	done := make(chan int)
	go func() {
		records := 0
		for e := range testEvents {
			if e == nil {
				break
			}
			records += e.LogRecords().Len()
		}
		done <- records
	}()
	err := testServer.handleConn(context.Background(), byteConn{r: bytes.NewReader(b)})
	testEvents <- nil
	return <-done, err
}

// allocated returns the bytes allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Raw MessagePack headers with a 32-bit length.
func array32(n uint32) []byte { return header32(0xdd, n) }
func map32(n uint32) []byte   { return header32(0xdf, n) }
func str32(n uint32) []byte   { return header32(0xdb, n) }
func bin32(n uint32) []byte   { return header32(0xc6, n) }

func header32(lead byte, n uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{lead}, n)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// messageEvent is [tag, time, record] with the record given raw.
func messageEvent(record ...[]byte) []byte {
	b := msgp.AppendArrayHeader(nil, 3)
	b = msgp.AppendString(b, "tag")
	b = msgp.AppendInt64(b, 1593031012)
	return cat(b, cat(record...))
}

// logRecord is a one-key record {"log": value} with the value given raw.
func logRecord(value []byte) []byte {
	return cat(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "log"), value)
}

// packedForward is [tag, bin entries, {"compressed": "gzip"}].
func packedForward(entries []byte, gzipped bool) []byte {
	b := msgp.AppendArrayHeader(nil, 3)
	b = msgp.AppendString(b, "tag")
	if gzipped {
		var buf bytes.Buffer
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = w.Write(entries)
		_ = w.Close()
		entries = buf.Bytes()
	}
	b = msgp.AppendBytes(b, entries)
	b = msgp.AppendMapHeader(b, 1)
	b = msgp.AppendString(b, "compressed")
	if gzipped {
		return msgp.AppendString(b, "gzip")
	}
	return msgp.AppendString(b, "text")
}

// entries is n copies of the entry [0, {"log": value}].
func entries(n int, value string) []byte {
	e := msgp.AppendInt64(msgp.AppendArrayHeader(nil, 2), 0)
	e = cat(e, logRecord(msgp.AppendString(nil, value)))
	return bytes.Repeat(e, n)
}

// nestedArrays is depth arrays, each declaring 0xffff elements and holding
// the next as its first.
func nestedArrays(depth int) []byte {
	return bytes.Repeat([]byte{0xdc, 0xff, 0xff}, depth)
}

const mib = 1 << 20

// TestDecodeBoundsDeclaredLengths sends each input through the connection
// handler. A hostile input, which declares far more than it sends, must end
// the connection with an error naming a limit and allocate little; the
// legitimate ones near the limits must still decode.
func TestDecodeBoundsDeclaredLengths(t *testing.T) {
	const smallAlloc = 4 * mib
	tests := []struct {
		name     string
		input    []byte
		records  int    // wanted, for legitimate input
		maxAlloc uint64 // bytes the decode may allocate
	}{
		{
			// The 10 bytes of issue #13: ["tag", array32 0xffffffff].
			name:     "forward entries array32 of 4Gi",
			input:    []byte{0x92, 0xa3, 't', 'a', 'g', 0xdd, 0xff, 0xff, 0xff, 0xff},
			maxAlloc: smallAlloc,
		},
		{
			name:     "forward options map32 of 4Gi",
			input:    cat([]byte{0x93, 0xa3, 't', 'a', 'g', 0x90}, map32(0xffffffff)),
			maxAlloc: smallAlloc,
		},
		{
			name:     "message record map32 of 4Gi",
			input:    messageEvent(map32(0xffffffff)),
			maxAlloc: smallAlloc,
		},
		{
			name:     "message options map32 of 4Gi",
			input:    cat([]byte{0x94, 0xa3, 't', 'a', 'g', 0x00, 0x80}, map32(0xffffffff)),
			maxAlloc: smallAlloc,
		},
		{
			name:     "record value str32 of 4Gi",
			input:    messageEvent(logRecord(str32(0xffffffff))),
			maxAlloc: smallAlloc,
		},
		{
			name:     "record value bin32 of 4Gi",
			input:    messageEvent(logRecord(bin32(0xffffffff))),
			maxAlloc: smallAlloc,
		},
		{
			name:     "record value array32 of 4Gi",
			input:    messageEvent(logRecord(array32(0xffffffff))),
			maxAlloc: smallAlloc,
		},
		{
			name:     "record value map32 of 4Gi",
			input:    messageEvent(logRecord(map32(0xffffffff))),
			maxAlloc: smallAlloc,
		},
		{
			name:     "record key str32 of 4Gi",
			input:    messageEvent(map32(1), str32(0xffffffff)),
			maxAlloc: smallAlloc,
		},
		{
			name:     "record key bin32 of 4Gi",
			input:    messageEvent(map32(1), bin32(0xffffffff)),
			maxAlloc: smallAlloc,
		},
		{
			name:     "record value 200 nested arrays of 64Ki",
			input:    messageEvent(logRecord(nestedArrays(200))),
			maxAlloc: smallAlloc,
		},
		{
			// ["tag", ext32 of 4Gi, type 0 (EventTime)]
			name:     "time ext32 of 4Gi",
			input:    cat([]byte{0x93, 0xa3, 't', 'a', 'g'}, header32(0xc9, 0xffffffff), []byte{0x00}),
			maxAlloc: smallAlloc,
		},
		{
			name:     "tag str32 of 4Gi",
			input:    cat([]byte{0x92}, str32(0xffffffff)),
			maxAlloc: smallAlloc,
		},
		{
			name:     "packed forward entries bin32 of 4Gi",
			input:    cat([]byte{0x92, 0xa3, 't', 'a', 'g'}, bin32(0xffffffff)),
			maxAlloc: smallAlloc,
		},
		{
			name:     "packed forward entries str32 of 4Gi",
			input:    cat([]byte{0x92, 0xa3, 't', 'a', 'g'}, str32(0xffffffff)),
			maxAlloc: smallAlloc,
		},
		{
			// 80 entries of 1 MiB inflate to 80 MiB from about 80 KiB.
			// Inflating stops at maxPackedForwardSize (64 MiB); strings
			// read in growing chunks allocate up to about twice that.
			name:     "packed forward gzip inflating past the limit",
			input:    packedForward(entries(80, strings.Repeat("a", mib)), true),
			maxAlloc: 256 * mib,
		},
		{
			name:     "packed forward with more entries than the limit",
			input:    packedForward(entries(maxEntries+1, ""), true),
			maxAlloc: 64 * mib,
		},
		{
			name:     "legitimate: a 5 MiB log line",
			input:    messageEvent(logRecord(msgp.AppendString(nil, strings.Repeat("a", 5*mib)))),
			records:  1,
			maxAlloc: 32 * mib,
		},
		{
			name:     "legitimate: gzip packed forward of 32 MiB",
			input:    packedForward(entries(32, strings.Repeat("a", mib)), true),
			records:  32,
			maxAlloc: 256 * mib,
		},
		{
			name:     "legitimate: packed forward of 10000 entries",
			input:    packedForward(entries(10000, "a line"), false),
			records:  10000,
			maxAlloc: 64 * mib,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var records int
			var err error
			alloc := allocated(func() { records, err = decodeStream(t, tt.input) })
			if tt.records > 0 {
				assert.ErrorIs(t, err, io.EOF, "a legitimate stream ends when the client closes")
				assert.Equal(t, tt.records, records)
			} else {
				assert.ErrorIs(t, err, msgp.ErrLimitExceeded)
				assert.Zero(t, records)
			}
			assert.LessOrEqual(t, alloc, tt.maxAlloc, "allocated %d MiB", alloc/mib)
		})
	}
}
