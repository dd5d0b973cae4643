package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// benchPkg is the tiny benchmark package the gobench receiver's tests run.
func benchPkg(t testing.TB) string {
	return filepath.Join(repoRoot(t), "receivers", "gobenchreceiver", "testdata", "benchpkg")
}

// gatewayEnv points every store of configs/gateway.yaml at a stand-in (and
// Prometheus at prom), every listener at a free loopback port.
func gatewayEnv(t *testing.T, prom string, extra ...string) []string {
	tempoAddr, _ := otlpGRPCStandIn(t)
	vendorURL, _ := otlpHTTPStandIn(t, "/v1/")
	lokiURL, _ := otlpHTTPStandIn(t, "/otlp/v1/")
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
	}, extra...)
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
