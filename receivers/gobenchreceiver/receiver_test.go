package gobenchreceiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-fabric/otelcol-fabric/receivers/gobenchreceiver/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/receivers/gobenchreceiver/internal/metadatatest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func startReceiver(t *testing.T, next consumer.Metrics, mod func(*Config)) string {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = freeAddr(t)
	if mod != nil {
		mod(cfg)
	}
	require.NoError(t, cfg.Validate())
	r, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return "http://" + cfg.NetAddr.Endpoint + cfg.Path
}

// goTestBench runs go test -bench on testdata/benchpkg and returns its
// output: real benchmark output, not a fixture.
func goTestBench(t testing.TB, env []string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", append([]string{"test", "-run", "^$", "-bench", ".", "-benchtime", "20ms"}, args...)...)
	cmd.Dir = filepath.Join("testdata", "benchpkg")
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go test -bench: %s", stderr.String())
	return out
}

var (
	benchOnce            sync.Once
	benchText, benchJSON []byte
)

// realOutput is one go test -bench -count 3 -benchmem run, as text and as
// a go test -json stream, shared by the tests of this file.
func realOutput(t *testing.T) (text, jsonStream []byte) {
	benchOnce.Do(func() {
		benchText = goTestBench(t, nil, "-count", "3", "-benchmem")
		benchJSON = goTestBench(t, nil, "-count", "3", "-benchmem", "-json")
	})
	require.NotEmpty(t, benchText)
	return benchText, benchJSON
}

func post(t *testing.T, url string, body []byte, hdr map[string]string) (int, response, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	var out response
	require.NoError(t, json.Unmarshal(raw, &out), "body: %s", raw)
	return res.StatusCode, out, res.Header
}

// point is a data point as the tests look at it.
type point struct {
	metric, unit string
	attrs        map[string]any
	count        uint64
	sum          float64
	quantiles    map[float64]float64
}

func points(t *testing.T, sink *consumertest.MetricsSink) (map[string]any, []point) {
	t.Helper()
	all := sink.AllMetrics()
	require.Len(t, all, 1, "one request, one batch")
	require.Equal(t, 1, all[0].ResourceMetrics().Len())
	rm := all[0].ResourceMetrics().At(0)
	var out []point
	for _, sm := range rm.ScopeMetrics().All() {
		for _, m := range sm.Metrics().All() {
			require.Equal(t, pmetric.MetricTypeSummary, m.Type(), m.Name())
			for _, dp := range m.Summary().DataPoints().All() {
				p := point{metric: m.Name(), unit: m.Unit(), attrs: dp.Attributes().AsRaw(), count: dp.Count(), sum: dp.Sum(), quantiles: map[float64]float64{}}
				for _, q := range dp.QuantileValues().All() {
					p.quantiles[q.Quantile()] = q.Value()
				}
				out = append(out, p)
			}
		}
	}
	return rm.Resource().Attributes().AsRaw(), out
}

func find(ps []point, metric, name string) *point {
	for i := range ps {
		if ps[i].metric == metric && ps[i].attrs[AttrName] == name {
			return &ps[i]
		}
	}
	return nil
}

// nsPerOp reads the ns/op column of a benchmark's lines from go test's
// text output, independently of benchfmt: what the test expects.
func nsPerOp(t *testing.T, out []byte, name string) []float64 {
	var vals []float64
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != name {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			if f[i+1] == "ns/op" {
				v, err := strconv.ParseFloat(f[i], 64)
				require.NoError(t, err)
				vals = append(vals, v)
			}
		}
	}
	sort.Float64s(vals)
	return vals
}

func procsSuffix(t *testing.T, out []byte) string {
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "BenchmarkSum") {
			name := strings.Fields(line)[0]
			return strings.TrimPrefix(name, "BenchmarkSum")
		}
	}
	t.Fatal("no BenchmarkSum line")
	return ""
}

