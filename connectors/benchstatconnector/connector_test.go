package benchstatconnector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-fabric/otelcol-fabric/connectors/benchstatconnector/internal/metadata"
	"github.com/otelcol-fabric/otelcol-fabric/internal/benchdata"
	"github.com/otelcol-fabric/otelcol-fabric/receivers/gobenchreceiver"
)

// goTestBench runs go test -bench on the gobench receiver's benchmark
// package: real output. BENCHPKG_WORK=n makes BenchmarkSum slower.
func goTestBench(t testing.TB, work string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", append([]string{"test", "-run", "^$", "-benchtime", "20ms"}, args...)...)
	cmd.Dir = filepath.Join("..", "..", "receivers", "gobenchreceiver", "testdata", "benchpkg")
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	if work != "" {
		cmd.Env = append(cmd.Env, "BENCHPKG_WORK="+work)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go test -bench: %s", stderr.String())
	return out
}

var (
	outOnce          sync.Once
	baseOut, slowOut []byte
)

// outputs: a baseline run and a run whose BenchmarkSum does 10 times the
// work; Copy is unchanged (its timings are whatever the machine gives;
// its chunks/op are exactly equal).
func outputs(t *testing.T) (base, slow []byte) {
	outOnce.Do(func() {
		baseOut = goTestBench(t, "", "-bench", "Sum|Copy", "-count", "10")
		slowOut = goTestBench(t, "2000", "-bench", "Sum|Copy", "-count", "10")
	})
	require.NotEmpty(t, baseOut)
	return baseOut, slowOut
}

// memStorage is a storage extension holding its entries in memory, shared
// by the connectors of a test as a file_storage directory would be.
type memStorage struct {
	mu   sync.Mutex
	data map[string][]byte
	fail bool
}

func (s *memStorage) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.data {
		out = append(out, k)
	}
	return out
}

func (s *memStorage) Start(context.Context, component.Host) error { return nil }
func (s *memStorage) Shutdown(context.Context) error              { return nil }
func (s *memStorage) GetClient(context.Context, component.Kind, component.ID, string) (storage.Client, error) {
	return &memClient{s: s}, nil
}

type memClient struct{ s *memStorage }

func (c *memClient) Get(_ context.Context, k string) ([]byte, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.data[k], nil
}
func (c *memClient) Set(ctx context.Context, k string, v []byte) error {
	return c.Batch(ctx, storage.SetOperation(k, v))
}
func (c *memClient) Delete(ctx context.Context, k string) error {
	return c.Batch(ctx, storage.DeleteOperation(k))
}
func (c *memClient) Batch(_ context.Context, ops ...*storage.Operation) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.s.fail {
		return fmt.Errorf("disk full")
	}
	for _, op := range ops {
		switch op.Type {
		case storage.Set:
			c.s.data[op.Key] = append([]byte(nil), op.Value...)
		case storage.Delete:
			delete(c.s.data, op.Key)
		case storage.Get:
			op.Value = c.s.data[op.Key]
		}
	}
	return nil
}
func (c *memClient) Close(context.Context) error { return nil }

var _ extension.Extension = (*memStorage)(nil)

type host struct {
	component.Host
	ext map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.ext }

var storageID = component.MustNewID("memstorage")

