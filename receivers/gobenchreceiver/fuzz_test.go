package gobenchreceiver

import (
	"math"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-fabric/otelcol-fabric/internal/benchdata"
)

// FuzzDecode runs arbitrary bodies through both decoders and the
// conversion to metrics: errors are fine, panics are not; every data point
// holds its samples (count, rank quantiles in order, min <= median <= max)
// and what is produced marshals.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("goos: linux\npkg: x\nBenchmarkA-4 \t 100 \t 12.5 ns/op \t 3 B/op \t 1 allocs/op\nBenchmarkA-4 100 13 ns/op 3 B/op 1 allocs/op\n"), "")
	f.Add([]byte("BenchmarkCopy/size=16-2 1 2 MB/s 4 chunks/op\nUnit chunks/op assume=exact better=higher\n"), "text")
	f.Add([]byte(`{"Action":"output","Package":"p","Output":"BenchmarkA-2 \t"}`+"\n"+`{"Action":"output","Package":"p","Output":"10\t5 ns/op\n"}`+"\n"), "")
	f.Add([]byte("{broken\n"), "json")
	f.Add([]byte("BenchmarkA 1 NaN ns/op\nBenchmarkA 1 +Inf ns/op\n"), "")
	f.Fuzz(func(t *testing.T, body []byte, format string) {
		format, err := detectFormat(format, body)
		if err != nil {
			return
		}
		d, err := decode(body, format, defaultMaxSamplesPerBenchmark)
		if err != nil {
			return
		}
		md := toMetrics(d, map[string]string{AttrRunID: "r"}, pcommon.Timestamp(1))
		total := 0
		for _, s := range d.series {
			total += len(s.values)
		}
		seen := 0
		for _, sm := range md.ResourceMetrics().At(0).ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				for _, dp := range m.Summary().DataPoints().All() {
					seen += int(dp.Count())
					qv := dp.QuantileValues()
					if want := len(benchdata.RankQuantiles(int(dp.Count()))); qv.Len() != want {
						t.Fatalf("%d quantiles for %d samples, want %d", qv.Len(), dp.Count(), want)
					}
					for i := 1; i < qv.Len(); i++ {
						a, b := qv.At(i-1), qv.At(i)
						if a.Quantile() >= b.Quantile() {
							t.Fatalf("quantiles out of order: %v %v", a.Quantile(), b.Quantile())
						}
						if !math.IsNaN(a.Value()) && !math.IsNaN(b.Value()) && a.Value() > b.Value() {
							t.Fatalf("quantile values decrease: %v > %v", a.Value(), b.Value())
						}
					}
				}
			}
		}
		if seen != total {
			t.Fatalf("%d samples decoded, %d in data points", total, seen)
		}
		if _, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}
