package deploy

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// version is the release the deployment files must run (the VERSION file).
func version(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "VERSION"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// pinned reports whether an image reference names a fixed tag (or digest),
// not latest and not an implicit latest.
func pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	name := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(name, ":")
	return i > 0 && name[i+1:] != "" && name[i+1:] != "latest"
}

func TestDockerfile(t *testing.T) {
	f, err := os.Open(filepath.Join("docker", "Dockerfile"))
	require.NoError(t, err)
	defer f.Close()
	res, err := parser.Parse(f)
	require.NoError(t, err, "the Dockerfile parses")
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile warning: %s", w.Short)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(stages), 2, "multi-stage: build, then runtime")

	for _, st := range stages {
		if st.BaseName == "scratch" {
			continue
		}
		assert.True(t, pinned(st.BaseName), "stage %q: base image %q is not pinned to a tag", st.Name, st.BaseName)
	}
	final := stages[len(stages)-1]
	assert.Equal(t, "scratch", final.BaseName, "the runtime image is minimal")
	var user string
	var entrypoint []string
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EntrypointCommand:
			entrypoint = c.CmdLine
		}
	}
	require.NotEmpty(t, user, "the runtime stage sets USER")
	uid := strings.SplitN(user, ":", 2)[0]
	assert.NotEqual(t, "0", uid, "the image runs as a non-root user")
	assert.NotEqual(t, "root", uid)
	assert.Equal(t, []string{"/otelcol-fabric"}, entrypoint)

	// The build stage builds with the Makefile (version stamping).
	var runs []string
	for _, cmd := range stages[0].Commands {
		if r, ok := cmd.(*instructions.RunCommand); ok {
			runs = append(runs, strings.Join(r.CmdLine, " "))
		}
	}
	assert.Contains(t, strings.Join(runs, "\n"), "make build")
}

func loadCompose(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join("docker", "compose.yaml")},
		cli.WithEnv(envList), cli.WithName("otelcol-fabric"), cli.WithResolvedPaths(true))
	require.NoError(t, err)
	return opts.LoadProject(context.Background())
}

func TestComposeFile(t *testing.T) {
	project, err := loadCompose(t, map[string]string{"FABRIC_INGEST_TOKEN": "compose-test"})
	require.NoError(t, err, "compose.yaml loads as docker compose would")

	want := []string{"otelcol-fabric", "tempo", "loki", "elasticsearch", "prometheus", "pyroscope", "grafana", "vendor"}
	for _, name := range want {
		_, ok := project.Services[name]
		assert.True(t, ok, "service %s", name)
	}
	for name, svc := range project.Services {
		assert.True(t, pinned(svc.Image), "service %s: image %q is not pinned to a tag", name, svc.Image)
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeBind {
				_, err := os.Stat(v.Source)
				assert.NoError(t, err, "service %s mounts %s", name, v.Source)
			}
		}
	}
	col := project.Services["otelcol-fabric"]
	assert.Equal(t, "ghcr.io/otelcol-fabric/otelcol-fabric:"+version(t), col.Image)
	require.NotNil(t, col.Build)
	_, err = os.Stat(filepath.Join(col.Build.Context, col.Build.Dockerfile))
	assert.NoError(t, err, "the build context holds the Dockerfile")
	assert.Equal(t, "compose-test", *col.Environment["FABRIC_INGEST_TOKEN"], "the token comes from the environment")
	assert.Equal(t, "tempo:4317", *col.Environment["FABRIC_TEMPO_ENDPOINT"])
	prom := project.Services["prometheus"]
	assert.Contains(t, prom.Command, "--web.enable-remote-write-receiver")

	// Without the token the stack refuses to start, saying what to set.
	_, err = loadCompose(t, map[string]string{"FABRIC_INGEST_TOKEN": ""})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "set FABRIC_INGEST_TOKEN")
}

