package pyroscopereceiver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProfileItemsBounded: max_decompressed_size bounds a profile's bytes,
// but a pprof of just under 4 MiB made of the smallest possible samples (one
// location each, one value) holds 688,128 samples and allocated 58 times its
// size to decode and convert (226 MiB, measured before this limit).
// max_profile_entries refuses 200,000 such samples with 413 before parsing;
// at the limit (100,000 samples) the same shape allocates a bounded amount,
// and one byte over max_decompressed_size is refused too.
func TestProfileItemsBounded(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	loc := &profile.Location{ID: 1, Address: 1}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}},
		Location:   []*profile.Location{loc},
	}
	var raw bytes.Buffer
	for range 2 * cfg.MaxProfileEntries {
		p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{1}})
	}
	require.NoError(t, p.WriteUncompressed(&raw))
	require.LessOrEqual(t, int64(raw.Len()), cfg.MaxDecompressedSize)
	r := &pyroscopeReceiver{cfg: cfg}
	req := httptest.NewRequest(http.MethodPost, "/ingest?name=app.cpu&format=pprof", bytes.NewReader(raw.Bytes()))

	_, _, err := r.decode(req)
	require.Error(t, err, "%d samples", len(p.Sample))
	assert.Contains(t, err.Error(), "max_profile_entries (100000) samples")
	var re *requestError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusRequestEntityTooLarge, re.status)

	p.Sample = p.Sample[:cfg.MaxProfileEntries]
	raw.Reset()
	require.NoError(t, p.WriteUncompressed(&raw))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	in, prof, err := r.decode(httptest.NewRequest(http.MethodPost, "/ingest?name=app.cpu&format=pprof", bytes.NewReader(raw.Bytes())))
	require.NoError(t, err)
	pd := toProfiles(in, prof)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d samples in %d bytes: %d MiB allocated to decode and convert", len(p.Sample), raw.Len(), allocated>>20)
	assert.Less(t, allocated, uint64(48<<20), "allocation bounded by max_profile_entries")
	runtime.KeepAlive(pd)

	over := append(raw.Bytes(), make([]byte, cfg.MaxDecompressedSize-int64(raw.Len())+1)...)
	_, err = inflate(over, cfg.MaxDecompressedSize)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "max_decompressed_size")
}
