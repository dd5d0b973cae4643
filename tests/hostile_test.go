package tests

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// peakRSS is a process's peak resident set (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestPyroscopeBombThroughBinary: 1 GiB of zeros gzipped into a body of
// about 1 MiB, sent to the pyroscope port of the embedded default (the
// agent's node port 4040 takes the same), raw and as pyroscope-go's
// multipart form: 413 naming the limit, the process alive and its peak RSS
// far below what inflating it would take. (It used to be OOM-killed.)
func TestPyroscopeBombThroughBinary(t *testing.T) {
	col := startCollector(t)
	var bomb bytes.Buffer
	zw, err := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	require.NoError(t, err)
	zeros := make([]byte, 1<<20)
	for range 1024 {
		_, _ = zw.Write(zeros)
	}
	require.NoError(t, zw.Close())
	t.Logf("1 GiB of zeros gzipped: %d bytes", bomb.Len())
	before := peakRSS(t, col.cmd.Process.Pid)

	var mp bytes.Buffer
	fmt.Fprintf(&mp, "--b\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"profile.pprof\"\r\n\r\n")
	mp.Write(bomb.Bytes())
	fmt.Fprintf(&mp, "\r\n--b--\r\n")
	for _, tc := range []struct {
		name, contentType string
		body              []byte
	}{
		{"raw", "application/octet-stream", bomb.Bytes()},
		{"multipart", "multipart/form-data; boundary=b", mp.Bytes()},
	} {
		resp, err := http.Post("http://"+col.Pyroscope+"/ingest?name=bomb&format=pprof", tc.contentType, bytes.NewReader(tc.body))
		require.NoError(t, err, tc.name)
		msg := make([]byte, 512)
		n, _ := resp.Body.Read(msg)
		resp.Body.Close()
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "%s: %s", tc.name, msg[:n])
		assert.Contains(t, string(msg[:n]), "max_decompressed_size", tc.name)
	}
	resp, err := http.Get("http://" + col.Health + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "still healthy")
	after := peakRSS(t, col.cmd.Process.Pid)
	t.Logf("peak RSS %d MiB before, %d MiB after the two bombs", before>>20, after>>20)
	assert.Less(t, after-before, int64(128<<20), "peak RSS grew by less than 128 MiB")
	require.Equal(t, 0, col.terminate())
}
