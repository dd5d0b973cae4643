package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// benchPkg is the tiny benchmark package the gobench receiver's tests run.
func benchPkg(t testing.TB) string {
	return filepath.Join(repoRoot(t), "receivers", "gobenchreceiver", "testdata", "benchpkg")
}

// gatewayEnv points every store of configs/gateway.yaml at a stand-in (and
// Prometheus at prom), every listener at a free loopback port.
func gatewayEnv(t *testing.T, prom string, extra ...string) []string {
	env, _ := gatewayEnvLoki(t, prom, extra...)
	return env
}

// gatewayEnvLoki is gatewayEnv, and the Loki stand-in's store.
func gatewayEnvLoki(t *testing.T, prom string, extra ...string) ([]string, *otlpStore) {
	tempoAddr, _ := otlpGRPCStandIn(t)
	vendorURL, _ := otlpHTTPStandIn(t, "/v1/")
	lokiURL, loki := otlpHTTPStandIn(t, "/otlp/v1/")
	esURL, _ := elasticsearchStandIn(t)
	port := func() string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }
	return append([]string{
		"FABRIC_QUEUEWATCH_ENDPOINT=" + port(),
		"FABRIC_INGEST_TOKEN=" + gwToken,
		"FABRIC_QUEUE_DIR=" + t.TempDir(),
		"FABRIC_TEMPO_ENDPOINT=" + tempoAddr,
		"FABRIC_VENDOR_OTLP_ENDPOINT=" + vendorURL,
		"FABRIC_LOKI_OTLP_ENDPOINT=" + lokiURL + "/otlp",
		"FABRIC_ELASTICSEARCH_ENDPOINT=" + esURL,
		"FABRIC_PROMETHEUS_RW_ENDPOINT=" + prom + "/api/v1/write",
		"FABRIC_FLUENTFORWARD_ENDPOINT=" + port(),
		"FABRIC_PPROF_ENDPOINT=" + port(),
		"FABRIC_ZPAGES_ENDPOINT=" + port(),
	}, extra...), loki
}

// TestGobenchThroughGateway runs the README's curl one-liner (with a short
// -benchtime) against the gateway binary: real go test -bench output, the
// gateway's bearer token, and the series in a real Prometheus with the run
// id and commit as labels, under the names the README documents.
func TestGobenchThroughGateway(t *testing.T) {
	prom := prometheusServer(t)
	col := startCollectorEnv(t, gatewayEnv(t, prom), "--config", "configs/gateway.yaml")
	run := fmt.Sprintf("ci-%d", time.Now().UnixNano())
	commit := strings.TrimSpace(mustRun(t, repoRoot(t), "git", "rev-parse", "HEAD"))

	// The README's line; only -benchtime 20ms is added, so that -count 10
	// of four benchmarks takes seconds, not a minute.
	oneLiner := `go test -run '^$' -bench . -benchmem -count 10 -benchtime 20ms ./... | curl -sS --data-binary @- -H "Authorization: Bearer $TOKEN" "http://$GATEWAY/v1/benchmarks?run_id=$CI_RUN&service.name=checkout&vcs.ref.head.revision=$(git rev-parse HEAD)"`
	cmd := exec.Command("sh", "-c", oneLiner)
	cmd.Dir = benchPkg(t)
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "TOKEN="+gwToken, "CI_RUN="+run, "GATEWAY="+col.Gobench)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var resp struct {
		RunID      string `json:"run_id"`
		Status     string `json:"status"`
		Benchmarks int    `json:"benchmarks"`
		DataPoints int    `json:"data_points"`
	}
	require.NoError(t, json.Unmarshal(out, &resp), "%s", out)
	assert.Equal(t, run, resp.RunID)
	assert.Equal(t, "accepted", resp.Status)
	assert.Equal(t, 40, resp.Benchmarks, "4 benchmarks x -count 10")
	assert.Equal(t, 16, resp.DataPoints, "one per benchmark and unit")

	// Without the token: refused.
	req := exec.Command("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "BenchmarkA 1 2 ns/op",
		"http://"+col.Gobench+"/v1/benchmarks?run_id=x")
	code, err := req.Output()
	require.NoError(t, err)
	assert.Equal(t, "401", string(code))

	for name, bench := range map[string]string{
		"gobench_op_duration_seconds":         "BenchmarkSum",
		"gobench_op_memory_allocated_bytes":   "BenchmarkAlloc",
		"gobench_op_allocations":              "BenchmarkAlloc",
		"gobench_throughput_bytes_per_second": "BenchmarkCopy/size=1024",
		"gobench_chunks_per_op":               "BenchmarkCopy/size=1024",
	} {
		var series []map[string]string
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			series = promSeries(c, prom, fmt.Sprintf(`{__name__=%q, benchmark_run_id=%q, benchmark_name=%q}`, name, run, bench))
			assert.NotEmpty(c, series)
		}, 60*time.Second, 500*time.Millisecond, "Prometheus has no %s series of run %s", name, run)
		t.Logf("%s: %d series, e.g. %v", name, len(series), series[0])
		quantiles := map[string]bool{}
		for _, s := range series {
			assert.Equal(t, commit, s["vcs_ref_head_revision"], name)
			assert.Equal(t, "example.com/benchpkg", s["benchmark_package"], name)
			assert.NotEmpty(t, s["benchmark_procs"], name)
			quantiles[s["quantile"]] = true
		}
		assert.True(t, quantiles["0"] && quantiles["0.5"] && quantiles["1"], "%s: min, median and max: %v", name, quantiles)
		assert.Len(t, quantiles, 11, "%s: the 10 samples as rank quantiles and the median", name)
		for _, suffix := range []string{"_count", "_sum"} {
			assert.NotEmpty(t, promSeries(t, prom, fmt.Sprintf(`{__name__=%q, benchmark_run_id=%q}`, name+suffix, run)), name+suffix)
		}
	}
	require.Equal(t, 0, col.terminate())
}