// benchPipeline is the gobench receiver feeding both sides of one benchstat
// connector, as the gateway wires them.
type benchPipeline struct {
	url     string
	metrics *consumertest.MetricsSink
	logs    *consumertest.LogsSink
	tel     *componenttest.Telemetry
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func startPipeline(t *testing.T, mod func(*Config), st *memStorage) *benchPipeline {
	t.Helper()
	p := &benchPipeline{metrics: new(consumertest.MetricsSink), logs: new(consumertest.LogsSink), tel: componenttest.NewTelemetry()}
	t.Cleanup(func() { require.NoError(t, p.tel.Shutdown(context.Background())) })
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	if mod != nil {
		mod(cfg)
	}
	h := host{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{}}
	if st != nil {
		cfg.Storage = &storageID
		h.ext[storageID] = st
	}
	require.NoError(t, cfg.Validate())
	set := connectortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = p.tel.NewTelemetrySettings()
	mside, err := f.CreateMetricsToMetrics(context.Background(), set, cfg, p.metrics)
	require.NoError(t, err)
	lside, err := f.CreateMetricsToLogs(context.Background(), set, cfg, p.logs)
	require.NoError(t, err)
	for _, c := range []component.Component{mside, lside} {
		require.NoError(t, c.Start(context.Background(), h))
	}
	t.Cleanup(func() {
		for _, c := range []component.Component{mside, lside} {
			require.NoError(t, c.Shutdown(context.Background()))
		}
	})
	fan, err := consumer.NewMetrics(func(ctx context.Context, md pmetric.Metrics) error {
		if err := mside.ConsumeMetrics(ctx, md); err != nil {
			return err
		}
		return lside.ConsumeMetrics(ctx, md)
	})
	require.NoError(t, err)

	rf := gobenchreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig().(*gobenchreceiver.Config)
	rcfg.NetAddr.Endpoint = freeAddr(t)
	r, err := rf.CreateMetrics(context.Background(), receivertest.NewNopSettings(rf.Type()), rcfg, fan)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	p.url = "http://" + rcfg.NetAddr.Endpoint + rcfg.Path
	return p
}

func (p *benchPipeline) post(t *testing.T, query string, body []byte) {
	t.Helper()
	res, err := http.Post(p.url+"?"+query, "text/plain", bytes.NewReader(body))
	require.NoError(t, err)
	defer res.Body.Close()
	msg, _ := io.ReadAll(res.Body)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", msg)
}

// delta is a gobench.delta / p_value pair as the test reads them.
type delta struct {
	ratio, p float64
	verdict  string
	run      string
	baseline string
}

func (p *benchPipeline) deltas(t *testing.T) map[string]delta {
	out := map[string]delta{}
	for _, md := range p.metrics.AllMetrics() {
		for _, rm := range md.ResourceMetrics().All() {
			ra := rm.Resource().Attributes()
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					for _, dp := range m.Gauge().DataPoints().All() {
						a := dp.Attributes()
						key := str(ra, benchdata.AttrRunID) + " " + displayName(str(a, benchdata.AttrName), procsOf(a)) + " " + str(a, benchdata.AttrUnit)
						d := out[key]
						d.verdict = str(a, attrVerdict)
						d.run = str(ra, benchdata.AttrRunID)
						d.baseline = str(ra, benchdata.AttrBaselineRunID)
						switch m.Name() {
						case metricDelta:
							d.ratio = dp.DoubleValue()
						case metricPValue:
							d.p = dp.DoubleValue()
						}
						out[key] = d
					}
				}
			}
		}
	}
	return out
}

func (p *benchPipeline) records() []plog.LogRecord {
	var out []plog.LogRecord
	for _, ld := range p.logs.AllLogs() {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					out = append(out, lr)
				}
			}
		}
	}
	return out
}

// benchstatRow is a row of benchstat's text output.
type benchstatRow struct {
	unit, name string
	raw        string // the line as benchstat printed it
	delta, p   string
}

