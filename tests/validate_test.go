package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestValidateShippedConfigs runs `otelcol-fabric validate` on every YAML
// under configs/, and on the embedded default.
func TestValidateShippedConfigs(t *testing.T) {
	bin := fabricBin(t)
	var configs []string
	err := filepath.WalkDir(filepath.Join(repoRoot(t), "configs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			configs = append(configs, path)
		}
		return err
	})
	require.NoError(t, err)
	require.NotEmpty(t, configs)
	for _, path := range configs {
		rel, _ := filepath.Rel(repoRoot(t), path)
		t.Run(rel, func(t *testing.T) {
			out, err := runBin(t, "validate", "--config", path)
			assert.NoError(t, err, "%s validate --config %s:\n%s", bin, rel, out)
		})
	}
	t.Run("embedded default", func(t *testing.T) {
		out, err := runBin(t, "validate")
		assert.NoError(t, err, "validate with no --config:\n%s", out)
	})
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
