package tests

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// builderConfig is the part of builder-config.yaml this test reads.
type builderConfig struct {
	Receivers  []builderModule `yaml:"receivers"`
	Processors []builderModule `yaml:"processors"`
	Exporters  []builderModule `yaml:"exporters"`
	Extensions []builderModule `yaml:"extensions"`
	Connectors []builderModule `yaml:"connectors"`
	Providers  []builderModule `yaml:"providers"`
}

type builderModule struct {
	GoMod string `yaml:"gomod"`
}

// componentsOutput is what `otelcol-fabric components` prints.
type componentsOutput struct {
	Receivers  []listedComponent `yaml:"receivers"`
	Processors []listedComponent `yaml:"processors"`
	Exporters  []listedComponent `yaml:"exporters"`
	Extensions []listedComponent `yaml:"extensions"`
	Connectors []listedComponent `yaml:"connectors"`
	Providers  []listedComponent `yaml:"providers"`
}

type listedComponent struct {
	Name   string `yaml:"name"`
	Scheme string `yaml:"scheme"`
	Module string `yaml:"module"`
}

// TestComponentsMatchBuilderConfig checks that the binary carries exactly the
// modules builder-config.yaml lists, kind by kind, and the component names the
// shipped configurations use.
func TestComponentsMatchBuilderConfig(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "builder-config.yaml"))
	require.NoError(t, err)
	var want builderConfig
	require.NoError(t, yaml.Unmarshal(raw, &want))

	out, err := runBin(t, "components")
	require.NoError(t, err, out)
	var got componentsOutput
	require.NoError(t, yaml.Unmarshal([]byte(out), &got), out)

	for _, kind := range []struct {
		name string
		want []builderModule
		got  []listedComponent
	}{
		{"receivers", want.Receivers, got.Receivers},
		{"processors", want.Processors, got.Processors},
		{"exporters", want.Exporters, got.Exporters},
		{"extensions", want.Extensions, got.Extensions},
		{"connectors", want.Connectors, got.Connectors},
		{"providers", want.Providers, got.Providers},
	} {
		t.Run(kind.name, func(t *testing.T) {
			require.NotEmpty(t, kind.want, "builder-config.yaml lists no %s", kind.name)
			var wantMods, gotMods []string
			for _, m := range kind.want {
				wantMods = append(wantMods, m.GoMod)
			}
			for _, c := range kind.got {
				gotMods = append(gotMods, c.Module)
			}
			assert.Equal(t, sortedSet(wantMods), sortedSet(gotMods))
		})
	}

	// The component names that configs and docs rely on.
	names := map[string][]listedComponent{
		"receivers": got.Receivers, "processors": got.Processors, "exporters": got.Exporters,
		"extensions": got.Extensions, "connectors": got.Connectors,
	}
	for kind, want := range map[string][]string{
		"receivers":  {"otlp", "prometheus", "fluentforward", "filelog", "hostmetrics", "kubeletstats", "pyroscope", "gobench"},
		"processors": {"memory_limiter", "batch", "tail_sampling", "k8sattributes", "resourcedetection", "transform", "attributes", "filter", "probabilistic_sampler", "versionstamp", "tagguard", "backpressure"},
		"exporters":  {"otlp_grpc", "otlp_http", "debug", "elasticsearch", "loadbalancing", "file", "prometheusremotewrite", "prometheus", "profilelink"},
		"extensions": {"health_check", "pprof", "zpages", "file_storage", "bearertokenauth", "basicauth", "queuewatch", "protoguard", "adaptive_sampling"},
		"connectors": {"forward", "spanmetrics", "routing", "benchstat"},
	} {
		var have []string
		for _, c := range names[kind] {
			have = append(have, c.Name)
		}
		for _, name := range want {
			assert.Contains(t, have, name, "%s", kind)
		}
	}
}

func sortedSet(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}