// runBenchstat runs golang.org/x/perf/cmd/benchstat (the same module
// version the connector computes with) on the two outputs.
func runBenchstat(t *testing.T, base, slow []byte) []benchstatRow {
	dir := t.TempDir()
	bin := filepath.Join(dir, "benchstat")
	cmd := exec.Command("go", "build", "-o", bin, "golang.org/x/perf/cmd/benchstat")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "base.txt"), base, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "slow.txt"), slow, 0o644))
	cmd = exec.Command(bin, "base.txt", "slow.txt")
	cmd.Dir = dir
	out, err = cmd.Output()
	require.NoError(t, err)
	t.Logf("benchstat:\n%s", out)
	var rows []benchstatRow
	unit := ""
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(strings.NewReplacer("│", " ", "¹", "", "²", "").Replace(line))
		switch {
		case len(f) == 4 && f[2] == "vs" && f[3] == "base":
			unit = f[0]
		case unit != "" && len(f) >= 9 && f[2] == "±" && f[5] == "±" && f[0] != "geomean":
			rows = append(rows, benchstatRow{unit: unit, name: "Benchmark" + f[0], raw: line, delta: f[7], p: strings.Join(f[8:], " ")})
		}
	}
	require.NotEmpty(t, rows, "no rows parsed from benchstat's output")
	return rows
}

// TestMatchesBenchstat: the connector's verdicts, deltas, p-values and
// regression records are benchstat's, on the same two go test outputs.
func TestMatchesBenchstat(t *testing.T) {
	base, slow := outputs(t)
	// A benchmark that starts allocating: 0 -> 1 allocs/op, which benchstat
	// finds significant with no percentage ("?").
	base = append(append([]byte(nil), base...), zeroAllocs(procsSuffix(t, base), 0)...)
	slow = append(append([]byte(nil), slow...), zeroAllocs(procsSuffix(t, slow), 1)...)
	p := startPipeline(t, nil, nil)
	p.post(t, "run_id=base&service.name=checkout&vcs.ref.head.name=main&vcs.ref.head.revision=aaa", base)
	assert.Empty(t, p.deltas(t), "the first run has no baseline")
	p.post(t, "run_id=slow&service.name=checkout&vcs.ref.head.name=feature&vcs.ref.head.revision=bbb", slow)

	rows := runBenchstat(t, base, slow)
	deltas := p.deltas(t)
	regressions := map[string]plog.LogRecord{}
	for _, lr := range p.records() {
		a := lr.Attributes()
		regressions[displayName(str(a, benchdata.AttrName), procsOf(a))+" "+str(a, benchdata.AttrUnit)] = lr
	}
	var sawRegression, sawUnchanged, sawFromZero bool
	for _, row := range rows {
		key := row.name + " " + row.unit
		d, ok := deltas["slow "+key]
		require.True(t, ok, "no delta for %s: %v", key, deltas)
		assert.Equal(t, "base", d.baseline)
		wantP := fmt.Sprintf("(p=%0.3f n=10)", d.p)
		if d.p == 0 { // benchstat prints an exact 0 as no p
			wantP = "(n=10)"
		}
		assert.Equal(t, row.p, wantP, key)
		switch row.delta {
		case "~":
			assert.Equal(t, verdictNoChange, d.verdict, key)
			sawUnchanged = true
		case "?": // from a zero baseline: no ratio, no gobench.delta point
			assert.Equal(t, verdictRegression, d.verdict, key)
			assert.Zero(t, d.ratio, key)
			sawFromZero = true
		default:
			assert.Equal(t, row.delta, fmt.Sprintf("%+.2f%%", (d.ratio-1)*100), key)
			if row.delta != "0.00%" { // significant, equal medians
				assert.NotEqual(t, verdictNoChange, d.verdict, key)
			}
		}
		lr, logged := regressions[key]
		wantLog := d.verdict == verdictRegression
		assert.Equal(t, wantLog, logged, "%s: a record exactly for the regressions beyond 5%%", key)
		if logged {
			sawRegression = true
			assert.Equal(t, regressionBody(row), lr.Body().Str(), key)
			assert.Equal(t, plog.SeverityNumberWarn, lr.SeverityNumber())
			assert.Equal(t, "WARN", lr.SeverityText())
			assert.Equal(t, row.delta, str(lr.Attributes(), attrDelta))
			assert.Equal(t, "aaa", str(lr.Attributes(), benchdata.AttrBaselineCommit))
		}
	}
	assert.True(t, sawRegression, "BenchmarkSum at 10x the work is a regression")
	assert.Equal(t, int64(len(rows)), counterSum(t, p.tel, "otelcol_connector_benchstat_comparisons")-int64(len(rows)),
		"each comparison counted once (the first run's %d series counted as no_baseline), not once per side", len(rows))
	assert.True(t, sawUnchanged, "chunks/op is unchanged")
	assert.True(t, sawFromZero, "BenchmarkZeroAllocs went from 0 to 1 allocs/op")
	zero := regressions["BenchmarkZeroAllocs"+procsSuffix(t, base)+" allocs/op"]
	require.NotEqual(t, plog.LogRecord{}, zero, "0 -> 1 allocs/op is logged")
	assert.Equal(t, "?", str(zero.Attributes(), attrDelta))
	_, hasRatio := zero.Attributes().Get(attrRatio)
	assert.False(t, hasRatio, "no ratio from a zero baseline")
	sum := deltas["slow BenchmarkSum"+procsSuffix(t, base)+" sec/op"]
	assert.Equal(t, verdictRegression, sum.verdict)
	assert.Greater(t, sum.ratio, 3.0)
	for _, ld := range p.logs.AllLogs() {
		ra := ld.ResourceLogs().At(0).Resource().Attributes()
		assert.Equal(t, "slow", str(ra, benchdata.AttrRunID))
		assert.Equal(t, "bbb", str(ra, benchdata.AttrRevision))
		assert.Equal(t, "aaa", str(ra, benchdata.AttrBaselineCommit))
		assert.Equal(t, "checkout", str(ra, benchdata.AttrServiceName))
	}
}