// TestLokiIndexLabels: in the stack's Loki, service and environment are
// index labels (selectable in a stream selector), version, commit and the
// trace context stay structured metadata (a stream per value otherwise), and
// Loki's own defaults, which index per-pod keys, are off.
func TestLokiIndexLabels(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("docker", "loki.yaml"))
	require.NoError(t, err)
	var cfg struct {
		AuthEnabled  bool `json:"auth_enabled"`
		LimitsConfig struct {
			AllowStructuredMetadata bool `json:"allow_structured_metadata"`
			OTLPConfig              struct {
				ResourceAttributes struct {
					IgnoreDefaults   bool `json:"ignore_defaults"`
					AttributesConfig []struct {
						Action     string   `json:"action"`
						Attributes []string `json:"attributes"`
					} `json:"attributes_config"`
				} `json:"resource_attributes"`
			} `json:"otlp_config"`
		} `json:"limits_config"`
	}
	require.NoError(t, yaml.Unmarshal(b, &cfg))
	assert.True(t, cfg.AuthEnabled, "the gateway writes with X-Scope-OrgID")
	assert.True(t, cfg.LimitsConfig.AllowStructuredMetadata)
	ra := cfg.LimitsConfig.OTLPConfig.ResourceAttributes
	assert.True(t, ra.IgnoreDefaults)
	index := map[string]bool{}
	for _, ac := range ra.AttributesConfig {
		require.Contains(t, []string{"index_label", "structured_metadata", "drop"}, ac.Action)
		for _, a := range ac.Attributes {
			index[a] = ac.Action == "index_label"
		}
	}
	for _, key := range []string{"service.name", "deployment.environment.name"} {
		assert.True(t, index[key], "%s is an index label", key)
	}
	for _, key := range []string{"service.version", "vcs.ref.head.revision", "build.timestamp", "k8s.pod.name", "service.instance.id"} {
		assert.False(t, index[key], "%s stays structured metadata", key)
	}
	compose, err := os.ReadFile(filepath.Join("docker", "compose.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(compose), "./loki.yaml:/etc/loki/loki.yaml:ro")
}

func TestGrafanaDatasources(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("docker", "grafana", "provisioning", "datasources", "datasources.yaml"))
	require.NoError(t, err)
	var prov struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name      string         `json:"name"`
			UID       string         `json:"uid"`
			Type      string         `json:"type"`
			Access    string         `json:"access"`
			URL       string         `json:"url"`
			IsDefault bool           `json:"isDefault"`
			JSONData  map[string]any `json:"jsonData"`
			// Secure settings (a tenant header value here, never a secret
			// committed to the repository).
			SecureJSONData map[string]string `json:"secureJsonData"`
		} `json:"datasources"`
	}
	require.NoError(t, yaml.UnmarshalStrict(b, &prov, yaml.DisallowUnknownFields))
	byUID := map[string]int{}
	for i, ds := range prov.Datasources {
		byUID[ds.UID] = i
	}
	for _, uid := range []string{"prometheus", "tempo", "loki", "pyroscope", "elasticsearch-logs"} {
		assert.Contains(t, byUID, uid)
	}
	tempo := prov.Datasources[byUID["tempo"]].JSONData
	assert.Equal(t, "loki", tempo["tracesToLogsV2"].(map[string]any)["datasourceUid"], "traces to logs")
	assert.Equal(t, "pyroscope", tempo["tracesToProfiles"].(map[string]any)["datasourceUid"], "traces to profiles")
	// Every data source URL points at a compose service.
	project, err := loadCompose(t, map[string]string{"FABRIC_INGEST_TOKEN": "x"})
	require.NoError(t, err)
	for _, ds := range prov.Datasources {
		host := strings.SplitN(strings.TrimPrefix(ds.URL, "http://"), ":", 2)[0]
		_, ok := project.Services[host]
		assert.True(t, ok, "data source %s points at %s, which is not a compose service", ds.Name, ds.URL)
	}
}

func TestHelmValues(t *testing.T) {
	for _, tc := range []struct{ file, mode, config string }{
		{"values-gateway.yaml", "deployment", "gateway.yaml"},
		{"values-agent.yaml", "daemonset", "agent.yaml"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("helm", tc.file))
			require.NoError(t, err)
			var v struct {
				Mode  string `json:"mode"`
				Image struct {
					Repository string `json:"repository"`
					Tag        string `json:"tag"`
				} `json:"image"`
				Command struct {
					Name      string   `json:"name"`
					ExtraArgs []string `json:"extraArgs"`
				} `json:"command"`
				ConfigMap struct {
					Create bool `json:"create"`
				} `json:"configMap"`
				ExtraEnvs []map[string]any `json:"extraEnvs"`
			}
			require.NoError(t, yaml.Unmarshal(b, &v))
			assert.Equal(t, tc.mode, v.Mode)
			assert.Equal(t, "ghcr.io/otelcol-fabric/otelcol-fabric", v.Image.Repository)
			assert.Equal(t, version(t), v.Image.Tag)
			assert.Equal(t, "otelcol-fabric", v.Command.Name, "the binary name in the image")
			assert.Equal(t, []string{"--config=/etc/otelcol-fabric/" + tc.config}, v.Command.ExtraArgs)
			_, err = os.Stat(filepath.Join("..", "configs", tc.config))
			assert.NoError(t, err)
			assert.False(t, v.ConfigMap.Create, "the chart's own config is off: configs/ is the one copy")
			token := false
			for _, e := range v.ExtraEnvs {
				if e["name"] == "FABRIC_INGEST_TOKEN" {
					_, fromSecret := e["valueFrom"]
					token = fromSecret
					assert.NotContains(t, e, "value", "the token is never written in the values")
				}
			}
			assert.True(t, token, "FABRIC_INGEST_TOKEN comes from a Secret")
		})
	}
}

// No file under deploy/ or configs/ carries a literal secret for the tokens
// and keys the configs read from the environment.
func TestNoSecretsInFiles(t *testing.T) {
	for _, dir := range []string{".", filepath.Join("..", "configs")} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if !strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml") && !strings.HasSuffix(path, "Dockerfile") {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, line := range bytes.Split(b, []byte("\n")) {
				l := strings.TrimSpace(string(line))
				if strings.HasPrefix(l, "#") {
					continue
				}
				for _, key := range []string{"token:", "api-key:", "password:"} {
					if i := strings.Index(l, key); i >= 0 {
						value := strings.TrimSpace(l[i+len(key):])
						ok := value == "" || strings.HasPrefix(value, "${") || strings.HasPrefix(value, "\"${")
						assert.True(t, ok, "%s: %q is not taken from the environment", path, l)
					}
				}
			}
			return nil
		})
		require.NoError(t, err)
	}
}