func TestRealBenchOutput(t *testing.T) {
	text, _ := realOutput(t)
	sink := new(consumertest.MetricsSink)
	url := startReceiver(t, sink, nil)

	status, resp, hdr := post(t, url+"?run_id=ci-42&service.name=checkout&vcs.ref.head.revision=abc123&vcs.ref.head.name=main&ci_job_url=https://ci.example/job/42", text, nil)
	require.Equal(t, http.StatusOK, status, resp.Message)
	assert.Equal(t, "accepted", resp.Status)
	assert.Equal(t, "ci-42", resp.RunID)
	assert.Equal(t, "ci-42", hdr.Get("X-Benchmark-Run-Id"))
	assert.Empty(t, resp.RejectedLines)
	// 4 benchmarks (Sum, Alloc, Copy/size=16, Copy/size=1024) x 3 runs.
	assert.Equal(t, 12, resp.Benchmarks)

	res, ps := points(t, sink)
	assert.Equal(t, map[string]any{
		AttrRunID: "ci-42", "service.name": "checkout", "vcs.ref.head.revision": "abc123",
		"vcs.ref.head.name": "main", "cicd.pipeline.run.url.full": "https://ci.example/job/42",
	}, res)
	// Sum, Alloc: time, bytes, allocs; Copy x2: time, throughput, chunks, bytes, allocs.
	assert.Len(t, ps, 2*3+2*5)
	assert.Equal(t, resp.DataPoints, len(ps))

	procs := procsSuffix(t, text)
	wantProcs := int64(1)
	if procs != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(procs, "-"))
		require.NoError(t, err)
		wantProcs = int64(n)
	}
	sum := find(ps, "gobench.op.duration", "BenchmarkSum")
	require.NotNil(t, sum, "%+v", ps)
	assert.Equal(t, "s", sum.unit)
	assert.Equal(t, wantProcs, sum.attrs[AttrProcs])
	assert.Equal(t, "example.com/benchpkg", sum.attrs[AttrPackage])
	assert.NotEmpty(t, sum.attrs[AttrGOOS])
	assert.NotEmpty(t, sum.attrs[AttrGOARCH])
	assert.Contains(t, sum.attrs, AttrCPU)
	// The three samples, in seconds: min, median, max and every rank.
	want := nsPerOp(t, text, "BenchmarkSum"+procs)
	require.Len(t, want, 3)
	assert.Equal(t, uint64(3), sum.count)
	assert.InDelta(t, (want[0]+want[1]+want[2])*1e-9, sum.sum, 1e-15)
	assert.InDelta(t, want[0]*1e-9, sum.quantiles[0], 1e-15)
	assert.InDelta(t, want[1]*1e-9, sum.quantiles[0.5], 1e-15)
	assert.InDelta(t, want[2]*1e-9, sum.quantiles[1], 1e-15)
	assert.Len(t, sum.quantiles, 3)

	alloc := find(ps, "gobench.op.memory.allocated", "BenchmarkAlloc")
	require.NotNil(t, alloc)
	assert.Equal(t, "By", alloc.unit)
	assert.NotNil(t, find(ps, "gobench.op.allocations", "BenchmarkAlloc"))
	tp := find(ps, "gobench.throughput", "BenchmarkCopy/size=1024")
	require.NotNil(t, tp, "MB/s of b.SetBytes")
	assert.Equal(t, "By/s", tp.unit)
	assert.Greater(t, tp.quantiles[0.5], 1e6, "MB/s is scaled to bytes per second")
	chunks := find(ps, "gobench.chunks_per_op", "BenchmarkCopy/size=1024")
	require.NotNil(t, chunks, "custom b.ReportMetric unit")
	assert.Equal(t, 64.0, chunks.quantiles[0.5])
}

