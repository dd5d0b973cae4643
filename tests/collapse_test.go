package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// TestTagguardCollapsedSeriesInPrometheus runs the shipped gateway
// (configs/gateway.yaml: tagguard denies user.* on data points) into Debian's
// Prometheus by remote write. 5,000 cumulative counters, one per user.id,
// all on one route, arrive in 5 requests with the same timestamp, twice
// (the second round with every value grown). Dropping user.id makes them one
// series: Prometheus must hold exactly one series, and PromQL must return
// exactly the total sent after each round, with no remote-write rejection in
// the collector's or Prometheus' log.
func TestTagguardCollapsedSeriesInPrometheus(t *testing.T) {
	promProc := newPrometheusProcess(t)
	prom := promProc.url()
	col := startGateway(t, prom)
	run := fmt.Sprintf("collapse-%d", time.Now().UnixNano())

	const (
		users    = 5000
		requests = 5
	)
	start := time.Now().Add(-time.Minute)
	var total int64
	for round := int64(1); round <= 2; round++ {
		ts := time.Now()
		total = 0
		for r := range requests {
			md := pmetric.NewMetrics()
			rm := md.ResourceMetrics().AppendEmpty()
			res := rm.Resource().Attributes()
			res.PutStr("service.name", "checkout")
			res.PutStr("service.instance.id", run)
			res.PutStr("deployment.environment.name", "prod")
			m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName("collapse.requests")
			sum := m.SetEmptySum()
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			sum.SetIsMonotonic(true)
			for u := r * users / requests; u < (r+1)*users/requests; u++ {
				dp := sum.DataPoints().AppendEmpty()
				dp.Attributes().PutStr("user.id", fmt.Sprintf("u-%05d", u))
				dp.Attributes().PutStr("http.route", "/cart")
				dp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
				dp.SetTimestamp(pcommon.NewTimestampFromTime(ts))
				v := int64(u%7+1) * round
				dp.SetIntValue(v)
				total += v
			}
			body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
			require.NoError(t, err)
			status, msg := postAuth(t, col, "/v1/metrics", body, gwToken)
			require.Equal(t, http.StatusOK, status, msg)
		}
		q := fmt.Sprintf(`sum(last_over_time({__name__=~"collapse_requests.*", instance=%q}[10m]))`, run)
		var got float64
		assert.Eventually(t, func() bool {
			got = promScalar(prom, q)
			return got == float64(total)
		}, 60*time.Second, 500*time.Millisecond, "round %d: PromQL %s never returned the %d sent (last answer below)", round, q, total)
		t.Logf("round %d: sent a total of %d over %d user series; Prometheus: %v", round, total, users, got)
	}
	series := promSeries(t, prom, fmt.Sprintf(`{__name__=~"collapse_requests.*", instance=%q}`, run))
	require.Len(t, series, 1, "one series after user.id is dropped: %v", series)
	assert.Equal(t, "/cart", series[0]["http_route"])
	assert.NotContains(t, series[0], "user_id")

	out := col.output.String()
	for _, bad := range []string{"out of order", "duplicate sample", "Permanent error", "rejected"} {
		assert.NotContains(t, strings.ToLower(out), strings.ToLower(bad), "collector log")
		assert.NotContains(t, strings.ToLower(promProc.out.String()), strings.ToLower(bad), "Prometheus log")
	}
	if !t.Failed() {
		reliability.record("Series collapsed by tagguard, in a real Prometheus",
			"FABRIC_BIN=bin/otelcol-fabric go test -count=1 -run TestTagguardCollapsedSeriesInPrometheus ./tests/",
			fmt.Sprintf("Shipped configs/gateway.yaml into Debian's Prometheus by remote write: %d cumulative counters, one per user.id, "+
				"in %d requests with the same timestamp, twice; tagguard drops user.id. Prometheus holds 1 series and "+
				"`sum(last_over_time(...))` returns exactly the total sent (%d after the second round); no rejection in either log. "+
				"(The binary before the merge left 1 and 2 in Prometheus.)", users, requests, total))
	}
}

// startGateway runs the shipped configs/gateway.yaml with stand-ins for every
// store but Prometheus (prom, the base URL of a real one).
func startGateway(t *testing.T, prom string) *collector {
	t.Helper()
	tempoAddr, _ := otlpGRPCStandIn(t)
	return startGatewayWith(t, prom, tempoAddr, nil)
}

// startGatewayWith is startGateway with a Tempo of the caller's (its
// OTLP/gRPC address) and extra environment variables, which override.
func startGatewayWith(t *testing.T, prom, tempoAddr string, extra []string) *collector {
	t.Helper()
	vendorURL, _ := otlpHTTPStandIn(t, "/v1/")
	lokiURL, _ := otlpHTTPStandIn(t, "/otlp/v1/")
	esURL, _ := elasticsearchStandIn(t)
	return startCollectorEnv(t, append([]string{
		"FABRIC_QUEUEWATCH_ENDPOINT=127.0.0.1:" + strconv.Itoa(freePort(t)),
		"FABRIC_INGEST_TOKEN=" + gwToken,
		"FABRIC_QUEUE_DIR=" + t.TempDir(),
		"FABRIC_TEMPO_ENDPOINT=" + tempoAddr,
		"FABRIC_VENDOR_OTLP_ENDPOINT=" + vendorURL,
		"FABRIC_VENDOR_API_KEY=vendor-key-123",
		"FABRIC_LOKI_OTLP_ENDPOINT=" + lokiURL + "/otlp",
		"FABRIC_LOKI_TENANT=team-a",
		"FABRIC_ELASTICSEARCH_ENDPOINT=" + esURL,
		"FABRIC_ELASTICSEARCH_PASSWORD=es-secret",
		"FABRIC_PROMETHEUS_RW_ENDPOINT=" + prom + "/api/v1/write",
		"FABRIC_FLUENTFORWARD_ENDPOINT=127.0.0.1:0",
		"FABRIC_PPROF_ENDPOINT=127.0.0.1:0",
		"FABRIC_ZPAGES_ENDPOINT=127.0.0.1:0",
		"FABRIC_TAIL_DECISION_WAIT=1s",
		"FABRIC_TRACES_HELD_FOR=6s",
	}, extra...), "--config", gatewayConfig())
}

// gatewayConfig is configs/gateway.yaml, or FABRIC_GATEWAY_CONFIG for a hand
// experiment.
func gatewayConfig() string {
	if c := os.Getenv("FABRIC_GATEWAY_CONFIG"); c != "" {
		return c
	}
	return "configs/gateway.yaml"
}

// promScalar evaluates an instant query whose result is one number (NaN on
// no result or error).
func promScalar(base, q string) float64 {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	b, _ := io.ReadAll(resp.Body)
	if json.Unmarshal(b, &out) != nil || len(out.Data.Result) != 1 || len(out.Data.Result[0].Value) != 2 {
		return -1
	}
	s, _ := out.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return -1
	}
	return v
}
