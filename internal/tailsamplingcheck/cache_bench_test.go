package tailsamplingcheck

import (
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/tailsamplingprocessor/cache"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// BenchmarkDecisionCacheMemory measures what the gateway's decision caches
// cost when full: heap bytes per cached trace ID (the bytes/entry metric),
// filling one cache of the shipped size (100000) with as many decisions.
func BenchmarkDecisionCacheMemory(b *testing.B) {
	const size = 100000
	var perEntry float64
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c, err := cache.NewLRUDecisionCache(size)
		if err != nil {
			b.Fatal(err)
		}
		for i := range size {
			var id pcommon.TraceID
			binary.BigEndian.PutUint64(id[8:], uint64(i)*0x9e3779b97f4a7c15)
			c.Put(id, cache.DecisionMetadata{PolicyName: "sample-the-rest"})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perEntry = float64(after.HeapAlloc-before.HeapAlloc) / size
		runtime.KeepAlive(c)
	}
	b.ReportMetric(perEntry, "bytes/entry")
}