// TestJSONStream posts go test -json output: the same benchmarks as text.
func TestJSONStream(t *testing.T) {
	text, js := realOutput(t)
	sink := new(consumertest.MetricsSink)
	url := startReceiver(t, sink, nil)
	status, resp, _ := post(t, url+"?run_id=j1", js, nil)
	require.Equal(t, http.StatusOK, status, resp.Message)
	assert.Equal(t, "json", resp.Format)
	assert.Empty(t, resp.RejectedLines, "=== RUN and the name-only lines of -json are not malformed")
	assert.Equal(t, 12, resp.Benchmarks)
	_, ps := points(t, sink)
	assert.Len(t, ps, 16)
	sum := find(ps, "gobench.op.duration", "BenchmarkSum")
	require.NotNil(t, sum)
	assert.Equal(t, uint64(3), sum.count)
	assert.Equal(t, "example.com/benchpkg", sum.attrs[AttrPackage])
	_ = text
}

func TestGzipAndHeaders(t *testing.T) {
	text, _ := realOutput(t)
	sink := new(consumertest.MetricsSink)
	url := startReceiver(t, sink, nil)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(text)
	require.NoError(t, zw.Close())
	status, resp, _ := post(t, url, gz.Bytes(), map[string]string{
		"Content-Encoding": "gzip", "X-Benchmark-Run-Id": "hdr-1", "X-Service-Name": "cart", "X-Vcs-Ref-Head-Name": "feature/x",
	})
	require.Equal(t, http.StatusOK, status, resp.Message)
	res, _ := points(t, sink)
	assert.Equal(t, "hdr-1", res[AttrRunID])
	assert.Equal(t, "cart", res["service.name"])
	assert.Equal(t, "feature/x", res["vcs.ref.head.name"])
}

func TestRunIDGenerated(t *testing.T) {
	text, _ := realOutput(t)
	sink := new(consumertest.MetricsSink)
	url := startReceiver(t, sink, nil)
	status, resp, hdr := post(t, url, text, nil)
	require.Equal(t, http.StatusOK, status)
	assert.Len(t, resp.RunID, 32)
	assert.Equal(t, resp.RunID, hdr.Get("X-Benchmark-Run-Id"))
	res, _ := points(t, sink)
	assert.Equal(t, resp.RunID, res[AttrRunID])
}

func TestMalformedLinesKeptRest(t *testing.T) {
	text, _ := realOutput(t)
	lines := strings.Split(string(text), "\n")
	// Break the 6th line (a benchmark line: 4 config lines come first) and
	// add a line with a value but no unit at the end.
	require.True(t, strings.HasPrefix(lines[5], "Benchmark"), lines[5])
	lines[5] = "BenchmarkBroken-2 \t 100 \t abc ns/op"
	lines = append(lines[:len(lines)-1], "BenchmarkNoUnit 10 20", "")
	sink := new(consumertest.MetricsSink)
	url := startReceiver(t, sink, nil)
	status, resp, _ := post(t, url+"?run_id=m1", []byte(strings.Join(lines, "\n")), nil)
	require.Equal(t, http.StatusOK, status, resp.Message)
	assert.Equal(t, "partial", resp.Status)
	assert.Contains(t, resp.Message, "2 lines were left out")
	require.Len(t, resp.RejectedLines, 2)
	assert.Equal(t, 6, resp.RejectedLines[0].Line)
	assert.Equal(t, len(lines)-1, resp.RejectedLines[1].Line)
	assert.NotEmpty(t, resp.RejectedLines[0].Error)
	assert.Equal(t, 11, resp.Benchmarks)
	_, ps := points(t, sink)
	assert.Len(t, ps, 16, "the other lines are all there")
}

