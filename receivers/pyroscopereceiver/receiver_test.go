package pyroscopereceiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/pprof/profile"
	"github.com/grafana/pyroscope-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/consumer/xconsumer"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-fabric/otelcol-fabric/internal/pprofconv"
	"github.com/otelcol-fabric/otelcol-fabric/receivers/pyroscopereceiver/internal/metadata"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func startReceiver(t *testing.T, next xconsumer.Profiles, mod func(*Config)) string {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = freeAddr(t)
	if mod != nil {
		mod(cfg)
	}
	r, err := NewFactory().CreateProfiles(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return "http://" + cfg.NetAddr.Endpoint
}

// strs returns a profile's dictionary strings for checks.
func strs(pd pprofile.Profiles) []string {
	return pd.Dictionary().StringTable().AsRaw()
}

func sampleTypes(pd pprofile.Profiles) []string {
	var out []string
	st := pd.Dictionary().StringTable()
	for _, rp := range pd.ResourceProfiles().All() {
		for _, sp := range rp.ScopeProfiles().All() {
			for _, p := range sp.Profiles().All() {
				out = append(out, st.At(int(p.SampleType().TypeStrindex()))+"/"+st.At(int(p.SampleType().UnitStrindex())))
			}
		}
	}
	return out
}

var cpuSink int

//go:noinline
func burnCPU(d time.Duration) int {
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := range 100000 {
			n += i % 7
		}
	}
	return n
}

// TestPyroscopeGoClient pushes real CPU profiles with the Pyroscope Go SDK
// (github.com/grafana/pyroscope-go) and checks what reaches the pipeline.
func TestPyroscopeGoClient(t *testing.T) {
	sink := new(consumertest.ProfilesSink)
	addr := startReceiver(t, sink, nil)

	p, err := pyroscope.Start(pyroscope.Config{
		ApplicationName: "checkout.app",
		ServerAddress:   addr,
		Tags:            map[string]string{"env": "test", "region": "eu-1"},
		UploadRate:      time.Second,
		ProfileTypes:    []pyroscope.ProfileType{pyroscope.ProfileCPU},
	})
	require.NoError(t, err)
	cpuSink += burnCPU(2500 * time.Millisecond)
	require.NoError(t, p.Stop())

	require.Eventually(t, func() bool { return sink.SampleCount() > 0 }, 15*time.Second, 100*time.Millisecond)
	var found bool
	for _, pd := range sink.AllProfiles() {
		rp := pd.ResourceProfiles().At(0)
		attrs := rp.Resource().Attributes().AsRaw()
		assert.Equal(t, "checkout.app", attrs["service.name"])
		assert.Equal(t, "test", attrs["env"])
		assert.Equal(t, "eu-1", attrs["region"])
		assert.Equal(t, "gospy", attrs["pyroscope.spy_name"])
		if pd.SampleCount() == 0 {
			continue
		}
		assert.ElementsMatch(t, []string{"samples/count", "cpu/nanoseconds"}, sampleTypes(pd))
		for _, s := range strs(pd) {
			if strings.Contains(s, "burnCPU") {
				found = true
			}
		}
		prof := rp.ScopeProfiles().At(0).Profiles().At(0)
		assert.NotZero(t, prof.Time(), "the profile carries its time")
		assert.Equal(t, "process_cpu", profileAttr(pd, prof, pprofconv.AttrProfileName), "Pyroscope's profile name")
	}
	assert.True(t, found, "the profiled function is in the profile")
}

// handMade builds a pprof CPU profile with two stacks; one sample carries
// trace_id and span_id labels, as span-profiled code does.
func handMade() *profile.Profile {
	mainFn := &profile.Function{ID: 1, Name: "main.main", Filename: "main.go"}
	handler := &profile.Function{ID: 2, Name: "main.handleCheckout", Filename: "checkout.go"}
	mapping := &profile.Mapping{ID: 1, Start: 0x400000, Limit: 0x800000, File: "/app"}
	l1 := &profile.Location{ID: 1, Mapping: mapping, Address: 0x401000, Line: []profile.Line{{Function: mainFn, Line: 10}}}
	l2 := &profile.Location{ID: 2, Mapping: mapping, Address: 0x402000, Line: []profile.Line{{Function: handler, Line: 42}}}
	return &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        10_000_000,
		TimeNanos:     time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano(),
		DurationNanos: int64(10 * time.Second),
		Mapping:       []*profile.Mapping{mapping},
		Function:      []*profile.Function{mainFn, handler},
		Location:      []*profile.Location{l1, l2},
		Sample: []*profile.Sample{
			{Location: []*profile.Location{l2, l1}, Value: []int64{3, 30_000_000},
				Label: map[string][]string{"trace_id": {"0102030405060708090a0b0c0d0e0f10"}, "span_id": {"1112131415161718"}, "span_name": {"GET /checkout"}}},
			{Location: []*profile.Location{l1}, Value: []int64{1, 10_000_000}},
		},
	}
}

