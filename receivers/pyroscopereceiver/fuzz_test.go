package pyroscopereceiver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/collector/pdata/pprofile"
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
	})
}