// TestSamplesPerBenchmarkBounded: one data point holds at most
// max_samples_per_benchmark samples (quantiles, so Prometheus series); the
// lines beyond are rejected.
func TestSamplesPerBenchmarkBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("pkg: p\n")
	for i := range 105 {
		fmt.Fprintf(&b, "BenchmarkX-2 100 %d ns/op\n", 10+i)
	}
	sink := new(consumertest.MetricsSink)
	url := startReceiver(t, sink, nil)
	status, resp, _ := post(t, url+"?run_id=m1", []byte(b.String()), nil)
	require.Equal(t, http.StatusOK, status, resp.Message)
	assert.Equal(t, "partial", resp.Status)
	assert.Equal(t, 100, resp.Benchmarks)
	require.Equal(t, 5, resp.RejectedCount)
	assert.Equal(t, 102, resp.RejectedLines[0].Line, "the 101st result, after the pkg: line")
	assert.Contains(t, resp.RejectedLines[0].Error, "BenchmarkX-2 already has max_samples_per_benchmark (100) ns/op samples")
	require.Len(t, sink.AllMetrics(), 1)
	dp := sink.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Summary().DataPoints().At(0)
	assert.Equal(t, uint64(100), dp.Count())
	assert.LessOrEqual(t, dp.QuantileValues().Len(), 101)
}

