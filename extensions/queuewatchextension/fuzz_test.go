package queuewatchextension

import (
	"math"
	"strings"
	"testing"
)

// FuzzFillRatios feeds arbitrary text in the place of the collector's own
// metrics: parsing may fail, but never panics, and every fill is in [0, 1].
// testdata/fuzz holds the input that made prometheus/common's parser panic.
func FuzzFillRatios(f *testing.F) {
	f.Add("# TYPE otelcol_exporter_queue_capacity gauge\notelcol_exporter_queue_capacity{data_type=\"traces\",exporter=\"otlp_grpc/backend\"} 100\n" +
		"# TYPE otelcol_exporter_queue_size gauge\notelcol_exporter_queue_size{data_type=\"traces\",exporter=\"otlp_grpc/backend\"} 42\n")
	f.Add("otelcol_exporter_queue_capacity{exporter=\"otlp_grpc/backend\"} 0\notelcol_exporter_queue_size{exporter=\"otlp_grpc/backend\"} 5\n")
	f.Add("otelcol_exporter_queue_capacity{exporter=\"otlp_grpc/backend\"} -1\notelcol_exporter_queue_size{exporter=\"otlp_grpc/backend\"} NaN\n")
	f.Fuzz(func(t *testing.T, text string) {
		families, err := parseExposition(strings.NewReader(text))
		if err != nil {
			return
		}
		fills, rooms := fillRatios(families, []string{"otlp_grpc/backend"})
		for sig, room := range rooms {
			if !(room >= 0) || math.IsInf(room, 0) {
				t.Fatalf("room of %s: %v", sig, room)
			}
		}
		for exp, fill := range fills {
			if !(fill >= 0 && fill <= 1) {
				t.Fatalf("%s: fill %v outside [0, 1] from %q", exp, fill, text)
			}
		}
	})
}
