package tests

import (
	"context"
	"fmt"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/grafana/pyroscope-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/otelcol-fabric/otelcol-fabric/internal/pyroscopetest"
)

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
// OTLP. The stand-in Pyroscope behind the profilelink exporter (the Push
// API's generated handler, Pyroscope's validation rules) must accept every
// profile, with the local root span as span_id, Pyroscope's series labels
// (__name__, service_name) and the version and commit labels versionstamp
// normalised from the SDK's tags, and no per-request series label.
// Pyroscope is down for part of the run: nothing is lost or sent twice.
func TestProfilesLinkedToTraces(t *testing.T) {
	stand := pyroscopetest.New()
	pyroscopeURL := "http://" + serveHTTP(t, stand.Handler())

	pyroscopeAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	col := startCollectorEnv(t, []string{
		"FABRIC_PYROSCOPE_ENDPOINT=" + pyroscopeAddr,
		"FABRIC_PYROSCOPE_URL=" + pyroscopeURL,
	}, "--config", "tests/testdata/profiles.yaml")

	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(col.HTTP), otlptracehttp.WithInsecure())
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "checkout"))))
	defer func() { _ = tp.Shutdown(ctx) }()

	stand.Down.Store(true) // the profile store is out when profiling starts
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
	received := func(t testingT) float64 {
		return metricSum(scrape(t, col), "otelcol_receiver_pyroscope_requests_total", `outcome="accepted"`)
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) { assert.Positive(c, received(c)) }, 20*time.Second, 100*time.Millisecond)
	// The pushes fail against the outage and are retried from the queue.
	require.Eventually(t, func() bool { return stand.Refused() >= 3 }, 10*time.Second, 50*time.Millisecond,
		"the exporter retries against the outage")
	stand.Down.Store(false)

	rootID := root.SpanContext().SpanID().String()
	require.Eventually(t, func() bool {
		for _, p := range stand.Profiles() {
			if p.SpanSamples[rootID] > 0 {
				return true
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "no profile sample linked to the trace reached Pyroscope")
	uploads := int(received(t))
	// Every sample of every accepted upload reaches Pyroscope (a sample type
	// no sample had a value for is not sent: an upload at Stop may have none).
	accepted := int(metricSum(scrape(t, col), "otelcol_receiver_pyroscope_samples_total", ""))
	var delivered int
	require.Eventually(t, func() bool {
		delivered = 0
		for _, p := range stand.Profiles() {
			delivered += len(p.Profile.Sample)
		}
		return delivered == accepted
	}, 20*time.Second, 100*time.Millisecond, "not every accepted sample reached Pyroscope after the outage")
	t.Logf("%d samples accepted, %d delivered", accepted, delivered)

	all := stand.Profiles()
	assert.Empty(t, stand.Rejected(), "the real handler's rules")
	seen := map[string]int{}
	var rootSamples int
	for _, p := range all {
		assert.Equal(t, "team-a", p.Tenant)
		assert.Equal(t, "process_cpu", p.Labels["__name__"])
		assert.Equal(t, "checkout", p.Labels["service_name"])
		assert.Equal(t, "v1.2.3", p.Labels["service_version"], "version tag normalised by versionstamp")
		assert.Equal(t, "abcdef0123", p.Labels["vcs_ref_head_revision"], "commit tag normalised (lower case)")
		assert.NotContains(t, p.Labels, "root_span_id")
		assert.Len(t, p.Series, 1, "span ids create no series: %v", p.Series)
		seen[fmt.Sprintf("%d %v", p.Profile.TimeNanos, p.SampleTypes())]++
		for span, n := range p.SpanSamples {
			assert.Equal(t, rootID, span, "every sample that named a span carries its local root, as Grafana queries it")
			rootSamples += n
		}
	}
	for key, n := range seen {
		assert.Equal(t, 1, n, "profile %s delivered %d times", key, n)
	}
	metrics := scrape(t, col)
	assert.Zero(t, metricSum(metrics, "otelcol_exporter_profilelink_profiles_dropped_total", ""))
	assert.Zero(t, metricSum(metrics, "otelcol_exporter_profilelink_samples_unlinked_total", ""))
	t.Logf("%d uploads, %d profiles, %d samples linked to root span %s", uploads, len(all), rootSamples, rootID)
	require.Equal(t, 0, col.terminate())
}