// zeroAllocs is go test output of a benchmark with the allocs/op given, 10
// samples, appended to a run's output (its configuration lines apply).
func zeroAllocs(procs string, allocs int) []byte {
	var b bytes.Buffer
	for i := range 10 {
		fmt.Fprintf(&b, "BenchmarkZeroAllocs%s\t1000\t%d.0 ns/op\t%d allocs/op\n", procs, 100+i, allocs)
	}
	return b.Bytes()
}

var (
	plusMinusPadding = regexp.MustCompile(`±\s+`)
	columnPadding    = regexp.MustCompile(`\s{2,}`)
)

// regressionBody is the body of a WARN record as the README defines it,
// from benchstat's line as printed: the name with go test's Benchmark
// prefix, a space, the unit (the header of benchstat's table), two spaces,
// then benchstat's cells with the column padding (and its footnote marks)
// taken out: two spaces between cells, one inside ("± 6%", "~ (p=...)").
func regressionBody(row benchstatRow) string {
	line := strings.NewReplacer("│", " ", "¹", " ", "²", " ", "³", " ").Replace(row.raw)
	line = plusMinusPadding.ReplaceAllString(line, "± ")
	line = columnPadding.ReplaceAllString(strings.TrimSpace(line), "  ")
	name, cells, _ := strings.Cut(line, "  ")
	return "Benchmark" + name + " " + row.unit + "  " + cells
}

func procsSuffix(t *testing.T, out []byte) string {
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "BenchmarkSum") {
			return strings.TrimPrefix(strings.Fields(line)[0], "BenchmarkSum")
		}
	}
	t.Fatal("no BenchmarkSum line")
	return ""
}