func encode(t *testing.T, p *profile.Profile) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, p.Write(&buf)) // gzipped, as SDKs send it
	return buf.Bytes()
}

func post(t *testing.T, addr, query, contentType string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(addr+"/ingest?"+query, contentType, bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(msg)
}

func TestHandMadePprof(t *testing.T) {
	sink := new(consumertest.ProfilesSink)
	addr := startReceiver(t, sink, nil)
	q := url.Values{"name": {"payments{env=prod,team=pay}"}, "spyName": {"gospy"}}
	status, msg := post(t, addr, q.Encode(), "application/octet-stream", encode(t, handMade()))
	require.Equal(t, http.StatusOK, status, msg)

	pd := sink.AllProfiles()[0]
	assert.Equal(t, map[string]any{"service.name": "payments", "env": "prod", "team": "pay", "pyroscope.spy_name": "gospy"},
		pd.ResourceProfiles().At(0).Resource().Attributes().AsRaw())
	assert.Equal(t, []string{"samples/count", "cpu/nanoseconds"}, sampleTypes(pd))
	profs := pd.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles()
	cpu := profs.At(1)
	assert.Equal(t, int64(10_000_000), cpu.Period())
	assert.Equal(t, uint64(10*time.Second), cpu.DurationNano())
	require.Equal(t, 2, cpu.Samples().Len())
	var total int64
	dict := pd.Dictionary()
	for _, s := range cpu.Samples().All() {
		total += s.Values().At(0)
	}
	assert.Equal(t, int64(40_000_000), total, "values preserved")

	linked := cpu.Samples().At(0)
	link := dict.LinkTable().At(int(linked.LinkIndex()))
	assert.Equal(t, "0102030405060708090a0b0c0d0e0f10", link.TraceID().String())
	assert.Equal(t, "1112131415161718", link.SpanID().String())
	attrs := pprofile.FromAttributeIndices(dict.AttributeTable(), linked, dict).AsRaw()
	assert.Equal(t, "GET /checkout", attrs["span_name"])
	assert.Zero(t, cpu.Samples().At(1).LinkIndex(), "an unlinked sample points at the zero link")

	// The leaf-first stack resolves to the functions.
	stack := dict.StackTable().At(int(linked.StackIndex()))
	var names []string
	for _, li := range stack.LocationIndices().All() {
		loc := dict.LocationTable().At(int(li))
		fn := dict.FunctionTable().At(int(loc.Lines().At(0).FunctionIndex()))
		names = append(names, dict.StringTable().At(int(fn.NameStrindex())))
	}
	assert.Equal(t, []string{"main.handleCheckout", "main.main"}, names)
}

// TestInvalidUTF8InPprof: pprof's strings are bytes; what reaches the
// pipeline is valid UTF-8 (OTLP strings must be), invalid sequences replaced
// by U+FFFD.
func TestInvalidUTF8InPprof(t *testing.T) {
	sink := new(consumertest.ProfilesSink)
	addr := startReceiver(t, sink, nil)
	p := handMade()
	p.Function[0].Name = "main.\xffbroken"
	p.Sample[0].Label["span_name"] = []string{"GET /\xc3"}
	status, msg := post(t, addr, url.Values{"name": {"payments"}}.Encode(), "application/octet-stream", encode(t, p))
	require.Equal(t, http.StatusOK, status, msg)
	dict := sink.AllProfiles()[0].Dictionary()
	for i, s := range dict.StringTable().All() {
		assert.True(t, utf8.ValidString(s), "string %d: %q", i, s)
	}
	assert.Contains(t, dict.StringTable().AsRaw(), "main.\uFFFDbroken")
	for _, kv := range dict.AttributeTable().All() {
		assert.True(t, utf8.ValidString(kv.Value().AsString()), "attribute %q", kv.Value().AsString())
	}
}

func TestMultipartAndLines(t *testing.T) {
	sink := new(consumertest.ProfilesSink)
	addr := startReceiver(t, sink, nil)

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("sample_type_config", "sample_type_config.json")
	_, _ = fw.Write([]byte(`{"cpu":{"units":"samples"}}`))
	fw, _ = mw.CreateFormFile("profile", "profile.pprof")
	_, _ = fw.Write(encode(t, handMade()))
	require.NoError(t, mw.Close())
	status, msg := post(t, addr, "name=mp", mw.FormDataContentType(), body.Bytes())
	require.Equal(t, http.StatusOK, status, msg)

	lines := "main;handle;db.query 30\nmain;handle 10\n\nmain 5\n"
	status, msg = post(t, addr, "name=legacy.cpu{env=dev}&format=lines&sampleRate=100&from=1764072000&until=1764072010", "text/plain", []byte(lines))
	require.Equal(t, http.StatusOK, status, msg)

	all := sink.AllProfiles()
	require.Len(t, all, 2)
	assert.Equal(t, 4, all[0].SampleCount(), "multipart: the profile part, two samples in each of two sample types")
	pd := all[1]
	res := pd.ResourceProfiles().At(0).Resource().Attributes().AsRaw()
	assert.Equal(t, "legacy", res["service.name"], "the .cpu suffix is the profile type, not the service")
	assert.Equal(t, "cpu", res["pyroscope.profile_type"])
	prof := pd.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0)
	assert.Equal(t, int64(10_000_000), prof.Period(), "100 Hz")
	assert.Equal(t, uint64(10*time.Second), prof.DurationNano())
	assert.Equal(t, time.Unix(1764072000, 0).UTC(), prof.Time().AsTime())
	var total int64
	for _, s := range prof.Samples().All() {
		total += s.Values().At(0)
	}
	assert.Equal(t, int64(45), total)
	assert.Contains(t, strs(pd), "db.query")
}

