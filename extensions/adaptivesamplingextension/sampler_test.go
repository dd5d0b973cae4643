package adaptivesamplingextension

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// zipfStream is a synthetic stream of keyed traces: keys drawn from a Zipf
// distribution (a few keys carry most traffic, a long tail is rare), plus
// `steady` keys that appear exactly once in every interval.
type zipfStream struct {
	rng    *rand.Rand
	zipf   *rand.Zipf
	steady int
	names  map[uint64]string
}

func newZipfStream(seed uint64, keys uint64, steady int) *zipfStream {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &zipfStream{rng: rng, zipf: rand.NewZipf(rng, 1.2, 1, keys-1), steady: steady, names: map[uint64]string{}}
}

func (z *zipfStream) randomness() sampling.Randomness {
	rnd, _ := sampling.UnsignedToRandomness(z.rng.Uint64() & (1<<56 - 1))
	return rnd
}

// interval feeds one interval of n Zipf traces plus the steady keys, spread
// evenly over the interval, and returns what was seen and kept per key
// (kept weighted by the rate each was kept at, and unweighted).
type intervalResult struct {
	seen, kept    map[string]float64
	weighted      map[string]float64
	inTotal, outN float64
}

func (z *zipfStream) interval(s *sampler, start time.Time, d time.Duration, n int) intervalResult {
	res := intervalResult{seen: map[string]float64{}, kept: map[string]float64{}, weighted: map[string]float64{}}
	total := n + z.steady
	order := z.rng.Perm(total)
	for i, o := range order {
		var key string
		if o < z.steady {
			key = fmt.Sprintf("steady-%d", o)
		} else {
			k := z.zipf.Uint64()
			if key = z.names[k]; key == "" {
				key = fmt.Sprintf("zipf-%d", k)
				z.names[k] = key
			}
		}
		now := start.Add(time.Duration(int64(d) * int64(i) / int64(total)))
		dec := s.decide([]byte(key), 1, z.randomness(), now)
		res.seen[key]++
		res.inTotal++
		if dec.keep {
			res.kept[key]++
			res.weighted[key] += float64(dec.r.n)
			res.outN++
		}
	}
	return res
}

func testConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Target = Target{TracesPerSecond: 100}
	cfg.AdjustmentInterval = 15 * time.Second
	return cfg
}

// The output converges to the target within five intervals and stays
// there; keys that appear in every interval are all represented; the kept
// traces re-weighted by their rate reproduce the input per key.
func TestZipfConvergesToTarget(t *testing.T) {
	cfg := testConfig()
	cfg.Target.TracesPerSecond = 400
	const (
		intervals = 200
		perSec    = 2000 // input: 5x the target
		steady    = 40
	)
	goal := cfg.Target.TracesPerSecond * cfg.AdjustmentInterval.Seconds()
	t0 := time.Unix(1_700_000_000, 0)
	s := newSampler(cfg, t0)
	z := newZipfStream(1, 1000, steady)

	seen, weighted, kept := map[string]float64{}, map[string]float64{}, map[string]float64{}
	var inTotal, weightedTotal float64
	for i := range intervals {
		start := t0.Add(time.Duration(i) * cfg.AdjustmentInterval)
		r := z.interval(s, start, cfg.AdjustmentInterval, perSec*int(cfg.AdjustmentInterval.Seconds()))
		if i >= 4 { // the fifth interval on
			assert.InDelta(t, goal, r.outN, goal*0.10, "interval %d: kept %v traces, target %v per interval", i+1, r.outN, goal)
		}
		if i >= 1 {
			for k := range steady {
				key := fmt.Sprintf("steady-%d", k)
				assert.Equal(t, 1.0, r.kept[key], "interval %d: %s (once per interval) not kept", i+1, key)
			}
		}
		for k, v := range r.seen {
			seen[k] += v
			inTotal += v
		}
		for k, v := range r.weighted {
			weighted[k] += v
			weightedTotal += v
		}
		for k, v := range r.kept {
			kept[k] += v
		}
	}
	// Re-weighting: the whole stream within 2%, and every key kept at least
	// 1,600 times (a relative standard error of 2.5% or less) within 5%.
	assert.InEpsilon(t, inTotal, weightedTotal, 0.02)
	checked := 0
	for k, n := range kept {
		if n < 1600 {
			continue
		}
		checked++
		assert.InEpsilon(t, seen[k], weighted[k], 0.05, "key %s: seen %v, re-weighted %v (kept %v)", k, seen[k], weighted[k], n)
	}
	assert.GreaterOrEqual(t, checked, 5, "too few keys carry enough kept traces to check the re-weighting")
	// Rare keys are kept whole while the head is sampled down.
	st := s.keys["zipf-0"]
	require.NotNil(t, st)
	assert.Greater(t, st.r.n, 20, "the most frequent key should be sampled hard")
	t.Logf("keys tracked %d; most frequent key rate 1 in %d; checked %d keys", len(s.keys), st.r.n, checked)
}

