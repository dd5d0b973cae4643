package tests

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stamps are what the binary under test should report: the VERSION file and,
// in a git checkout, the commit `make build` stamped (the checked-out HEAD).
func expectedStamps(t *testing.T) (version, commit string) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "VERSION"))
	require.NoError(t, err)
	version = strings.TrimSpace(string(raw))
	cmd := exec.Command("git", "rev-parse", "HEAD")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	return version, commit
}

func TestVersionFlag(t *testing.T) {
	out, err := runBin(t, "--version")
	require.NoError(t, err, out)
	version, commit := expectedStamps(t)

	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, out)
	assert.Equal(t, "otelcol-fabric version "+version, lines[0])
	if commit != "" {
		assert.Equal(t, "commit:     "+commit, lines[1])
	} else {
		assert.Regexp(t, `^commit:     [0-9a-f]{40}$`, lines[1])
	}
	require.True(t, strings.HasPrefix(lines[2], "build time: "), out)
	built, err := time.Parse(time.RFC3339, strings.TrimPrefix(lines[2], "build time: "))
	require.NoError(t, err, "build time is not RFC 3339")
	assert.False(t, built.After(time.Now().Add(time.Minute)), "build time %s is in the future", built)
	assert.Equal(t, "collector:  v0.145.0", lines[3])
}

// TestOwnTelemetryCarriesBuildStamps scrapes the collector's own Prometheus
// endpoint: its resource (target_info) carries the version, the commit and the
// build time.
func TestOwnTelemetryCarriesBuildStamps(t *testing.T) {
	col := startCollector(t)
	version, commit := expectedStamps(t)

	resp, err := http.Get("http://" + col.Metrics + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)

	targetInfo := regexp.MustCompile(`(?m)^target_info\{.*\}`).FindString(string(body))
	require.NotEmpty(t, targetInfo, "no target_info in the collector's own metrics:\n%s", body)
	assert.Contains(t, targetInfo, `service_name="otelcol-fabric"`)
	assert.Contains(t, targetInfo, `service_version="`+version+`"`)
	if commit != "" {
		assert.Contains(t, targetInfo, `vcs_ref_head_revision="`+commit+`"`)
	}
	assert.Regexp(t, `build_timestamp="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"`, targetInfo)
	assert.Equal(t, 0, col.terminate())
}
