package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/grafana/pyroscope-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

const (
	smokeSpans   = 3000
	smokeSeries  = 40
	smokeLogs    = 3000
	smokeService = "fabric-smoke"
)

// TestSmokeLocal starts the distribution with configs/local.yaml (from the file,
// and as the embedded default), sends spans, metrics and logs with the
// OpenTelemetry Go SDK's OTLP exporters, stops it with SIGTERM as soon as the
// SDK has had every export accepted, and then checks the data directory:
// exit code 0, and every item there with its resource and item attributes.
func TestSmokeLocal(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		protocol string
	}{
		{name: "config file, OTLP/gRPC", args: []string{"--config", "configs/local.yaml"}, protocol: "grpc"},
		{name: "embedded default, OTLP/HTTP", args: nil, protocol: "http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			col := startCollector(t, tc.args...)
			run := fmt.Sprintf("%s-%d", tc.protocol, time.Now().UnixNano())
			res := resource.NewSchemaless(
				attribute.String("service.name", smokeService),
				attribute.String("deployment.environment.name", "test"),
				attribute.String("smoke.run", run),
			)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var errMu sync.Mutex
			var exportErrs []error
			otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
				errMu.Lock()
				defer errMu.Unlock()
				exportErrs = append(exportErrs, err)
			}))

			sendSpans(ctx, t, tc.protocol, col, res)
			sendMetrics(ctx, t, tc.protocol, col, res)
			sendLogs(ctx, t, tc.protocol, col, res)
			errMu.Lock()
			require.Empty(t, exportErrs, "the SDK reported export errors")
			errMu.Unlock()

			// Everything was accepted: stop now, with data still in the batch
			// processor and the file exporters' buffers.
			require.Equal(t, 0, col.terminate(), "exit code after SIGTERM")

			assertEveryIndexOnce(t, "traces.jsonl spans", smokeSpans, readTraces(t, filepath.Join(col.DataDir, "traces.jsonl"), run))
			assertEveryIndexOnce(t, "metrics.jsonl series", smokeSeries, readMetrics(t, filepath.Join(col.DataDir, "metrics.jsonl"), run))
			assertEveryIndexOnce(t, "logs.jsonl records", smokeLogs, readLogs(t, filepath.Join(col.DataDir, "logs.jsonl"), run))

			// The debug exporter reported each signal at basic verbosity.
			out := col.output.String()
			for _, want := range []string{`"otelcol.signal": "traces"`, `"otelcol.signal": "metrics"`, `"otelcol.signal": "logs"`} {
				assert.Contains(t, out, want, "debug exporter output")
			}
		})
	}
}

func sendSpans(ctx context.Context, t *testing.T, protocol string, col *collector, res *resource.Resource) {
	var exp sdktrace.SpanExporter
	var err error
	if protocol == "grpc" {
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(col.GRPC), otlptracegrpc.WithInsecure())
	} else {
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(col.HTTP), otlptracehttp.WithInsecure())
	}
	require.NoError(t, err)
	// The queue holds every span, so that the SDK itself never drops one.
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithMaxQueueSize(smokeSpans), sdktrace.WithMaxExportBatchSize(256)),
		sdktrace.WithResource(res))
	tracer := tp.Tracer("smoke")
	for i := range smokeSpans {
		_, span := tracer.Start(ctx, "GET /checkout")
		span.SetAttributes(attribute.Int("smoke.index", i), attribute.String("http.route", "/checkout"))
		span.End()
	}
	require.NoError(t, tp.ForceFlush(ctx), "exporting spans")
	require.NoError(t, tp.Shutdown(ctx))
}