// TestBaselineSelection: the last run of the baseline branch of the same
// service, the run named by baseline_run_id, and none for another service.
func TestBaselineSelection(t *testing.T) {
	base, slow := outputs(t)
	p := startPipeline(t, nil, nil)
	p.post(t, "run_id=m1&service.name=checkout&vcs.ref.head.name=main", base)
	p.post(t, "run_id=m2&service.name=checkout&vcs.ref.head.name=main", only(slow, "BenchmarkSum")) // main got slower
	p.post(t, "run_id=f1&service.name=checkout&vcs.ref.head.name=feature", base)
	p.post(t, "run_id=f2&service.name=checkout&vcs.ref.head.name=feature&baseline_run_id=m1", base)
	p.post(t, "run_id=o1&service.name=other&vcs.ref.head.name=feature", base)
	sum := "BenchmarkSum" + procsSuffix(t, base) + " sec/op"
	d := p.deltas(t)
	assert.Equal(t, "m1", d["m2 "+sum].baseline, "a main run against the main run before it")
	assert.Equal(t, verdictRegression, d["m2 "+sum].verdict)
	assert.Equal(t, "m2", d["f1 "+sum].baseline, "a branch run against main's last run")
	assert.Equal(t, verdictImprovement, d["f1 "+sum].verdict)
	assert.Equal(t, "m1", d["f2 "+sum].baseline, "the run named by baseline_run_id")
	assert.Equal(t, verdictNoChange, d["f2 "+sum].verdict, "the same samples")
	assert.Equal(t, 1.0, d["f2 "+sum].ratio)
	for k := range d {
		assert.False(t, strings.HasPrefix(k, "o1 "), "another service has no baseline: %s", k)
	}
	// A run posted in two requests (one per package) is one run: its
	// second part is compared with the same baseline.
	p.post(t, "run_id=m2&service.name=checkout&vcs.ref.head.name=main", only(slow, "BenchmarkCopy"))
	var m2 []delta
	for _, md := range p.metrics.AllMetrics()[len(p.metrics.AllMetrics())-1:] {
		ra := md.ResourceMetrics().At(0).Resource().Attributes()
		m2 = append(m2, delta{run: str(ra, benchdata.AttrRunID), baseline: str(ra, benchdata.AttrBaselineRunID)})
	}
	assert.Equal(t, []delta{{run: "m2", baseline: "m1"}}, m2)
}

// only keeps the configuration lines of go test output and the results of
// the benchmarks whose name starts with prefix: a part of a run.
func only(out []byte, prefix string) []byte {
	var b bytes.Buffer
	for _, line := range strings.SplitAfter(string(out), "\n") {
		if !strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, prefix) {
			b.WriteString(line)
		}
	}
	return b.Bytes()
}

// TestRetryReportsOnce: a request sent again (the receiver answered 503
// because another branch of the pipeline refused it, after the connector
// had it) reports nothing again, also after a restart.
func TestRetryReportsOnce(t *testing.T) {
	base, slow := outputs(t)
	st := &memStorage{data: map[string][]byte{}}
	p := startPipeline(t, nil, st)
	p.post(t, "run_id=m1&service.name=checkout&vcs.ref.head.name=main", base)
	p.post(t, "run_id=f1&service.name=checkout&vcs.ref.head.name=feature", slow)
	points, records := p.metrics.DataPointCount(), p.logs.LogRecordCount()
	compared := counterSum(t, p.tel, "otelcol_connector_benchstat_comparisons")
	require.Positive(t, points)
	require.Positive(t, records, "BenchmarkSum regressed")
	p.post(t, "run_id=f1&service.name=checkout&vcs.ref.head.name=feature", slow)
	assert.Equal(t, points, p.metrics.DataPointCount(), "no delta reported twice")
	assert.Equal(t, records, p.logs.LogRecordCount(), "no regression logged twice")
	assert.Equal(t, compared, counterSum(t, p.tel, "otelcol_connector_benchstat_comparisons"), "no comparison counted twice")

	restarted := startPipeline(t, nil, st)
	restarted.post(t, "run_id=f1&service.name=checkout&vcs.ref.head.name=feature", slow)
	assert.Zero(t, restarted.metrics.DataPointCount(), "what was reported is stored with the run")
	assert.Zero(t, restarted.logs.LogRecordCount())
}

