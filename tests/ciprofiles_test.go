package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-fabric/otelcol-fabric/internal/pyroscopetest"
)

// TestCIProfilesThroughGateway: a CI job's go test -cpuprofile and
// -memprofile output, uploaded with the one-line curl of the gobench
// receiver's README to the gateway's pyroscope receiver, reaches Pyroscope
// (the stand-in built on its Push API handler and validation rules) through
// profilelink with the run id and the commit as series labels.
func TestCIProfilesThroughGateway(t *testing.T) {
	stand := pyroscopetest.New()
	pyroscopeURL := "http://" + serveHTTP(t, stand.Handler())
	prom := prometheusServer(t)
	col := startCollectorEnv(t, gatewayEnv(t, prom, "FABRIC_PYROSCOPE_URL="+pyroscopeURL), "--config", "configs/gateway.yaml")

	// A copy of the benchmark package: go test writes the profiles and the
	// test binary next to it.
	dir := t.TempDir()
	for _, f := range []string{"go.mod", "bench_test.go"} {
		b, err := os.ReadFile(filepath.Join(benchPkg(t), f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	run := fmt.Sprintf("ci-%d", time.Now().UnixNano())
	commit := strings.TrimSpace(mustRun(t, repoRoot(t), "git", "rev-parse", "HEAD"))
	env := append(os.Environ(), "GOFLAGS=", "GOWORK=off", "TOKEN="+gwToken, "CI_RUN="+run, "COMMIT="+commit, "GATEWAY="+col.Pyroscope)
	sh := func(line string) string {
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir = dir
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s\n%s", line, out)
		return string(out)
	}
	sh(`go test -run '^$' -bench Sum -benchtime 1s -cpuprofile cpu.pprof -memprofile mem.pprof`)

	// The README's lines (COMMIT stands for $(git rev-parse HEAD): the
	// copy is not a git checkout).
	for _, p := range []string{"cpu", "mem"} {
		out := sh(`curl -sS -o /dev/null -w '%{http_code}' --data-binary @` + p + `.pprof -H "Authorization: Bearer $TOKEN" --url-query "name=checkout{benchmark.run.id=$CI_RUN,commit=$COMMIT}" "http://$GATEWAY/ingest"`)
		require.Equal(t, "200", out, "%s.pprof upload", p)
	}

	var cpu, mem *pyroscopetest.Profile
	require.Eventually(t, func() bool {
		for _, p := range stand.Profiles() {
			if p.Labels["benchmark_run_id"] != run {
				continue
			}
			switch p.Labels["__name__"] {
			case "process_cpu":
				cpu = p
			case "memory":
				mem = p
			}
		}
		return cpu != nil && mem != nil
	}, 60*time.Second, 200*time.Millisecond, "the CI profiles did not reach Pyroscope: %v", stand.Rejected())
	assert.Empty(t, stand.Rejected())
	for _, p := range []*pyroscopetest.Profile{cpu, mem} {
		assert.Equal(t, "checkout", p.Labels["service_name"])
		assert.Equal(t, commit, p.Labels["vcs_ref_head_revision"], "the commit label, normalised by versionstamp")
	}
	// The CPU profile is the benchmark's: its hot function is there.
	var funcs []string
	for _, f := range cpu.Profile.Function {
		funcs = append(funcs, cpu.Profile.StringTable[f.Name])
	}
	assert.Contains(t, strings.Join(funcs, " "), "benchpkg.sum", "the profiled benchmark's function")
	assert.NotEmpty(t, cpu.Profile.Sample)
	require.Equal(t, 0, col.terminate())
}
