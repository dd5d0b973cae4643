package tests

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// stampCase is one resource as a service sends it and the three facts the
// versionstamp processor of the default config must give it.
type stampCase struct {
	name  string
	attrs map[string]any
	want  map[string]string // key -> value; "" means the key must be absent
}

const (
	keyVersion   = "service.version"
	keyCommit    = "vcs.ref.head.revision"
	keyBuildTime = "build.timestamp"
)

func stampCases(catalogVersion string) []stampCase {
	return []stampCase{
		{
			name:  "catalog",
			attrs: map[string]any{"service.name": "checkout", "deployment.environment.name": "production"},
			want:  map[string]string{keyVersion: catalogVersion, keyCommit: "3f2c9a1b7d", keyBuildTime: "2026-11-20T10:00:00Z"},
		},
		{
			name:  "catalog per environment",
			attrs: map[string]any{"service.name": "checkout", "deployment.environment.name": "staging"},
			want:  map[string]string{keyVersion: "1.5.0-rc.1", keyCommit: "9a8b7c6d5e4f", keyBuildTime: "2025-11-22T14:00:00Z"},
		},
		{
			name: "legacy aliases",
			attrs: map[string]any{
				"service.name": "legacy", "app.version": "v3.1.0", "git.commit.sha": "ABCDEF1234", "build.time": int64(1763632800),
			},
			want: map[string]string{
				keyVersion: "v3.1.0", keyCommit: "abcdef1234", keyBuildTime: "2025-11-20T10:00:00Z",
				"app.version": "", "git.commit.sha": "", "build.time": "",
			},
		},
		{
			name:  "image tag",
			attrs: map[string]any{"service.name": "imaged", "container.image.tag": "v2.3.4"},
			want:  map[string]string{keyVersion: "v2.3.4", keyCommit: "unknown", keyBuildTime: "unknown"},
		},
		{
			name:  "invalid value kept raw",
			attrs: map[string]any{"service.name": "sloppy", keyVersion: "latest"},
			want:  map[string]string{keyVersion: "unknown", keyVersion + ".raw": "latest"},
		},
		{
			name: "already complete",
			attrs: map[string]any{
				"service.name": "checkout", keyVersion: "9.9.9", keyCommit: "0123456789abcdef", keyBuildTime: "2026-01-02T03:04:05Z",
			},
			want: map[string]string{keyVersion: "9.9.9", keyCommit: "0123456789abcdef", keyBuildTime: "2026-01-02T03:04:05Z"},
		},
		{
			name:  "nothing known",
			attrs: map[string]any{"service.name": "mystery"},
			want:  map[string]string{keyVersion: "unknown", keyCommit: "unknown", keyBuildTime: "unknown"},
		},
	}
}

func writeCatalog(t *testing.T, path, checkoutVersion string) {
	t.Helper()
	content := fmt.Sprintf(`services:
  - service: checkout
    version: %s
    commit: 3f2c9a1b7d
    build_time: 2026-11-20T10:00:00Z
  - service: checkout
    environment: staging
    version: 1.5.0-rc.1
    commit: 9A8B7C6D5E4F
    build_time: "1763820000"
`, checkoutVersion)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}

// TestVersionstampThroughBinary runs the embedded default config, whose
// pipelines include versionstamp, with a version catalog; sends spans, metrics
// and logs of resources that carry no version, legacy keys, an image tag or an
// invalid value over OTLP/HTTP; and reads the stamped resources back from the
// file exporters' output. It then changes the catalog, corrupts it and checks
// through the collector's own metrics and output that the change was picked up
// without a restart and the corrupt file was refused while the last good
// catalog stayed in use.
func TestVersionstampThroughBinary(t *testing.T) {
	catalogPath := filepath.Join(t.TempDir(), "versions.yaml")
	writeCatalog(t, catalogPath, "1.4.2")
	t.Setenv("FABRIC_VERSION_CATALOG", catalogPath)
	col := startCollector(t)

	send := func(round string) {
		cases := stampCases("")
		postOTLP(t, col, "/v1/traces", stampTraces(cases, round))
		postOTLP(t, col, "/v1/metrics", stampMetrics(cases, round))
		postOTLP(t, col, "/v1/logs", stampLogs(cases, round))
	}
	send("first")
	waitForStamped(t, col, "first", stampCases("1.4.2"))
	// One processor instance serves the three pipelines: the catalog was
	// loaded once, not once per signal.
	assert.Regexp(t, `(?m)^otelcol_processor_versionstamp_catalog_loads_total\{[^}]*outcome="success"[^}]*\} 1$`, scrape(t, col))

	// A new release: the deploy pipeline rewrites the catalog.
	writeCatalog(t, catalogPath, "1.4.3")
	waitForMetric(t, col, `otelcol_processor_versionstamp_catalog_loads_total{`, `outcome="success"`, 2)
	send("second")
	waitForStamped(t, col, "second", stampCases("1.4.3"))

	// A broken write: the last good catalog stays in use.
	require.NoError(t, os.WriteFile(catalogPath, []byte("services:\n  - service: checkout\n    version: latest\n"), 0o600))
	waitForMetric(t, col, `otelcol_processor_versionstamp_catalog_loads_total{`, `outcome="failure"`, 1)
	send("third")
	waitForStamped(t, col, "third", stampCases("1.4.3"))
	assert.Contains(t, col.output.String(), `line 2: services[0] (checkout): version \"latest\"`,
		"the reload failure is logged with the line")

	// Telemetry: values by source, through the collector's own metrics.
	body := scrape(t, col)
	assert.Regexp(t, `otelcol_processor_versionstamp_values_total\{[^}]*field="version"[^}]*source="catalog"[^}]*\} [1-9]`, body)
	assert.Regexp(t, `otelcol_processor_versionstamp_values_missing_total\{[^}]*field="commit"[^}]*\} [1-9]`, body)
	assert.Regexp(t, `otelcol_processor_versionstamp_values_invalid_total\{[^}]*field="version"[^}]*source="existing"[^}]*\} [1-9]`, body)
	assert.Equal(t, 0, col.terminate())
}

