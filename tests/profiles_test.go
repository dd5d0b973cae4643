package tests

import (
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/grafana/pyroscope-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// pyroscopeServer is a stand-in Pyroscope: it decodes /ingest requests as
// Pyroscope does (multipart, "profile" part, gzipped pprof) and keeps them.
type pyroscopeServer struct {
	mu       sync.Mutex
	received []pyroscopeIngest
	down     atomic.Bool
}

type pyroscopeIngest struct {
	name   string
	tenant string
	prof   *profile.Profile
}

func (s *pyroscopeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.down.Load() {
		http.Error(w, "pyroscope is down", http.StatusServiceUnavailable)
		return
	}
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.URL.Path != "/ingest" || err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	part, err := multipart.NewReader(r.Body, params["boundary"]).NextPart()
	if err != nil || part.FormName() != "profile" {
		http.Error(w, "no profile part", http.StatusBadRequest)
		return
	}
	data, _ := io.ReadAll(part)
	prof, err := profile.ParseData(data)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.received = append(s.received, pyroscopeIngest{r.URL.Query().Get("name"), r.Header.Get("X-Scope-OrgID"), prof})
	s.mu.Unlock()
}

func (s *pyroscopeServer) all() []pyroscopeIngest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pyroscopeIngest(nil), s.received...)
}

var spinSink int

//go:noinline
func spin(d time.Duration) int {
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := range 50000 {
			n += i % 3
		}
	}
	return n
}

// TestProfilesLinkedToTraces: the Pyroscope Go SDK profiles code running
// inside a child span (its CPU samples carry the span's id as pprof labels,
// as span-profiling integrations set them) and pushes to the collector's
// pyroscope receiver; the OpenTelemetry Go SDK sends the trace's spans over
// OTLP. The stand-in Pyroscope behind the profilelink exporter must receive
// samples labelled with the local root span (span_id, span_name,
// root_span_id) and the version and commit labels versionstamp normalised
// from the SDK's tags. Pyroscope is down for part of the run: nothing is
// lost or sent twice.
func TestProfilesLinkedToTraces(t *testing.T) {
	stand := &pyroscopeServer{}
	l := listen(t)
	srv := &http.Server{Handler: stand, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	pyroscopeAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	col := startCollectorEnv(t, []string{
		"FABRIC_PYROSCOPE_ENDPOINT=" + pyroscopeAddr,
		"FABRIC_PYROSCOPE_URL=http://" + l.Addr().String(),
	}, "--config", "tests/testdata/profiles.yaml")

	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(col.HTTP), otlptracehttp.WithInsecure())
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "checkout"))))
	defer func() { _ = tp.Shutdown(ctx) }()

	stand.down.Store(true) // the profile store is out when profiling starts
	prof, err := pyroscope.Start(pyroscope.Config{
		ApplicationName: "checkout",
		ServerAddress:   "http://" + pyroscopeAddr,
		Tags:            map[string]string{"version": "v1.2.3", "commit": "ABCDEF0123"},
		UploadRate:      time.Second,
		ProfileTypes:    []pyroscope.ProfileType{pyroscope.ProfileCPU},
	})
	require.NoError(t, err)

	tracer := tp.Tracer("checkout")
	rootCtx, root := tracer.Start(ctx, "GET /checkout")
	childCtx, child := tracer.Start(rootCtx, "price cart")
	sc := child.SpanContext()
	pprof.Do(childCtx, pprof.Labels("span_id", sc.SpanID().String(), "trace_id", sc.TraceID().String()), func(context.Context) {
		spinSink += spin(3 * time.Second)
	})
	child.End()
	root.End()
	require.NoError(t, tp.ForceFlush(ctx))
	require.NoError(t, prof.Stop())
	// The profiles are linked now that the spans arrived, and spooled while
	// the store is down; it comes back after a while.
	require.Eventually(t, func() bool {
		return metricSum(scrape(t, col), "otelcol_exporter_profilelink_profiles_spooled_total", "") > 0
	}, 20*time.Second, 100*time.Millisecond, "nothing was spooled while Pyroscope was down")
	time.Sleep(time.Second)
	assert.Empty(t, stand.all())
	stand.down.Store(false)

	rootID := root.SpanContext().SpanID().String()
	var linked int
	require.Eventually(t, func() bool {
		linked = 0
		for _, in := range stand.all() {
			for _, s := range in.prof.Sample {
				if len(s.Label["root_span_id"]) > 0 {
					linked++
				}
			}
		}
		return linked > 0
	}, 30*time.Second, 100*time.Millisecond, "no profile sample linked to the trace reached Pyroscope")
	// Let everything spooled during the outage drain.
	require.Eventually(t, func() bool {
		m := scrape(t, col)
		return metricSum(m, "otelcol_exporter_profilelink_profiles_replayed_total", "") ==
			metricSum(m, "otelcol_exporter_profilelink_profiles_spooled_total", "")
	}, 20*time.Second, 100*time.Millisecond, "the spool did not drain")

	all := stand.all()
	seen := map[string]int{}
	var samplesWithSpan, rootLabelled int
	for _, in := range all {
		assert.Equal(t, "team-a", in.tenant)
		assert.True(t, strings.HasPrefix(in.name, "checkout{"), in.name)
		assert.Contains(t, in.name, "service_version=v1.2.3", "version tag normalised by versionstamp")
		assert.Contains(t, in.name, "vcs_ref_head_revision=abcdef0123", "commit tag normalised (lower case)")
		seen[fmt.Sprintf("%d %s", in.prof.TimeNanos, in.prof.SampleType[0].Type)]++
		for _, s := range in.prof.Sample {
			if len(s.Label["span_id"]) == 0 {
				continue
			}
			samplesWithSpan++
			if s.Label["root_span_id"] != nil {
				rootLabelled++
				assert.Equal(t, []string{rootID}, s.Label["root_span_id"])
				assert.Equal(t, []string{rootID}, s.Label["span_id"], "span_id is the local root's, as Grafana queries it")
				assert.Equal(t, []string{"GET /checkout"}, s.Label["span_name"])
			}
		}
	}
	assert.Equal(t, samplesWithSpan, rootLabelled, "every sample that named a span was linked to its root")
	for key, n := range seen {
		assert.Equal(t, 1, n, "profile %s delivered %d times", key, n)
	}
	metrics := scrape(t, col)
	assert.Positive(t, metricSum(metrics, "otelcol_exporter_profilelink_profiles_spooled_total", ""), "profiles were spooled during the outage")
	assert.Equal(t, metricSum(metrics, "otelcol_exporter_profilelink_profiles_spooled_total", ""),
		metricSum(metrics, "otelcol_exporter_profilelink_profiles_replayed_total", ""), "every spooled profile was replayed")
	assert.Zero(t, metricSum(metrics, "otelcol_exporter_profilelink_profiles_dropped_total", ""))
	t.Logf("%d profiles, %d samples linked to root span %s", len(all), rootLabelled, rootID)
	require.Equal(t, 0, col.terminate())
}
