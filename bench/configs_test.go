package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"go.yaml.in/yaml/v3"
)

type yamlMap = map[string]any

func loadYAML(t *testing.T, path string) yamlMap {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m yamlMap
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func at(m yamlMap, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(yamlMap)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func sameAs(t *testing.T, what string, got, want any) {
	t.Helper()
	if want == nil {
		t.Errorf("%s: missing in the shipped config", what)
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s differs from the shipped config:\n got: %v\nwant: %v", what, got, want)
	}
}

// TestHarnessConfigsAreTheShippedOnes fails when a harness config stops
// running what configs/gateway.yaml runs: every processor of the gateway's
// traces pipelines, its extensions and its Tempo exporter, verbatim, with
// only the differences the configs' headers declare.
func TestHarnessConfigsAreTheShippedOnes(t *testing.T) {
	gw := loadYAML(t, filepath.Join("..", "configs", "gateway.yaml"))
	gwTraces := at(gw, "service", "pipelines", "traces", "processors").([]any)
	for _, name := range []string{"gateway-shipped", "gateway-keepall"} {
		t.Run(name, func(t *testing.T) {
			c := loadYAML(t, filepath.Join("configs", name+".yaml"))
			sameAs(t, "traces pipeline processors", at(c, "service", "pipelines", "traces", "processors"), gwTraces)
			sameAs(t, "traces/profilelink pipeline", at(c, "service", "pipelines", "traces/profilelink"), at(gw, "service", "pipelines", "traces/profilelink"))
			sameAs(t, "service extensions", at(c, "service", "extensions"), at(gw, "service", "extensions"))
			for _, p := range gwTraces {
				p := p.(string)
				want := at(gw, "processors", p)
				got := at(c, "processors", p)
				if p == "tail_sampling" && name == "gateway-keepall" {
					w := copyMap(want.(yamlMap))
					w["policies"] = []any{yamlMap{"name": "keep-all", "type": "always_sample"}}
					want = w
				}
				sameAs(t, "processor "+p, got, want)
			}
			for _, e := range at(gw, "service", "extensions").([]any) {
				e := e.(string)
				want := at(gw, "extensions", e)
				if e == "queuewatch" {
					w := copyMap(want.(yamlMap))
					w["exporters"] = []any{"otlp_grpc/tempo"} // the one store of the harness
					want = w
				}
				sameAs(t, "extension "+e, at(c, "extensions", e), want)
			}
			tempo := copyMap(at(gw, "exporters", "otlp_grpc/tempo").(yamlMap))
			tempo["endpoint"] = "${env:BENCH_SINK_ENDPOINT}"
			sameAs(t, "exporter otlp_grpc/tempo", at(c, "exporters", "otlp_grpc/tempo"), tempo)
			sameAs(t, "exporter profilelink", at(c, "exporters", "profilelink"), at(gw, "exporters", "profilelink"))
			gwGRPC := at(gw, "receivers", "otlp", "protocols", "grpc")
			sameAs(t, "otlp grpc receiver", at(c, "receivers", "otlp", "protocols", "grpc"), gwGRPC)
		})
	}
	t.Run("upstream-keepall", func(t *testing.T) {
		c := loadYAML(t, filepath.Join("configs", "upstream-keepall.yaml"))
		keep := loadYAML(t, filepath.Join("configs", "gateway-keepall.yaml"))
		for _, p := range []string{"memory_limiter", "transform/profile_id", "batch/after_sampling"} {
			sameAs(t, "processor "+p, at(c, "processors", p), at(gw, "processors", p))
		}
		sameAs(t, "processor tail_sampling", at(c, "processors", "tail_sampling"), at(keep, "processors", "tail_sampling"))
		sameAs(t, "exporter otlp_grpc/tempo", at(c, "exporters", "otlp_grpc/tempo"), at(keep, "exporters", "otlp_grpc/tempo"))
		for _, e := range []string{"health_check", "pprof", "zpages", "file_storage/queue", "bearertokenauth/ingest"} {
			sameAs(t, "extension "+e, at(c, "extensions", e), at(gw, "extensions", e))
		}
		procs := at(c, "service", "pipelines", "traces", "processors")
		want := []any{"memory_limiter", "transform/versionstamp", "transform/tagguard", "transform/profile_id", "tail_sampling", "batch/after_sampling"}
		sameAs(t, "traces pipeline processors", procs, want)
	})
	t.Run("gateway-keepall-nobatch", func(t *testing.T) {
		c := loadYAML(t, filepath.Join("configs", "gateway-keepall-nobatch.yaml"))
		keep := loadYAML(t, filepath.Join("configs", "gateway-keepall.yaml"))
		procs := at(c, "processors").(yamlMap)
		want := copyMap(at(keep, "processors").(yamlMap))
		delete(want, "batch/after_sampling")
		sameAs(t, "processors", procs, want)
		pl := copyMap(at(keep, "service", "pipelines", "traces").(yamlMap))
		var without []any
		for _, p := range pl["processors"].([]any) {
			if p != "batch/after_sampling" {
				without = append(without, p)
			}
		}
		pl["processors"] = without
		sameAs(t, "traces pipeline", at(c, "service", "pipelines", "traces"), pl)
		for _, k := range []string{"extensions", "receivers", "exporters"} {
			sameAs(t, k, at(c, k), at(keep, k))
		}
		sameAs(t, "traces/profilelink", at(c, "service", "pipelines", "traces/profilelink"), at(keep, "service", "pipelines", "traces/profilelink"))
	})
	t.Run("agent-overlay", func(t *testing.T) {
		c := loadYAML(t, filepath.Join("configs", "agent-overlay.yaml"))
		if len(c) != 1 || len(at(c, "exporters").(yamlMap)) != 1 || len(at(c, "exporters", "loadbalancing").(yamlMap)) != 1 {
			t.Errorf("the agent overlay must change the loadbalancing exporter's resolver only: %v", c)
		}
	})
}

func copyMap(m yamlMap) yamlMap {
	out := yamlMap{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestAblationConfigsAreGatewayKeepall: each step of the ablation runs
// gateway-keepall's own components, verbatim (the Tempo exporter without
// its storage where the step says so), in the pipeline the step declares.
func TestAblationConfigsAreGatewayKeepall(t *testing.T) {
	keep := loadYAML(t, filepath.Join("configs", "gateway-keepall.yaml"))
	ours := []any{"versionstamp", "tagguard", "transform/profile_id", "backpressure"}
	cat := func(parts ...[]any) []any {
		var out []any
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	base := []any{"health_check", "pprof", "bearertokenauth/ingest", "protoguard"}
	steps := []struct {
		name       string
		processors []any
		persistent bool
		extensions []any
	}{
		{"ablate-1-receive", []any{"memory_limiter", "batch/after_sampling"}, false, base},
		{"ablate-2-processors", cat([]any{"memory_limiter"}, ours, []any{"batch/after_sampling"}), false,
			[]any{"health_check", "pprof", "bearertokenauth/ingest", "queuewatch", "protoguard"}},
		{"ablate-3-persistent", cat([]any{"memory_limiter"}, ours, []any{"batch/after_sampling"}), true,
			[]any{"health_check", "pprof", "file_storage/queue", "bearertokenauth/ingest", "queuewatch", "protoguard"}},
		// The rest of gateway-keepall's extensions come with this step
		// (its title names them).
		{"ablate-4-tailsampling", at(keep, "service", "pipelines", "traces", "processors").([]any), true, at(keep, "service", "extensions").([]any)},
	}
	names := map[string]bool{}
	for _, c := range ablationConfigs() {
		names[c.Name] = true
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if !names[st.name] {
				t.Fatalf("%s is not one of the harness's ablation configs", st.name)
			}
			c := loadYAML(t, filepath.Join("configs", st.name+".yaml"))
			pipes := at(c, "service", "pipelines").(yamlMap)
			if len(pipes) != 1 {
				t.Errorf("one pipeline (traces), got %v", pipes)
			}
			sameAs(t, "traces pipeline processors", at(c, "service", "pipelines", "traces", "processors"), st.processors)
			sameAs(t, "service extensions", at(c, "service", "extensions"), st.extensions)
			if got := len(at(c, "extensions").(yamlMap)); got != len(st.extensions) {
				t.Errorf("%d extensions defined, %d in service::extensions", got, len(st.extensions))
			}
			for k := range c {
				if k != "extensions" && k != "receivers" && k != "processors" && k != "exporters" && k != "service" {
					t.Errorf("top-level key %q: the steps have no other", k)
				}
			}
			sameAs(t, "traces pipeline receivers", at(c, "service", "pipelines", "traces", "receivers"), at(keep, "service", "pipelines", "traces", "receivers"))
			sameAs(t, "traces pipeline exporters", at(c, "service", "pipelines", "traces", "exporters"), at(keep, "service", "pipelines", "traces", "exporters"))
			if got := len(at(c, "processors").(yamlMap)); got != len(st.processors) {
				t.Errorf("%d processors defined, %d in the pipeline", got, len(st.processors))
			}
			for _, p := range st.processors {
				sameAs(t, "processor "+p.(string), at(c, "processors", p.(string)), at(keep, "processors", p.(string)))
			}
			for _, e := range at(c, "service", "extensions").([]any) {
				sameAs(t, "extension "+e.(string), at(c, "extensions", e.(string)), at(keep, "extensions", e.(string)))
			}
			sameAs(t, "receivers", at(c, "receivers"), at(keep, "receivers"))
			sameAs(t, "telemetry", at(c, "service", "telemetry"), at(keep, "service", "telemetry"))
			tempo := copyMap(at(keep, "exporters", "otlp_grpc/tempo").(yamlMap))
			if !st.persistent {
				q := copyMap(tempo["sending_queue"].(yamlMap))
				delete(q, "storage")
				tempo["sending_queue"] = q
			}
			sameAs(t, "exporter otlp_grpc/tempo", at(c, "exporters", "otlp_grpc/tempo"), tempo)
			if len(at(c, "exporters").(yamlMap)) != 1 {
				t.Errorf("one exporter, got %v", at(c, "exporters"))
			}
		})
	}
}

func TestAgentCompression(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "configs", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := agentCompression(b); got != "gzip" {
		t.Errorf("configs/agent.yaml's loadbalancing compression read as %q, want gzip", got)
	}
	for _, c := range []struct{ yaml, want string }{
		{"exporters:\n  loadbalancing:\n    protocol:\n      otlp:\n        compression: zstd\n", "zstd"},
		{"exporters:\n  loadbalancing:\n    protocol:\n      otlp:\n        timeout: 10s\n  otlp_grpc/other:\n    compression: snappy\n", "gzip"},
		{"exporters:\n  otlp_grpc:\n    compression: none\n", "?"},
		{"not: [yaml", "?"},
	} {
		if got := agentCompression([]byte(c.yaml)); got != c.want {
			t.Errorf("agentCompression(%q) = %q, want %q", c.yaml, got, c.want)
		}
	}
}

// TestCompressionLibrariesMatchTheDistribution: the sender compresses and
// the sink decompresses with the versions the collector is built with, so
// the compression experiment's bytes are the agent's.
func TestCompressionLibrariesMatchTheDistribution(t *testing.T) {
	version := func(gomod, module string) string {
		b, err := os.ReadFile(gomod)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + `\s+(\S+)`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s does not require %s", gomod, module)
		}
		return string(m[1])
	}
	for _, mod := range []string{"github.com/klauspost/compress", "github.com/golang/snappy", "github.com/mostynb/go-grpc-compression", "google.golang.org/grpc"} {
		if got, want := version("go.mod", mod), version(filepath.Join("..", "go.mod"), mod); got != want {
			t.Errorf("%s: the harness has %s, the distribution %s", mod, got, want)
		}
	}
}
