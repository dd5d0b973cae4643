package main

import (
	"context"
	"net"
	"net/http"
	"testing"
)

// The collector's metrics as the harness reads them: counters summed over
// their series, the heap, the traces exporters' queues but profilelink's,
// comments and unparsable values skipped, a label value with a space kept.
func TestMetricSamples(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const body = `# HELP otelcol_exporter_queue_size Current size of the retry queue
# TYPE otelcol_exporter_queue_size gauge
otelcol_exporter_queue_size{data_type="traces",exporter="otlp/tempo",note="a b"} 1516
otelcol_exporter_queue_size{data_type="traces",exporter="profilelink"} 99
otelcol_exporter_queue_size{data_type="logs",exporter="otlp_http/loki"} 7
otelcol_exporter_send_failed_spans{exporter="otlp/tempo"} 2
otelcol_exporter_send_failed_spans{exporter="otlp_http/vendor"} 3
otelcol_process_runtime_heap_alloc_bytes 1.048576e+06
otelcol_processor_refused_spans{processor="memory_limiter"} NaNx
`
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) })}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	h := &harness{basePort: l.Addr().(*net.TCPAddr).Port - 13}

	q := h.queueSizes(context.Background())
	if len(q) != 1 || q["otlp/tempo"] != 1516 {
		t.Errorf("queue sizes %v, want only otlp/tempo 1516", q)
	}
	if got := h.heap(); got != 1<<20 {
		t.Errorf("heap %d, want %d", got, 1<<20)
	}
	c := h.counters()
	if c["otelcol_exporter_send_failed_spans"] != 5 {
		t.Errorf("counters %v, want send_failed_spans 5 (summed over exporters)", c)
	}
	if _, ok := c["otelcol_processor_refused_spans"]; ok {
		t.Errorf("counters %v: an unparsable value was read", c)
	}

	// Nothing listening: no reading, an error, no hang.
	_ = srv.Close()
	if _, err := h.metricSamples(context.Background()); err == nil {
		t.Error("metricSamples with the collector gone: no error")
	}
}