// With the input below the target, everything is kept.
func TestBelowTargetKeepsAll(t *testing.T) {
	cfg := testConfig()
	t0 := time.Unix(1_700_000_000, 0)
	s := newSampler(cfg, t0)
	z := newZipfStream(2, 50, 0)
	for i := range 6 {
		r := z.interval(s, t0.Add(time.Duration(i)*cfg.AdjustmentInterval), cfg.AdjustmentInterval, 50*15)
		if i >= 1 {
			assert.Equal(t, r.inTotal, r.outN, "interval %d", i+1)
		}
	}
}

// A pressure factor scales the target at once and the target comes back
// when the level falls.
func TestPressureFactorScalesTarget(t *testing.T) {
	cfg := testConfig()
	goal := cfg.Target.TracesPerSecond * cfg.AdjustmentInterval.Seconds()
	t0 := time.Unix(1_700_000_000, 0)
	s := newSampler(cfg, t0)
	z := newZipfStream(3, 1000, 0)
	run := func(from, n int) []float64 {
		var outs []float64
		for i := from; i < from+n; i++ {
			r := z.interval(s, t0.Add(time.Duration(i)*cfg.AdjustmentInterval), cfg.AdjustmentInterval, 2000*15)
			outs = append(outs, r.outN)
		}
		return outs
	}
	before := run(0, 5)
	assert.InDelta(t, goal, before[4], goal*0.10, "20x the target, fifth interval")
	require.True(t, s.setFactor(0.5))
	assert.InDelta(t, cfg.Target.TracesPerSecond*0.5, s.last.target, 1e-9)
	for i, out := range run(5, 5) {
		assert.InDelta(t, goal/2, out, goal/2*0.10, "under pressure, interval %d", i+1)
	}
	require.True(t, s.setFactor(1))
	require.False(t, s.setFactor(1), "an unchanged factor recomputes nothing")
	for i, out := range run(10, 5) {
		assert.InDelta(t, goal, out, goal*0.10, "after pressure, interval %d", i+1)
	}
}

// The keys tracked stop at max_keys; the rest share the overflow key, which
// is sampled like any other key.
func TestMaxKeysOverflow(t *testing.T) {
	cfg := testConfig()
	cfg.MaxKeys = 100
	t0 := time.Unix(1_700_000_000, 0)
	s := newSampler(cfg, t0)
	z := newZipfStream(4, 0, 0)
	overflowed := 0
	for i := range 10_000 {
		d := s.decide(fmt.Appendf(nil, "k-%d", i), 1, z.randomness(), t0.Add(time.Duration(i)*3*time.Millisecond))
		if d.overflowed {
			overflowed++
		}
	}
	assert.LessOrEqual(t, len(s.keys), cfg.MaxKeys+1)
	assert.Contains(t, s.keys, overflowKey)
	assert.Positive(t, overflowed)
	assert.Greater(t, s.keys[overflowKey].r.n, 1, "the overflow key is sampled down like a frequent key")
}

// The same averages give the same rates, whatever the map order.
func TestRatesDeterministic(t *testing.T) {
	cfg := testConfig()
	t0 := time.Unix(1_700_000_000, 0)
	a, b := newSampler(cfg, t0), newSampler(cfg, t0)
	za, zb := newZipfStream(5, 3000, 10), newZipfStream(5, 3000, 10)
	for i := range 4 {
		start := t0.Add(time.Duration(i) * cfg.AdjustmentInterval)
		za.interval(a, start, cfg.AdjustmentInterval, 20_000)
		zb.interval(b, start, cfg.AdjustmentInterval, 20_000)
	}
	require.Len(t, b.keys, len(a.keys))
	for k, st := range a.keys {
		assert.Equal(t, st.r.n, b.keys[k].r.n, "key %s", k)
	}
}

func TestNewRateThreshold(t *testing.T) {
	for _, n := range []int{1, 2, 3, 10, 1000, math.MaxInt32} {
		r := newRate(n)
		assert.InEpsilon(t, float64(n), r.th.AdjustedCount(), 1e-9, "1 in %d", n)
	}
}

// With a target in spans, a key's floor is one of its traces: a key whose
// 8-span trace comes once per interval is kept every time, while frequent
// keys are sampled down to the span budget.
func TestSpansTargetKeepsRareTraceWhole(t *testing.T) {
	cfg := testConfig()
	cfg.Target = Target{SpansPerSecond: 200}
	t0 := time.Unix(1_700_000_000, 0)
	s := newSampler(cfg, t0)
	z := newZipfStream(6, 50, 0)
	goal := cfg.Target.SpansPerSecond * cfg.AdjustmentInterval.Seconds()
	for i := range 12 {
		start := t0.Add(time.Duration(i) * cfg.AdjustmentInterval)
		var out float64
		keptRare := 0
		for j := range 6000 {
			now := start.Add(time.Duration(j) * cfg.AdjustmentInterval / 6001)
			if j == 3000 {
				if d := s.decide([]byte("rare"), 8, z.randomness(), now); d.keep {
					keptRare++
					out += 8
				}
			}
			if d := s.decide(fmt.Appendf(nil, "k-%d", z.zipf.Uint64()), 3, z.randomness(), now); d.keep {
				out += 3
			}
		}
		if i >= 1 {
			assert.Equal(t, 1, keptRare, "interval %d: the rare 8-span trace", i+1)
		}
		if i >= 4 {
			assert.InDelta(t, goal, out, goal*0.10, "interval %d: spans kept", i+1)
		}
	}
}
