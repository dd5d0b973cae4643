package pyroscopereceiver

import (
	"bytes"
	"compress/gzip"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/grafana/pyroscope-go/upstream"
	"github.com/grafana/pyroscope-go/upstream/remote"
	"github.com/stretchr/testify/require"
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
		checkDecode(t, r, req)
	})
}

// checkDecode decodes req; what decodes must convert to OTLP that marshals,
// and back to pprof as the profilelink exporter converts it.
func checkDecode(t *testing.T, r *pyroscopeReceiver, req *http.Request) {
	in, p, err := r.decode(req)
	if err != nil {
		return
	}
	pd := toProfiles(in, p)
	if _, err := (&pprofile.ProtoMarshaler{}).MarshalProfiles(pd); err != nil {
		t.Fatalf("marshal: %v", err)
	}
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
}

// captureClient records the requests pyroscope-go's uploader sends.
type captureClient struct {
	contentType []string
	body        [][]byte
}

func (c *captureClient) Do(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	c.contentType = append(c.contentType, req.Header.Get("Content-Type"))
	c.body = append(c.body, body)
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(bytes.NewReader(nil))}, nil
}

type nopLogger struct{}

func (nopLogger) Infof(string, ...any)  {}
func (nopLogger) Debugf(string, ...any) {}
func (nopLogger) Errorf(string, ...any) {}

// pyroscopeGoUploads are the multipart bodies (and their Content-Type)
// that pyroscope-go's own uploader (upstream/remote, v1.2.7) sends for a
// CPU profile (no sample_type_config), a heap profile and a mutex profile
// (with the sample_type_config the SDK attaches to them), the profiles
// being real Go runtime output.
func pyroscopeGoUploads(tb testing.TB) (contentTypes []string, bodies [][]byte) {
	var heap, mutex bytes.Buffer
	require.NoError(tb, pprof.Lookup("heap").WriteTo(&heap, 0))
	require.NoError(tb, pprof.Lookup("mutex").WriteTo(&mutex, 0))
	var cpu bytes.Buffer
	require.NoError(tb, handMade().Write(&cpu))
	capture := &captureClient{}
	up, err := remote.NewRemote(remote.Config{Address: "http://pyroscope.invalid:4040", Threads: 1, Logger: nopLogger{}, HTTPClient: capture})
	require.NoError(tb, err)
	up.Start()
	end := time.Now()
	for _, j := range []*upstream.UploadJob{
		{Name: "checkout{env=prod,region=eu-1}", SpyName: "gospy", SampleRate: 100, Units: "samples", AggregationType: "sum",
			Format: upstream.FormatPprof, Profile: cpu.Bytes()},
		{Name: "checkout{env=prod}", SpyName: "gospy", Format: upstream.FormatPprof, Profile: heap.Bytes(),
			SampleTypeConfig: map[string]*upstream.SampleType{
				"alloc_objects": {Units: "objects"}, "alloc_space": {Units: "bytes"},
				"inuse_space": {Units: "bytes", Aggregation: "average"}, "inuse_objects": {Units: "objects", Aggregation: "average"},
			}},
		{Name: "checkout{env=prod}", SpyName: "gospy", Format: upstream.FormatPprof, Profile: mutex.Bytes(),
			SampleTypeConfig: map[string]*upstream.SampleType{
				"contentions": {DisplayName: "mutex_count", Units: "lock_samples"},
				"delay":       {DisplayName: "mutex_duration", Units: "lock_nanoseconds"},
			}},
	} {
		j.StartTime, j.EndTime = end.Add(-10*time.Second), end
		up.Upload(j)
	}
	up.Flush()
	up.Stop()
	require.Len(tb, capture.body, 3)
	return capture.contentType, capture.body
}

// FuzzDecodeMultipart runs arbitrary multipart/form-data bodies (the
// "profile" and "sample_type_config" parts, as pyroscope-go uploads them)
// through the same decoding and conversion as FuzzDecode, with the
// Content-Type (and so the boundary) fuzzed too. Seeds: pyroscope-go's
// real uploads, and a gzip bomb in the profile part.
func FuzzDecodeMultipart(f *testing.F) {
	r := &pyroscopeReceiver{cfg: createDefaultConfig().(*Config)}
	request := func(name, format, contentType string, body []byte) *http.Request {
		req := httptest.NewRequest(http.MethodPost, "/ingest", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		q := req.URL.Query()
		q.Set("name", name)
		q.Set("format", format)
		req.URL.RawQuery = q.Encode()
		return req
	}
	contentTypes, bodies := pyroscopeGoUploads(f)
	for i := range bodies {
		_, _, err := r.decode(request("checkout{env=prod}", "", contentTypes[i], bodies[i]))
		require.NoError(f, err, "pyroscope-go's upload %d decodes", i)
		f.Add("checkout{env=prod}", "", contentTypes[i], bodies[i])
	}
	part := func(parts ...string) (string, []byte) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for i := 0; i+1 < len(parts); i += 2 {
			fw, _ := mw.CreateFormFile(parts[i], parts[i]+".bin")
			_, _ = fw.Write([]byte(parts[i+1]))
		}
		_ = mw.Close()
		return mw.FormDataContentType(), body.Bytes()
	}
	var bomb bytes.Buffer // inflates past max_decompressed_size
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(make([]byte, 8<<20))
	_ = zw.Close()
	ct, body := part("profile", bomb.String(), "sample_type_config", `{"cpu":{"units":"samples"}}`)
	_, _, err := r.decode(request("bomb", "pprof", ct, body))
	var tooLarge *requestError
	require.ErrorAs(f, err, &tooLarge)
	require.Equal(f, http.StatusRequestEntityTooLarge, tooLarge.status, "the bomb is refused")
	f.Add("bomb", "pprof", ct, body)
	ct, body = part("profile", bomb.String())
	f.Add("bomb", "lines", ct, body)
	ct, body = part("sample_type_config", `{"contentions":{"display-name":"block_count"},"delay":null}`, "profile", "main;lock 3\n")
	f.Add("app.block_count", "lines", ct, body)
	ct, body = part("sample_type_config", `{nope`, "profile", "x")
	f.Add("app", "", ct, body)
	f.Add("app", "", "multipart/form-data; boundary=b", []byte("--b\r\nContent-Disposition: form-data; name=\"profile\"\r\n\r\n\x1f\x8b\r\n--b--\r\n"))
	f.Add("app", "", "multipart/form-data", []byte("--\r\n"))
	f.Fuzz(func(t *testing.T, name, format, contentType string, body []byte) {
		checkDecode(t, r, request(name, format, contentType, body))
	})
}