// snappyBlock encodes b in snappy's block format with literals only: the
// tests need a valid body, not a small one.
func snappyBlock(b []byte) []byte {
	out := binary.AppendUvarint(nil, uint64(len(b)))
	for len(b) > 0 {
		n := min(len(b), 60)
		out = append(out, byte(n-1)<<2)
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return out
}

// TestOnlyBoundedEncodings: confighttp's snappy decoder inflates a whole
// body before max_request_body_size applies, so the receiver accepts only
// identity and gzip by default.
func TestOnlyBoundedEncodings(t *testing.T) {
	text, _ := realOutput(t)
	url := startReceiver(t, new(consumertest.MetricsSink), nil)
	for _, enc := range []string{"snappy", "zstd", "lz4", "deflate", "zlib"} {
		body := text
		if enc == "snappy" {
			body = snappyBlock(text)
		}
		req, err := http.NewRequest(http.MethodPost, url+"?run_id=enc", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Encoding", enc)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		msg, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", enc, msg)
		assert.Contains(t, string(msg), "unsupported Content-Encoding", enc)
	}
}

// TestUnitsOfOneMetricName: custom units that map to one metric name (or
// to a known unit's) are rejected, not merged into one metric.
func TestUnitsOfOneMetricName(t *testing.T) {
	body := "pkg: p\n" +
		"BenchmarkA 100 1 ns/op 2 a-b/op\n" +
		"BenchmarkB 100 1 ns/op 3 a_b/op\n" +
		"BenchmarkC 100 1 ns/op 4 a.b/op 5 a.b/op\n" +
		"BenchmarkD 100 1 ns/op 6 MB/s\n" +
		"BenchmarkE 100 1 ns/op 7 throughput\n" +
		"BenchmarkF 100 1 ns/op 8 x-y/op 9 x_y/op\n" +
		"BenchmarkA 100 1 ns/op 2 a-b/op\n"
	sink := new(consumertest.MetricsSink)
	url := startReceiver(t, sink, nil)
	status, resp, _ := post(t, url+"?run_id=u", []byte(body), nil)
	require.Equal(t, http.StatusOK, status, resp.Message)
	assert.Equal(t, 3, resp.Benchmarks, "A twice and D")
	var lines []int
	for _, r := range resp.RejectedLines {
		lines = append(lines, r.Line)
	}
	assert.Equal(t, []int{3, 4, 6, 7}, lines)
	assert.Contains(t, resp.RejectedLines[0].Error, `unit "a_b/op" and unit "a-b/op" would both be metric gobench.a_b_per_op`)
	assert.Contains(t, resp.RejectedLines[2].Error, "gobench.throughput")
	assert.Contains(t, resp.RejectedLines[3].Error, `unit "x_y/op" and unit "x-y/op"`)
	seen := map[string]bool{}
	for _, m := range sink.AllMetrics()[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().All() {
		assert.False(t, seen[m.Name()], "one metric per name: %s", m.Name())
		seen[m.Name()] = true
	}
}

// TestPrefixedResultLines: result lines after an indent or a CI log prefix
// are not read by benchfmt; they are reported, not dropped silently.
func TestPrefixedResultLines(t *testing.T) {
	body := "pkg: p\n" +
		"BenchmarkA-2 100 12.5 ns/op\n" +
		"    BenchmarkA-2 100 13 ns/op\n" +
		"2026-12-01T01:56:00.123Z BenchmarkA-2 \t 100 \t 1.2e+01 ns/op \t 0 B/op\n" +
		"--- BENCH: BenchmarkA-2\n" +
		"    bench_test.go:12: BenchmarkA is slow\n" +
		"ok  \tp\t0.1s\n"
	sink := new(consumertest.MetricsSink)
	url := startReceiver(t, sink, nil)
	status, resp, _ := post(t, url+"?run_id=pre", []byte(body), nil)
	require.Equal(t, http.StatusOK, status, resp.Message)
	assert.Equal(t, "partial", resp.Status)
	assert.Equal(t, 1, resp.Benchmarks)
	require.Len(t, resp.RejectedLines, 2)
	assert.Equal(t, 3, resp.RejectedLines[0].Line)
	assert.Equal(t, 4, resp.RejectedLines[1].Line)
	assert.Contains(t, resp.RejectedLines[0].Error, "does not start the line")
}

func TestMalformedJSONEvent(t *testing.T) {
	_, js := realOutput(t)
	lines := strings.Split(string(js), "\n")
	lines[2] = `{"Action":"output", broken`
	sink := new(consumertest.MetricsSink)
	url := startReceiver(t, sink, nil)
	status, resp, _ := post(t, url+"?format=json", []byte(strings.Join(lines, "\n")), nil)
	require.Equal(t, http.StatusOK, status, resp.Message)
	require.Len(t, resp.RejectedLines, 1)
	assert.Equal(t, 3, resp.RejectedLines[0].Line)
	assert.Contains(t, resp.RejectedLines[0].Error, "not a go test -json event")
}

func TestBadRequests(t *testing.T) {
	text, _ := realOutput(t)
	sink := new(consumertest.MetricsSink)
	url := startReceiver(t, sink, func(c *Config) { c.MaxRequestBodySize = 4096; c.MaxRejectedLines = 3 })
	big := bytes.Repeat(text, 4096/len(text)+2)

	var gzBig bytes.Buffer // small on the wire, over the limit inflated
	zw := gzip.NewWriter(&gzBig)
	_, _ = zw.Write(bytes.Repeat([]byte("BenchmarkX 1 2 ns/op\n"), 1000))
	require.NoError(t, zw.Close())
	require.Less(t, gzBig.Len(), 4096)

	for _, tc := range []struct {
		name   string
		query  string
		body   []byte
		hdr    map[string]string
		status int
		msg    string
	}{
		{"empty", "", nil, nil, 400, "no benchmark result lines"},
		{"no benchmark lines", "", []byte("PASS\nok  \texample.com/x\t0.1s\n"), nil, 400, "no benchmark result lines"},
		{"only malformed", "", []byte("BenchmarkA 1 x ns/op\n"), nil, 400, "no benchmark result lines"},
		{"too many malformed", "", []byte("BenchmarkA 1 2 ns/op\nBenchmarkB 1 x ns/op\nBenchmarkB 1 x ns/op\nBenchmarkB 1 x ns/op\nBenchmarkB 1 x ns/op\n"), nil, 400, "more than max_rejected_lines"},
		{"oversize", "", big, nil, 413, "larger than max_request_body_size"},
		{"gzip bomb", "", gzBig.Bytes(), map[string]string{"Content-Encoding": "gzip"}, 413, "larger than max_request_body_size"},
		{"unknown parameter", "?service_name=x", text, nil, 400, "unknown query parameters"},
		{"bad format", "?format=xml", text, nil, 415, "not supported"},
		{"invalid UTF-8 parameter", "?run_id=%ff", text, nil, 400, "valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, resp, _ := post(t, url+tc.query, tc.body, tc.hdr)
			assert.Equal(t, tc.status, status, resp.Message)
			assert.Contains(t, resp.Message, tc.msg)
			assert.NotEqual(t, "accepted", resp.Status)
		})
	}
	assert.Empty(t, sink.AllMetrics(), "nothing half-ingested")
}

func TestLongLine(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	url := startReceiver(t, sink, nil)
	body := append([]byte("BenchmarkA 1 2 ns/op\n"), bytes.Repeat([]byte("x"), 70<<10)...)
	status, resp, _ := post(t, url, body, nil)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, resp.Message, "longer than")
	assert.Empty(t, sink.AllMetrics())
}