// TestBaselinePinned: a part of a baseline-branch run arriving after a
// newer run of the branch is compared with the baseline its first part had,
// and does not become the branch's newest run again.
func TestBaselinePinned(t *testing.T) {
	base, slow := outputs(t)
	p := startPipeline(t, nil, nil)
	p.post(t, "run_id=m1&service.name=checkout&vcs.ref.head.name=main", base)
	p.post(t, "run_id=m2&service.name=checkout&vcs.ref.head.name=main", only(slow, "BenchmarkSum"))
	p.post(t, "run_id=m3&service.name=checkout&vcs.ref.head.name=main", base)
	p.post(t, "run_id=m2&service.name=checkout&vcs.ref.head.name=main", only(slow, "BenchmarkCopy"))
	last := p.metrics.AllMetrics()[len(p.metrics.AllMetrics())-1].ResourceMetrics().At(0).Resource().Attributes()
	assert.Equal(t, "m2", str(last, benchdata.AttrRunID))
	assert.Equal(t, "m1", str(last, benchdata.AttrBaselineRunID), "m2's second part against m2's baseline, not the newer m3")

	p.post(t, "run_id=f1&service.name=checkout&vcs.ref.head.name=feature", base)
	d := p.deltas(t)["f1 BenchmarkSum"+procsSuffix(t, base)+" sec/op"]
	assert.Equal(t, "m3", d.baseline, "m3 is still main's last run")
}

// TestRunsKeyedByService: two services whose CI numbers its runs alike (run
// 42 of each) keep their own runs and baselines.
func TestRunsKeyedByService(t *testing.T) {
	base, slow := outputs(t)
	st := &memStorage{data: map[string][]byte{}}
	p := startPipeline(t, nil, st)
	p.post(t, "run_id=42&service.name=checkout&vcs.ref.head.name=main&vcs.ref.head.revision=aaa", base)
	p.post(t, "run_id=42&service.name=payments&vcs.ref.head.name=main&vcs.ref.head.revision=bbb", slow)
	p.post(t, "run_id=43&service.name=checkout&vcs.ref.head.name=feature", base)
	sum := "BenchmarkSum" + procsSuffix(t, base) + " sec/op"
	d := p.deltas(t)["43 "+sum]
	assert.Equal(t, "42", d.baseline)
	assert.Equal(t, verdictNoChange, d.verdict, "checkout's run 42, not payments'")
	assert.Equal(t, 1.0, d.ratio)
	for _, md := range p.metrics.AllMetrics() {
		assert.Equal(t, "aaa", str(md.ResourceMetrics().At(0).Resource().Attributes(), benchdata.AttrBaselineCommit))
	}
	assert.ElementsMatch(t, []string{"index", "run/checkout/42", "run/checkout/43", "run/payments/42"}, st.keys())
}

// TestStateKeyedByRunIDAloneIsRewritten: a state written when runs were
// keyed by run id alone is read, and rewritten under the new keys.
func TestStateKeyedByRunIDAloneIsRewritten(t *testing.T) {
	base, slow := outputs(t)
	st := &memStorage{data: map[string][]byte{}}
	first := startPipeline(t, nil, st)
	first.post(t, "run_id=m1&service.name=checkout&vcs.ref.head.name=main", base)
	st.data["run/m1"] = st.data["run/checkout/m1"]
	delete(st.data, "run/checkout/m1")
	st.data[indexKey] = []byte(`{"seq":1,"runs":["m1"],"baselines":{"checkout":["m1"]}}`)

	second := startPipeline(t, nil, st)
	assert.ElementsMatch(t, []string{"index", "run/checkout/m1"}, st.keys(), "rewritten, the old entry deleted")
	second.post(t, "run_id=f1&service.name=checkout&vcs.ref.head.name=feature", slow)
	assert.Equal(t, "m1", second.deltas(t)["f1 BenchmarkSum"+procsSuffix(t, base)+" sec/op"].baseline)
}

