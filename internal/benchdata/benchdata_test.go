package benchdata

import (
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func TestFillSamplesRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 1; n <= 40; n++ {
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = r.Float64() * 1e-6
		}
		vals[n/2] = vals[0] // ties survive
		dp := pmetric.NewSummaryDataPoint()
		Fill(dp, vals)
		got, err := Samples(dp)
		require.NoError(t, err, "n=%d", n)
		want := append([]float64(nil), vals...)
		sort.Float64s(want)
		assert.Equal(t, want, got, "n=%d: every sample back, exactly", n)
		var median float64
		for _, q := range dp.QuantileValues().All() {
			if q.Quantile() == 0.5 {
				median = q.Value()
			}
		}
		if n%2 == 1 {
			assert.Equal(t, want[n/2], median)
		} else {
			assert.InDelta(t, (want[n/2-1]+want[n/2])/2, median, 1e-18)
		}
	}
}

func TestSamplesRefusesOtherSummaries(t *testing.T) {
	dp := pmetric.NewSummaryDataPoint()
	dp.SetCount(10)
	for _, q := range []float64{0, 0.5, 0.9, 1} {
		e := dp.QuantileValues().AppendEmpty()
		e.SetQuantile(q)
		e.SetValue(1)
	}
	_, err := Samples(dp)
	assert.ErrorIs(t, err, ErrNoSamples)
	_, err = Samples(pmetric.NewSummaryDataPoint())
	assert.ErrorIs(t, err, ErrNoSamples)
}