func TestMethodNotAllowed(t *testing.T) {
	url := startReceiver(t, consumertest.NewNop(), nil)
	res, err := http.Get(url)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
}

func TestPipelineErrors(t *testing.T) {
	text, _ := realOutput(t)
	for _, tc := range []struct {
		err    error
		status int
		state  string
	}{
		{errors.New("queue is full"), http.StatusServiceUnavailable, "refused"},
		{consumererror.NewPermanent(errors.New("bad data")), http.StatusBadRequest, "rejected"},
	} {
		url := startReceiver(t, consumertest.NewErr(tc.err), nil)
		status, resp, hdr := post(t, url+"?run_id=p", text, nil)
		assert.Equal(t, tc.status, status)
		assert.Equal(t, tc.state, resp.Status)
		// The pipeline fans out: a branch (benchstat) may have the data
		// already, so the answer does not claim nothing was ingested.
		assert.NotContains(t, resp.Message, "nothing was ingested")
		assert.Zero(t, resp.DataPoints)
		if tc.status == http.StatusServiceUnavailable {
			assert.Equal(t, "5", hdr.Get("Retry-After"))
		}
	}
}

// TestEvenCount: with an even -count the median lies between the two
// middle samples, and every sample is still there as a rank quantile.
func TestEvenCount(t *testing.T) {
	text := goTestBench(t, nil, "-bench", "Sum", "-count", "4")
	sink := new(consumertest.MetricsSink)
	url := startReceiver(t, sink, nil)
	status, resp, _ := post(t, url, text, nil)
	require.Equal(t, http.StatusOK, status, resp.Message)
	_, ps := points(t, sink)
	require.Len(t, ps, 1)
	want := nsPerOp(t, text, "BenchmarkSum"+procsSuffix(t, text))
	require.Len(t, want, 4)
	p := ps[0]
	assert.Equal(t, uint64(4), p.count)
	assert.Len(t, p.quantiles, 5)
	for i, q := range []float64{0, 1.0 / 3, 2.0 / 3, 1} {
		assert.InDelta(t, want[i]*1e-9, p.quantiles[q], 1e-15, "rank %d", i)
	}
	assert.InDelta(t, (want[1]+want[2])/2*1e-9, p.quantiles[0.5], 1e-15)
}

// TestTelemetry: runs by format and outcome, benchmarks ingested, lines
// rejected.
func TestTelemetry(t *testing.T) {
	text, _ := realOutput(t)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = freeAddr(t)
	r, err := NewFactory().CreateMetrics(context.Background(), metadatatest.NewSettings(tel), cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	url := "http://" + cfg.NetAddr.Endpoint + cfg.Path

	post(t, url, text, nil)                                                              // accepted, 12 results
	post(t, url, append(append([]byte(nil), text...), "BenchmarkX 1 y ns/op\n"...), nil) // partial: 12, 1 rejected
	post(t, url, []byte("PASS\n"), nil)                                                  // rejected

	metadatatest.AssertEqualReceiverGobenchRuns(t, tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("format", "text"), attribute.String("outcome", "accepted"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("format", "text"), attribute.String("outcome", "partial"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("format", "text"), attribute.String("outcome", "rejected"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualReceiverGobenchBenchmarks(t, tel, []metricdata.DataPoint[int64]{{Value: 24}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualReceiverGobenchLinesRejected(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}