// TestRefusedReportedAgain: what a side's next consumer refused is
// emitted again on the retry; what was delivered is not.
func TestRefusedReportedAgain(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	set := connectortest.NewNopSettings(metadata.Type)
	sink := new(consumertest.MetricsSink)
	refuse := true
	next, err := consumer.NewMetrics(func(ctx context.Context, md pmetric.Metrics) error {
		if refuse {
			return errors.New("backpressure: queue full")
		}
		return sink.ConsumeMetrics(ctx, md)
	})
	require.NoError(t, err)
	logs := new(consumertest.LogsSink)
	mside, err := f.CreateMetricsToMetrics(context.Background(), set, cfg, next)
	require.NoError(t, err)
	lside, err := f.CreateMetricsToLogs(context.Background(), set, cfg, logs)
	require.NoError(t, err)
	for _, c := range []component.Component{mside, lside} {
		require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
		t.Cleanup(func() { require.NoError(t, c.Shutdown(context.Background())) })
	}
	run := func(id, branch string, v float64) pmetric.Metrics {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr(benchdata.AttrRunID, id)
		rm.Resource().Attributes().PutStr(benchdata.AttrServiceName, "checkout")
		rm.Resource().Attributes().PutStr(benchdata.AttrBranch, branch)
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("gobench.op.duration")
		m.Metadata().PutStr(benchdata.MetaUnit, "sec/op")
		dp := m.SetEmptySummary().DataPoints().AppendEmpty()
		dp.Attributes().PutStr(benchdata.AttrName, "BenchmarkX")
		vals := make([]float64, 10)
		for i := range vals {
			vals[i] = v + float64(i)*v/100
		}
		benchdata.Fill(dp, vals)
		return md
	}
	ctx := context.Background()
	refuse = false
	require.NoError(t, mside.ConsumeMetrics(ctx, run("m1", "main", 1)))
	require.NoError(t, lside.ConsumeMetrics(ctx, run("m1", "main", 1)))
	refuse = true
	require.Error(t, mside.ConsumeMetrics(ctx, run("f1", "feature", 2)))
	require.NoError(t, lside.ConsumeMetrics(ctx, run("f1", "feature", 2)))
	assert.Zero(t, sink.DataPointCount())
	assert.Equal(t, 1, logs.LogRecordCount())
	refuse = false // the retry
	require.NoError(t, mside.ConsumeMetrics(ctx, run("f1", "feature", 2)))
	require.NoError(t, lside.ConsumeMetrics(ctx, run("f1", "feature", 2)))
	assert.Equal(t, 2, sink.DataPointCount(), "the refused delta and p-value, emitted on the retry")
	assert.Equal(t, 1, logs.LogRecordCount(), "the delivered record, not again")
}

// TestStatePersisted: a restarted connector finds its baselines in
// storage; a failing storage is counted and the state kept in memory.
func TestStatePersisted(t *testing.T) {
	base, slow := outputs(t)
	st := &memStorage{data: map[string][]byte{}}
	first := startPipeline(t, nil, st)
	first.post(t, "run_id=m1&service.name=checkout&vcs.ref.head.name=main&vcs.ref.head.revision=aaa", base)
	require.Contains(t, st.data, "run/checkout/m1")

	second := startPipeline(t, nil, st) // a new process, the same storage
	second.post(t, "run_id=f1&service.name=checkout&vcs.ref.head.name=feature", slow)
	d := second.deltas(t)["f1 BenchmarkSum"+procsSuffix(t, base)+" sec/op"]
	assert.Equal(t, "m1", d.baseline)
	assert.Equal(t, verdictRegression, d.verdict)

	st.fail = true
	second.post(t, "run_id=m2&service.name=checkout&vcs.ref.head.name=main", slow)
	assert.Positive(t, counterSum(t, second.tel, "otelcol_connector_benchstat_storage_errors"))
	second.post(t, "run_id=f2&service.name=checkout&vcs.ref.head.name=feature", slow)
	d = second.deltas(t)["f2 BenchmarkSum"+procsSuffix(t, base)+" sec/op"]
	assert.Equal(t, "m2", d.baseline, "kept in memory")
}

