package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestValidateShippedConfigs runs `otelcol-fabric validate` on every YAML
// under configs/, and on the embedded default.
func TestValidateShippedConfigs(t *testing.T) {
	bin := fabricBin(t)
	var configs []string
	err := filepath.WalkDir(filepath.Join(repoRoot(t), "configs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) && d.Name() != "kustomization.yaml" {
			configs = append(configs, path)
		}
		return err
	})
	require.NoError(t, err)
	require.NotEmpty(t, configs)
	for _, path := range configs {
		rel, _ := filepath.Rel(repoRoot(t), path)
		t.Run(rel, func(t *testing.T) {
			out, err := runBinEnv(t, shippedConfigEnv(t), "validate", "--config", path)
			assert.NoError(t, err, "%s validate --config %s:\n%s", bin, rel, out)
		})
	}
	t.Run("embedded default", func(t *testing.T) {
		out, err := runBin(t, "validate")
		assert.NoError(t, err, "validate with no --config:\n%s", out)
	})
}

// shippedConfigEnv is what the gateway and agent configs need from the
// environment to validate outside a cluster: the ingest token, the node name
// and a kubeconfig instead of a service account.
func shippedConfigEnv(t *testing.T) []string {
	return []string{
		"FABRIC_INGEST_TOKEN=validate-only",
		"K8S_NODE_NAME=node-1",
		"FABRIC_KUBE_AUTH=kubeConfig",
		"KUBECONFIG=" + filepath.Join(repoRoot(t), "tests", "testdata", "kubeconfig"),
	}
}

// TestGatewayRequiresToken: without FABRIC_INGEST_TOKEN the gateway refuses
// to start, naming the authenticator that has no token.
func TestGatewayRequiresToken(t *testing.T) {
	env := []string{"FABRIC_INGEST_TOKEN="}
	out, err := runBinEnv(t, env, "validate", "--config", "configs/gateway.yaml")
	require.Error(t, err, "the gateway validated without a token:\n%s", out)
	assert.Contains(t, out, "extensions::bearertokenauth/ingest: no bearer token provided")

	col := exec.Command(fabricBin(t), "--config", "configs/gateway.yaml")
	col.Dir = repoRoot(t)
	col.Env = append(os.Environ(), "FABRIC_INGEST_TOKEN=", "FABRIC_HEALTH_ENDPOINT=127.0.0.1:0",
		"FABRIC_OTLP_GRPC_ENDPOINT=127.0.0.1:0", "FABRIC_OTLP_HTTP_ENDPOINT=127.0.0.1:0", "FABRIC_QUEUE_DIR="+t.TempDir())
	done := make(chan struct{})
	var runOut []byte
	var runErr error
	go func() { runOut, runErr = col.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = col.Process.Kill()
		t.Fatal("the gateway without a token did not exit within 60s")
	}
	require.Error(t, runErr, "the gateway started without a token:\n%s", runOut)
	assert.Contains(t, string(runOut), "no bearer token provided")
}

// TestValidateRejectsBrokenConfigs checks that a broken configuration fails
// validate with a message that names what is wrong.
func TestValidateRejectsBrokenConfigs(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string // every one must appear in the output
	}{
		{file: "misspelled_key.yaml", want: []string{`"otlp"`, "protocols.grpc", "invalid keys: endpont"}},
		{file: "unknown_component.yaml", want: []string{"exporters", `unknown type: "fiel"`}},
		{file: "undefined_in_pipeline.yaml", want: []string{"pipelines::traces", `processor "batch" which is not configured`}},
		{file: "bad_value.yaml", want: []string{"exporters::file/traces", "format type is not supported"}},
		{file: "blocking_tail_sampling_without_caches.yaml", want: []string{"processors::tail_sampling: block_on_overflow: true needs decision_cache::sampled_cache_size and decision_cache::non_sampled_cache_size above 0", "waits forever"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out, err := runBin(t, "validate", "--config", filepath.Join("tests", "testdata", "broken", tc.file))
			require.Error(t, err, "validate accepted %s:\n%s", tc.file, out)
			for _, want := range tc.want {
				assert.Contains(t, out, want)
			}
		})
	}
}