func sendMetrics(ctx context.Context, t *testing.T, protocol string, col *collector, res *resource.Resource) {
	var exp sdkmetric.Exporter
	var err error
	if protocol == "grpc" {
		exp, err = otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(col.GRPC), otlpmetricgrpc.WithInsecure())
	} else {
		exp, err = otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(col.HTTP), otlpmetrichttp.WithInsecure())
	}
	require.NoError(t, err)
	// The periodic reader never fires on its own here.
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithResource(res))
	counter, err := mp.Meter("smoke").Int64Counter("smoke.requests")
	require.NoError(t, err)
	for i := range smokeSeries {
		counter.Add(ctx, int64(i+1), metric.WithAttributes(attribute.Int("smoke.index", i), attribute.String("http.route", "/checkout")))
	}
	// Shutdown collects and exports once (a ForceFlush before it would export
	// the cumulative series a second time).
	require.NoError(t, mp.Shutdown(ctx), "exporting metrics")
}

func sendLogs(ctx context.Context, t *testing.T, protocol string, col *collector, res *resource.Resource) {
	var exp sdklog.Exporter
	var err error
	if protocol == "grpc" {
		exp, err = otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(col.GRPC), otlploggrpc.WithInsecure())
	} else {
		exp, err = otlploghttp.New(ctx, otlploghttp.WithEndpoint(col.HTTP), otlploghttp.WithInsecure())
	}
	require.NoError(t, err)
	lp := sdklog.NewLoggerProvider(
		sdklog.WithProcessor(sdklog.NewBatchProcessor(exp, sdklog.WithMaxQueueSize(smokeLogs), sdklog.WithExportMaxBatchSize(256))),
		sdklog.WithResource(res))
	logger := lp.Logger("smoke")
	for i := range smokeLogs {
		var r otellog.Record
		r.SetTimestamp(time.Now())
		r.SetSeverity(otellog.SeverityInfo)
		r.SetBody(otellog.StringValue("checkout done"))
		r.AddAttributes(otellog.Int("smoke.index", i), otellog.String("http.route", "/checkout"))
		logger.Emit(ctx, r)
	}
	require.NoError(t, lp.ForceFlush(ctx), "exporting logs")
	require.NoError(t, lp.Shutdown(ctx))
}

// readJSONLines calls fn with each line of an OTLP/JSON lines file.
func readJSONLines(t testingT, path string, fn func(line []byte)) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if line = bytes.TrimSpace(line); len(line) > 0 {
			fn(line)
		}
		if errors.Is(err, io.EOF) {
			return
		}
		require.NoError(t, err)
	}
}

// checkResource asserts the resource attributes the SDK sent arrived intact and
// reports whether the resource belongs to this run.
func checkResource(t *testing.T, res pcommon.Resource, run string) bool {
	attrs := res.Attributes()
	if v, ok := attrs.Get("smoke.run"); !ok || v.Str() != run {
		return false
	}
	assert.Equal(t, smokeService, mustStr(attrs, "service.name"))
	assert.Equal(t, "test", mustStr(attrs, "deployment.environment.name"))
	return true
}

// checkItem asserts an item's attributes arrived intact and returns its index.
func checkItem(t *testing.T, attrs pcommon.Map) int {
	assert.Equal(t, "/checkout", mustStr(attrs, "http.route"))
	v, ok := attrs.Get("smoke.index")
	require.True(t, ok, "smoke.index missing")
	return int(v.Int())
}

func readTraces(t *testing.T, path, run string) []int {
	var got []int
	var u ptrace.JSONUnmarshaler
	readJSONLines(t, path, func(line []byte) {
		td, err := u.UnmarshalTraces(line)
		require.NoError(t, err)
		for _, rs := range td.ResourceSpans().All() {
			if !checkResource(t, rs.Resource(), run) {
				continue
			}
			for _, ss := range rs.ScopeSpans().All() {
				for _, span := range ss.Spans().All() {
					assert.Equal(t, "GET /checkout", span.Name())
					got = append(got, checkItem(t, span.Attributes()))
				}
			}
		}
	})
	return got
}