func stampResource(res pcommon.Resource, c stampCase, round string) {
	attrs := res.Attributes()
	for k, v := range c.attrs {
		switch v := v.(type) {
		case string:
			attrs.PutStr(k, v)
		case int64:
			attrs.PutInt(k, v)
		}
	}
	attrs.PutStr("test.case", c.name)
	attrs.PutStr("test.round", round)
}

func stampTraces(cases []stampCase, round string) []byte {
	td := ptrace.NewTraces()
	for _, c := range cases {
		rs := td.ResourceSpans().AppendEmpty()
		stampResource(rs.Resource(), c, round)
		span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		span.SetName("GET /")
		span.SetTraceID(pcommon.TraceID{1, 2, 3})
		span.SetSpanID(pcommon.SpanID{4, 5, 6})
	}
	b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	return b
}

func stampMetrics(cases []stampCase, round string) []byte {
	md := pmetric.NewMetrics()
	for _, c := range cases {
		rm := md.ResourceMetrics().AppendEmpty()
		stampResource(rm.Resource(), c, round)
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("requests")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetIntValue(1)
		dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	}
	b, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	return b
}

func stampLogs(cases []stampCase, round string) []byte {
	ld := plog.NewLogs()
	for _, c := range cases {
		rl := ld.ResourceLogs().AppendEmpty()
		stampResource(rl.Resource(), c, round)
		rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("hello")
	}
	b, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	return b
}

func postOTLP(t *testing.T, col *collector, path string, body []byte) {
	t.Helper()
	resp, err := http.Post("http://"+col.HTTP+path, "application/x-protobuf", bytes.NewReader(body))
	require.NoError(t, err)
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "POST %s: %s", path, msg)
}

// waitForStamped waits until every case of the round has arrived in each
// signal's output file, then checks its resource attributes.
func waitForStamped(t *testing.T, col *collector, round string, cases []stampCase) {
	t.Helper()
	signals := []string{"traces", "metrics", "logs"}
	var got map[string]map[string]pcommon.Map
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got = map[string]map[string]pcommon.Map{}
		for _, sig := range signals {
			got[sig] = readStampedResources(c, filepath.Join(col.DataDir, sig+".jsonl"), sig, round)
			require.GreaterOrEqual(c, len(got[sig]), len(cases), "%s: cases of round %s", sig, round)
		}
	}, 30*time.Second, 200*time.Millisecond, "round %s did not reach every output file", round)

	for _, sig := range signals {
		for _, c := range cases {
			attrs := got[sig][c.name]
			for key, want := range c.want {
				v, ok := attrs.Get(key)
				if want == "" {
					if ok {
						t.Errorf("%s/%s/%s: %s should be absent, is %q", round, sig, c.name, key, v.AsString())
					}
					continue
				}
				if assert.True(t, ok, "%s/%s/%s: %s missing", round, sig, c.name, key) {
					assert.Equal(t, want, v.Str(), "%s/%s/%s: %s", round, sig, c.name, key)
				}
			}
		}
	}
}

// readStampedResources returns the resources of one round in a signal's file,
// by test case.
func readStampedResources(t testingT, path, signal, round string) map[string]pcommon.Map {
	out := map[string]pcommon.Map{}
	if _, err := os.Stat(path); err != nil {
		return out
	}
	add := func(res pcommon.Resource) {
		attrs := res.Attributes()
		if r, ok := attrs.Get("test.round"); ok && r.Str() == round {
			c, _ := attrs.Get("test.case")
			out[c.Str()] = attrs
		}
	}
	readJSONLines(t, path, func(line []byte) {
		switch signal {
		case "traces":
			td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(line)
			require.NoError(t, err)
			for _, rs := range td.ResourceSpans().All() {
				add(rs.Resource())
			}
		case "metrics":
			md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(line)
			require.NoError(t, err)
			for _, rm := range md.ResourceMetrics().All() {
				add(rm.Resource())
			}
		case "logs":
			ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(line)
			require.NoError(t, err)
			for _, rl := range ld.ResourceLogs().All() {
				add(rl.Resource())
			}
		}
	})
	return out
}

func scrape(t testingT, col *collector) string {
	t.Helper()
	resp, err := http.Get("http://" + col.Metrics + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

// waitForMetric waits until a line of the collector's own metrics that starts
// with prefix and contains label has a value of at least min.
func waitForMetric(t *testing.T, col *collector, prefix, label string, min float64) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(prefix) + `[^}]*` + regexp.QuoteMeta(label) + `[^}]*\} (\S+)$`)
	var last string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		last = scrape(c, col)
		m := re.FindStringSubmatch(last)
		require.NotNil(c, m, "no %s...%s line", prefix, label)
		v, err := strconv.ParseFloat(m[1], 64)
		require.NoError(c, err)
		assert.GreaterOrEqual(c, v, min)
	}, 40*time.Second, 250*time.Millisecond, "no %s...%s >= %v in the collector's metrics", prefix, label, min)
}