func mustRun(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s %v: %s", name, args, stderr.String())
	return string(out)
}

// TestBenchmarkRegressionThroughGateway: real go test -bench output of a
// benchmark package at a baseline commit on main, then at a commit that
// makes BenchmarkSum slower on purpose, posted to the gateway binary. The
// benchmarks reach Prometheus with their commit and run id, the deltas too;
// the benchstat connector's WARN record for the regression reaches the Loki
// stand-in with the delta, both commits and the run id, although the
// gateway restarted between the two runs; an unchanged
// benchmark is no significant change, and gets no record.
func TestBenchmarkRegressionThroughGateway(t *testing.T) {
	prom := prometheusServer(t)
	env, loki := gatewayEnvLoki(t, prom)
	col := startCollectorEnv(t, env, "--config", "configs/gateway.yaml")

	// A git repository holding the benchmark package: two commits.
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(benchPkg(t), "bench_test.go"))
	require.NoError(t, err)
	mod, err := os.ReadFile(filepath.Join(benchPkg(t), "go.mod"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), mod, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bench_test.go"), src, 0o644))
	git := func(args ...string) string {
		return strings.TrimSpace(mustRun(t, dir, "git", append([]string{"-c", "user.name=ci", "-c", "user.email=ci@example.invalid"}, args...)...))
	}
	git("init", "-q", "-b", "main")
	git("add", ".")
	git("commit", "-q", "-m", "baseline")
	baseCommit := git("rev-parse", "HEAD")
	slower := strings.Replace(string(src), "return 200\n", "return 2000\n", 1)
	require.NotEqual(t, string(src), slower, "the benchmark package's default work moved")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bench_test.go"), []byte(slower), 0o644))
	git("commit", "-q", "-am", "sum: ten times the work")
	slowCommit := git("rev-parse", "HEAD")

	stamp := time.Now().UnixNano()
	baseRun, slowRun := fmt.Sprintf("ci-base-%d", stamp), fmt.Sprintf("ci-slow-%d", stamp)
	upload := func(commit, run, branch string) {
		git("checkout", "-q", commit)
		line := `go test -run '^$' -bench 'Sum|Copy' -benchmem -count 10 -benchtime 20ms ./... | curl -sS --fail-with-body --data-binary @- -H "Authorization: Bearer $TOKEN" "http://$GATEWAY/v1/benchmarks?run_id=$CI_RUN&service.name=checkout&vcs.ref.head.name=$BRANCH&vcs.ref.head.revision=$(git rev-parse HEAD)"`
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off", "TOKEN="+gwToken, "CI_RUN="+run, "BRANCH="+branch, "GATEWAY="+col.Gobench)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		t.Logf("%s: %s", run, out)
	}
	upload(baseCommit, baseRun, "main")
	// The baseline must survive a restart: the benchstat connector reads
	// it back from file_storage.
	require.NoError(t, col.restart(syscall.SIGTERM))
	upload(slowCommit, slowRun, "feature/slower-sum")

	// The regression record in Loki.
	var rec plog.LogRecord
	var res pcommon.Resource
	require.Eventually(t, func() bool {
		_, _, logs, _ := loki.snapshot()
		for _, ld := range logs {
			for _, rl := range ld.ResourceLogs().All() {
				for _, sl := range rl.ScopeLogs().All() {
					for _, lr := range sl.LogRecords().All() {
						if v, ok := rl.Resource().Attributes().Get("benchmark.run.id"); ok && v.Str() == slowRun {
							rec, res = lr, rl.Resource()
							return true
						}
					}
				}
			}
		}
		return false
	}, 60*time.Second, 200*time.Millisecond, "no regression record reached Loki")
	body := rec.Body().Str()
	t.Logf("Loki: %s %s", rec.SeverityText(), body)
	assert.Equal(t, plog.SeverityNumberWarn, rec.SeverityNumber())
	assert.True(t, strings.HasPrefix(body, "BenchmarkSum"), body)
	assert.Contains(t, body, " sec/op  ")
	assert.Regexp(t, `^\+\d+\.\d\d%$`, attrStr(rec.Attributes(), "benchmark.delta"))
	assert.Contains(t, body, attrStr(rec.Attributes(), "benchmark.delta")+" (")
	assert.Equal(t, "regression", attrStr(rec.Attributes(), "benchmark.verdict"))
	assert.Equal(t, "checkout", attrStr(res.Attributes(), "service.name"))
	assert.Equal(t, slowCommit, attrStr(res.Attributes(), "vcs.ref.head.revision"))
	assert.Equal(t, baseRun, attrStr(res.Attributes(), "benchmark.baseline.run.id"))
	assert.Equal(t, baseCommit, attrStr(res.Attributes(), "benchmark.baseline.vcs.ref.head.revision"))
	_, _, logs, _ := loki.snapshot()
	var records []string
	for _, ld := range logs {
		for _, rl := range ld.ResourceLogs().All() {
			if attrStr(rl.Resource().Attributes(), "benchmark.run.id") != slowRun {
				continue
			}
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					records = append(records, lr.Body().Str())
				}
			}
		}
	}
	for _, r := range records {
		assert.NotContains(t, r, "chunks/op", "an unchanged benchmark gets no record")
	}

	// The benchmarks and the deltas in Prometheus.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		s := promSeries(c, prom, fmt.Sprintf(`{__name__="gobench_op_duration_seconds", benchmark_run_id=%q, benchmark_name="BenchmarkSum", quantile="0.5"}`, slowRun))
		if assert.Len(c, s, 1) {
			assert.Equal(c, slowCommit, s[0]["vcs_ref_head_revision"])
			assert.Equal(c, "feature/slower-sum", s[0]["vcs_ref_head_name"])
		}
	}, 60*time.Second, 500*time.Millisecond)
	verdicts := map[string]string{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		series := promSeries(c, prom, fmt.Sprintf(`{__name__="gobench_delta_ratio", benchmark_run_id=%q}`, slowRun))
		for _, s := range series {
			verdicts[s["benchmark_name"]+" "+s["benchmark_unit"]] = s["benchmark_verdict"]
			assert.Equal(c, baseRun, s["benchmark_baseline_run_id"])
		}
		assert.Contains(c, verdicts, "BenchmarkSum sec/op")
		assert.Contains(c, verdicts, "BenchmarkCopy/size=1024 chunks/op")
	}, 60*time.Second, 500*time.Millisecond, "the deltas did not reach Prometheus")
	t.Logf("verdicts: %v", verdicts)
	assert.Equal(t, "regression", verdicts["BenchmarkSum sec/op"])
	assert.Equal(t, "no_change", verdicts["BenchmarkCopy/size=1024 chunks/op"], "unchanged: exactly the same samples")
	assert.Equal(t, "no_change", verdicts["BenchmarkSum allocs/op"], "0 allocs/op before and after")
	ratio := promScalar(prom, fmt.Sprintf(`gobench_delta_ratio{benchmark_run_id=%q, benchmark_name="BenchmarkSum", benchmark_unit="sec/op"}`, slowRun))
	assert.Greater(t, ratio, 3.0, "ten times the work")
	require.Equal(t, 0, col.terminate())
}

func attrStr(m pcommon.Map, k string) string {
	v, ok := m.Get(k)
	if !ok {
		return ""
	}
	return v.AsString()
}