func readMetrics(t *testing.T, path, run string) []int {
	var got []int
	var u pmetric.JSONUnmarshaler
	readJSONLines(t, path, func(line []byte) {
		md, err := u.UnmarshalMetrics(line)
		require.NoError(t, err)
		for _, rm := range md.ResourceMetrics().All() {
			if !checkResource(t, rm.Resource(), run) {
				continue
			}
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					require.Equal(t, "smoke.requests", m.Name())
					require.Equal(t, pmetric.MetricTypeSum, m.Type())
					for _, dp := range m.Sum().DataPoints().All() {
						i := checkItem(t, dp.Attributes())
						assert.Equal(t, int64(i+1), dp.IntValue(), "value of series %d", i)
						got = append(got, i)
					}
				}
			}
		}
	})
	return got
}

func readLogs(t *testing.T, path, run string) []int {
	var got []int
	var u plog.JSONUnmarshaler
	readJSONLines(t, path, func(line []byte) {
		ld, err := u.UnmarshalLogs(line)
		require.NoError(t, err)
		for _, rl := range ld.ResourceLogs().All() {
			if !checkResource(t, rl.Resource(), run) {
				continue
			}
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					assert.Equal(t, "checkout done", lr.Body().Str())
					assert.Equal(t, plog.SeverityNumberInfo, lr.SeverityNumber())
					got = append(got, checkItem(t, lr.Attributes()))
				}
			}
		}
	})
	return got
}

func mustStr(m pcommon.Map, key string) string {
	v, ok := m.Get(key)
	if !ok {
		return "<missing " + key + ">"
	}
	return v.Str()
}

// assertEveryIndexOnce checks that got holds each of 0..n-1 exactly once,
// reporting what is missing or doubled rather than the whole list.
func assertEveryIndexOnce(t *testing.T, what string, n int, got []int) {
	t.Helper()
	count := make([]int, n)
	var missing, doubled, unknown []int
	for _, i := range got {
		if i < 0 || i >= n {
			unknown = append(unknown, i)
			continue
		}
		count[i]++
	}
	for i, c := range count {
		switch {
		case c == 0:
			missing = append(missing, i)
		case c > 1:
			doubled = append(doubled, i)
		}
	}
	assert.Empty(t, missing, "%s: %d of %d missing (first: %v)", what, len(missing), n, head(missing))
	assert.Empty(t, doubled, "%s: %d doubled (first: %v)", what, len(doubled), head(doubled))
	assert.Empty(t, unknown, "%s: indexes out of range", what)
}

func head(s []int) []int {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

// TestLocalProfiles: the embedded default takes what pyroscope-go pushes on
// its loopback port and writes it to data/profiles.jsonl as OTLP profiles,
// with the SDK's tags normalised by versionstamp, so the profile path can be
// tried with no store.
func TestLocalProfiles(t *testing.T) {
	col := startCollector(t)
	prof, err := pyroscope.Start(pyroscope.Config{
		ApplicationName: "checkout",
		ServerAddress:   "http://" + col.Pyroscope,
		Tags:            map[string]string{"version": "v2.0.1", "env": "dev"},
		UploadRate:      time.Second,
		ProfileTypes:    []pyroscope.ProfileType{pyroscope.ProfileCPU},
	})
	require.NoError(t, err)
	spinSink += spin(1500 * time.Millisecond)
	require.NoError(t, prof.Stop())
	path := filepath.Join(col.DataDir, "profiles.jsonl")
	var u pprofile.JSONUnmarshaler
	var samples int
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, err := os.Stat(path)
		require.NoError(c, err)
		samples = 0
		readJSONLines(c, path, func(line []byte) {
			pd, err := u.UnmarshalProfiles(line)
			require.NoError(c, err)
			for _, rp := range pd.ResourceProfiles().All() {
				attrs := rp.Resource().Attributes()
				assert.Equal(c, "checkout", mustStr(attrs, "service.name"))
				assert.Equal(c, "v2.0.1", mustStr(attrs, "service.version"))
				assert.Equal(c, "dev", mustStr(attrs, "deployment.environment.name"))
			}
			samples += pd.SampleCount()
		})
		assert.Positive(c, samples)
	}, 20*time.Second, 200*time.Millisecond, "no profile in %s", path)
	require.Equal(t, 0, col.terminate())
	t.Logf("%d samples in %s", samples, path)
}
