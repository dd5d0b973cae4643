package pyroscopereceiver

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/collector/pdata/pprofile"

	"github.com/otelcol-fabric/otelcol-fabric/internal/pprofconv"
)

// FuzzDecode runs arbitrary names, formats and bodies through the ingest
// decoding path and the conversion to OTLP: errors are fine, panics are not,
// and what is produced marshals.
func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	_ = handMade().Write(&buf)
	f.Add("app{env=prod}", "pprof", buf.Bytes())
	f.Add("legacy.cpu", "lines", []byte("main;a;b 3\nmain 1\n"))
	f.Add("x{a=b,c=d}", "", []byte{0x1f, 0x8b, 0x08})
	var bomb bytes.Buffer // inflates past max_decompressed_size
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(make([]byte, 8<<20))
	_ = zw.Close()
	f.Add("bomb", "pprof", bomb.Bytes())
	f.Add("bomb", "lines", bomb.Bytes())
	r := &pyroscopeReceiver{cfg: createDefaultConfig().(*Config)}
	f.Fuzz(func(t *testing.T, name, format string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/ingest", bytes.NewReader(body))
		q := req.URL.Query()
		q.Set("name", name)
		q.Set("format", format)
		req.URL.RawQuery = q.Encode()
		in, p, err := r.decode(req)
		if err != nil {
			return
		}
		pd := toProfiles(in, p)
		if _, err := (&pprofile.ProtoMarshaler{}).MarshalProfiles(pd); err != nil {
			t.Fatalf("marshal: %v", err)
		}
		// And back to pprof, as the profilelink exporter converts it.
		for _, rp := range pd.ResourceProfiles().All() {
			for _, sp := range rp.ScopeProfiles().All() {
				for _, prof := range sp.Profiles().All() {
					back, err := pprofconv.ToPprof(pd.Dictionary(), prof)
					if err != nil {
						t.Fatalf("ToPprof of a converted profile: %v", err)
					}
					if err := back.Write(io.Discard); err != nil {
						t.Fatalf("write: %v", err)
					}
				}
			}
		}
	})
}