func TestBadInput(t *testing.T) {
	sink := new(consumertest.ProfilesSink)
	addr := startReceiver(t, sink, func(c *Config) { c.MaxRequestBodySize = 4096 })
	good := encode(t, handMade())
	for _, tc := range []struct {
		name, query string
		body        []byte
		contentType string
		status      int
		want        string
	}{
		{"missing name", "format=pprof", good, "", 400, "the name parameter is missing"},
		{"unclosed labels", "name=app{env=prod", good, "", 400, "labels are not closed"},
		{"label without value", "name=app{env}", good, "", 400, `label "env" is not key=value`},
		{"empty application", "name={env=prod}", good, "", 400, "the application name is empty"},
		{"unknown format", "name=app&format=jfr", good, "", 415, `format="jfr" is not supported`},
		{"corrupt pprof", "name=app", []byte("not a profile at all"), "", 400, "corrupt pprof"},
		{"truncated gzip", "name=app", good[:len(good)/2], "", 400, "corrupt gzip"},
		{"bad sample_type_config", "name=app", []byte("--b\r\nContent-Disposition: form-data; name=\"sample_type_config\"\r\n\r\n{nope\r\n--b--\r\n"), "multipart/form-data; boundary=b", 400, "sample_type_config is not valid JSON"},
		{"empty body", "name=app", nil, "", 400, "the profile is empty"},
		{"bad from", "name=app&from=yesterday", good, "", 400, `from="yesterday" is not a Unix time`},
		{"bad sample rate", "name=app&sampleRate=-5", good, "", 400, "sampleRate"},
		{"lines without count", "name=app&format=lines", []byte("main;foo\n"), "", 400, "line 1"},
		{"lines bad count", "name=app&format=lines", []byte("main 1\nmain;foo x\n"), "", 400, `line 2: count "x"`},
		{"oversize", "name=app", bytes.Repeat([]byte("x"), 10000), "", 413, "max_request_body_size"},
		{"name not UTF-8", "name=app%FF%FE{env=prod}", good, "", 400, "the name parameter is not valid UTF-8"},
		{"spyName not UTF-8", "name=app&spyName=go%C3", good, "", 400, "the spyName parameter is not valid UTF-8"},
		{"multipart without profile", "name=app", []byte("--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n"), "multipart/form-data; boundary=b", 400, `no "profile" part`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" {
				ct = "application/octet-stream"
			}
			status, msg := post(t, addr, tc.query, ct, tc.body)
			assert.Equal(t, tc.status, status, msg)
			assert.Contains(t, msg, tc.want)
		})
	}
	resp, err := http.Get(addr + "/ingest?name=app")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Zero(t, sink.SampleCount(), "nothing reached the pipeline")
}

func TestPipelineErrors(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
	}{
		{errors.New("queue is full"), http.StatusServiceUnavailable},
		{consumererror.NewPermanent(errors.New("bad data")), http.StatusBadRequest},
	} {
		next, _ := xconsumer.NewProfiles(func(context.Context, pprofile.Profiles) error { return tc.err })
		addr := startReceiver(t, next, nil)
		status, msg := post(t, addr, "name=app", "application/octet-stream", encode(t, handMade()))
		assert.Equal(t, tc.status, status, msg)
		assert.Contains(t, msg, tc.err.Error())
	}
}