// TestBoundedState: at most max_runs runs are held; the baseline branch's
// last runs are the last to go.
func TestBoundedState(t *testing.T) {
	base, _ := outputs(t)
	p := startPipeline(t, func(c *Config) { c.MaxRuns = 3; c.MaxSeriesPerRun = 2 }, nil)
	p.post(t, "run_id=m1&service.name=checkout&vcs.ref.head.name=main", base)
	for i := range 5 {
		p.post(t, fmt.Sprintf("run_id=f%d&service.name=checkout&vcs.ref.head.name=feature", i), base)
	}
	assert.Equal(t, int64(3), counterSum(t, p.tel, "otelcol_connector_benchstat_runs_evicted"))
	p.post(t, "run_id=f9&service.name=checkout&vcs.ref.head.name=feature", base)
	n := 0
	for k, d := range p.deltas(t) {
		if strings.HasPrefix(k, "f9 ") {
			n++
			assert.Equal(t, "m1", d.baseline, "the baseline survived the evictions")
		}
	}
	assert.Equal(t, 2, n, "only max_series_per_run series of a run are kept")
	assert.Positive(t, counterSum(t, p.tel, "otelcol_connector_benchstat_series_dropped"))
}

// TestEvictedAtStartDeleted: runs evicted at start (max_runs lowered) are
// deleted from storage, not left there unlisted.
func TestEvictedAtStartDeleted(t *testing.T) {
	base, _ := outputs(t)
	st := &memStorage{data: map[string][]byte{}}
	first := startPipeline(t, nil, st)
	first.post(t, "run_id=m1&service.name=checkout&vcs.ref.head.name=main", base)
	for _, id := range []string{"f1", "f2", "f3"} {
		first.post(t, "run_id="+id+"&service.name=checkout&vcs.ref.head.name=feature", base)
	}
	require.Len(t, st.keys(), 5)

	_ = startPipeline(t, func(c *Config) { c.MaxRuns = 2 }, st)
	assert.ElementsMatch(t, []string{"index", "run/checkout/m1", "run/checkout/f3"}, st.keys())
}

// TestRequestRunNotEvicted: a run is not evicted by the request that
// brings it, even when it is the only run that is not a baseline; each
// eviction is counted once.
func TestRequestRunNotEvicted(t *testing.T) {
	base, _ := outputs(t)
	p := startPipeline(t, func(c *Config) { c.MaxRuns = 2 }, nil)
	p.post(t, "run_id=m1&service.name=checkout&vcs.ref.head.name=main", base)
	p.post(t, "run_id=m2&service.name=checkout&vcs.ref.head.name=main", base)
	p.post(t, "run_id=p1&service.name=checkout&vcs.ref.head.name=feature", base)
	assert.Equal(t, int64(1), counterSum(t, p.tel, "otelcol_connector_benchstat_runs_evicted"), "m1, the oldest; not p1, which is arriving")
	p.post(t, "run_id=p2&service.name=checkout&vcs.ref.head.name=feature&baseline_run_id=p1", base)
	d := p.deltas(t)["p2 BenchmarkSum"+procsSuffix(t, base)+" sec/op"]
	assert.Equal(t, "p1", d.baseline, "p1 was still there")
	assert.Equal(t, int64(2), counterSum(t, p.tel, "otelcol_connector_benchstat_runs_evicted"), "then p1, once")
}

func counterSum(t *testing.T, tel *componenttest.Telemetry, name string) int64 {
	t.Helper()
	m, err := tel.GetMetric(name)
	if err != nil {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is a %T", name, m.Data)
	var n int64
	for _, dp := range sum.DataPoints {
		n += dp.Value
	}
	return n
}

var _ connector.Factory = NewFactory()
