// Package benchpkg is a tiny benchmark package: the receiver's tests run
// go test -bench on it and post the real output.
package benchpkg

import (
	"os"
	"strconv"
	"testing"
)

// work is how many rounds sum does; BENCHPKG_WORK makes it slower on
// purpose (the regression tests' "slower commit").
var work = func() int {
	if n, err := strconv.Atoi(os.Getenv("BENCHPKG_WORK")); err == nil && n > 0 {
		return n
	}
	return 200
}()

var sink int

func sum(n int) int {
	s := 0
	for i := range n {
		s += i * i % 7
	}
	return s
}

func BenchmarkSum(b *testing.B) {
	for b.Loop() {
		sink += sum(work)
	}
}

func BenchmarkAlloc(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		buf := make([]byte, 64)
		sink += len(buf)
	}
}

func BenchmarkCopy(b *testing.B) {
	for _, size := range []int{16, 1024} {
		b.Run("size="+strconv.Itoa(size), func(b *testing.B) {
			src, dst := make([]byte, size), make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				copy(dst, src)
			}
			b.ReportMetric(float64(size/16), "chunks/op")
		})
	}
}