func profileAttr(pd pprofile.Profiles, p pprofile.Profile, key string) string {
	dict := pd.Dictionary()
	for _, ai := range p.AttributeIndices().All() {
		kv := dict.AttributeTable().At(int(ai))
		if dict.StringTable().At(int(kv.KeyStrindex())) == key {
			return kv.Value().AsString()
		}
	}
	return ""
}

// TestMutexAndBlockNames: pyroscope-go's mutex and block profiles have the
// same sample types (contentions, delay); only the display names of its
// sample_type_config tell them apart, as Pyroscope's own ingest reads them.
func TestMutexAndBlockNames(t *testing.T) {
	sink := new(consumertest.ProfilesSink)
	addr := startReceiver(t, sink, nil)
	contention := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "contentions", Unit: "count"}, {Type: "delay", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "contentions", Unit: "count"},
		Period:     1,
	}
	fn := &profile.Function{ID: 1, Name: "sync.(*Mutex).Lock"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	contention.Function, contention.Location = []*profile.Function{fn}, []*profile.Location{loc}
	contention.Sample = []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{3, 1500}}}
	for _, kind := range []string{"mutex", "block"} {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("profile", "profile.pprof")
		_, _ = fw.Write(encode(t, contention))
		fw, _ = mw.CreateFormFile("sample_type_config", "sample_type_config.json")
		_, _ = fmt.Fprintf(fw, `{"contentions":{"units":"lock_samples","display-name":"%[1]s_count"},"delay":{"units":"lock_nanoseconds","display-name":"%[1]s_duration"}}`, kind)
		require.NoError(t, mw.Close())
		status, msg := post(t, addr, "name=app&spyName=gospy", mw.FormDataContentType(), body.Bytes())
		require.Equal(t, http.StatusOK, status, msg)
	}
	all := sink.AllProfiles()
	require.Len(t, all, 2)
	for i, want := range []string{"mutex", "block"} {
		for _, p := range all[i].ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().All() {
			assert.Equal(t, want, profileAttr(all[i], p, pprofconv.AttrProfileName))
		}
	}
}

// TestDecompressionBomb: a small gzip body that inflates past
// max_decompressed_size is refused with 413 before it is inflated whole,
// whether it comes raw, as a multipart part or in the lines format.
func TestDecompressionBomb(t *testing.T) {
	sink := new(consumertest.ProfilesSink)
	addr := startReceiver(t, sink, func(c *Config) { c.MaxDecompressedSize = 1 << 20 })
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(make([]byte, 64<<20)) // 64 MiB of zeros: about 64 KiB gzipped
	require.NoError(t, zw.Close())
	require.Less(t, bomb.Len(), 1<<20, "the body itself is under the limit")

	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("profile", "profile.pprof")
	_, _ = fw.Write(bomb.Bytes())
	require.NoError(t, mw.Close())

	for _, tc := range []struct {
		name, query, contentType string
		body                     []byte
	}{
		{"raw", "name=app", "application/octet-stream", bomb.Bytes()},
		{"multipart", "name=app", mw.FormDataContentType(), mp.Bytes()},
		{"lines", "name=app&format=lines", "text/plain", bomb.Bytes()},
		{"uncompressed", "name=app", "application/octet-stream", bytes.Repeat([]byte{0}, 2<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			status, msg := post(t, addr, tc.query, tc.contentType, tc.body)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			assert.Equal(t, http.StatusRequestEntityTooLarge, status, msg)
			assert.Contains(t, msg, "max_decompressed_size (1048576 bytes)")
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(32<<20), "inflating stopped at the limit")
		})
	}
	assert.Zero(t, sink.SampleCount())
}

// TestLinesNameFromSuffix: collapsed stacks say what they measure only in
// the application name's suffix, which names the profile as Pyroscope's
// ingest adapter does.
func TestLinesNameFromSuffix(t *testing.T) {
	sink := new(consumertest.ProfilesSink)
	addr := startReceiver(t, sink, nil)
	for _, name := range []string{"app.inuse_space", "app.cpu", "app.block_count"} {
		status, msg := post(t, addr, "name="+name+"&format=lines&units=bytes&sampleRate=100", "text/plain", []byte("main;alloc 4096\n"))
		require.Equal(t, http.StatusOK, status, msg)
	}
	all := sink.AllProfiles()
	require.Len(t, all, 3)
	for i, want := range []string{"memory", "process_cpu", "block"} {
		p := all[i].ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0)
		assert.Equal(t, want, profileAttr(all[i], p, pprofconv.AttrProfileName))
	}
}
