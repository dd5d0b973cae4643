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
	variance      map[string]float64
	inTotal, outN float64
}

func (z *zipfStream) interval(s *sampler, start time.Time, d time.Duration, n int) intervalResult {
	res := intervalResult{seen: map[string]float64{}, kept: map[string]float64{}, weighted: map[string]float64{}, variance: map[string]float64{}}
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
		dec := s.decide([]byte(key), 1, z.randomness(), 1, now)
		res.seen[key]++
		res.inTotal++
		if dec.keep {
			res.kept[key]++
			res.weighted[key] += float64(dec.r.n)
			res.variance[key] += float64(dec.r.n) * float64(dec.r.n-1)
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

	seen, weighted, kept, variance := map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
	var inTotal, weightedTotal float64
	for i := range intervals {
		start := t0.Add(time.Duration(i) * cfg.AdjustmentInterval)
		r := z.interval(s, start, cfg.AdjustmentInterval, perSec*int(cfg.AdjustmentInterval.Seconds()))
		if i >= 4 { // the fifth interval on
			assert.InDelta(t, goal, r.outN, goal*0.10, "interval %d: kept %v traces, target %v per interval", i+1, r.outN, goal)
		}
		if i >= 2 { // a key has its own rate from its second interval on
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
		for k, v := range r.variance {
			variance[k] += v
		}
	}
	// Re-weighting: the whole stream within 2%; each key within 5%, or
	// within four standard errors where its sample is too small for 5% to
	// be four of them (the Horvitz-Thompson variance, sum of r(r-1) over
	// its kept traces).
	assert.InEpsilon(t, inTotal, weightedTotal, 0.02)
	checked, within5 := 0, 0
	for k, n := range kept {
		if n < 500 {
			continue
		}
		checked++
		se := math.Sqrt(variance[k])
		diff := math.Abs(weighted[k] - seen[k])
		if diff <= 0.05*seen[k] {
			within5++
		}
		assert.LessOrEqual(t, diff, math.Max(0.05*seen[k], 4*se), "key %s: seen %v, re-weighted %v (kept %v, standard error %.0f)", k, seen[k], weighted[k], n, se)
	}
	assert.GreaterOrEqual(t, checked, 50, "too few keys carry enough kept traces to check the re-weighting")
	t.Logf("re-weighting: %d keys checked, %d within 5%%", checked, within5)
	// Rare keys are kept whole while the head is sampled down.
	st := s.keys["zipf-0"]
	require.NotNil(t, st)
	assert.Greater(t, st.r.n, 20, "the most frequent key should be sampled hard")
	t.Logf("keys tracked %d; most frequent key rate 1 in %d", len(s.keys), st.r.n)
}

// With the input below the target, everything is kept.
func TestBelowTargetKeepsAll(t *testing.T) {
	cfg := testConfig()
	t0 := time.Unix(1_700_000_000, 0)
	s := newSampler(cfg, t0)
	z := newZipfStream(2, 50, 0)
	for i := range 6 {
		r := z.interval(s, t0.Add(time.Duration(i)*cfg.AdjustmentInterval), cfg.AdjustmentInterval, 50*15)
		if i >= 2 {
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
	// The rates change at once; the first interval after a step is
	// allowed 15% (the keep-fraction correction learned at the old rates),
	// the next ones 10%.
	tol := func(i int) float64 { return map[bool]float64{true: 0.15, false: 0.10}[i == 0] }
	for i, out := range run(5, 5) {
		assert.InDelta(t, goal/2, out, goal/2*tol(i), "under pressure, interval %d", i+1)
	}
	require.True(t, s.setFactor(1))
	require.False(t, s.setFactor(1), "an unchanged factor recomputes nothing")
	for i, out := range run(10, 5) {
		assert.InDelta(t, goal, out, goal*tol(i), "after pressure, interval %d", i+1)
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
		d := s.decide(fmt.Appendf(nil, "k-%d", i), 1, z.randomness(), 1, t0.Add(time.Duration(i)*6*time.Millisecond))
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
				if d := s.decide([]byte("rare"), 8, z.randomness(), 1, now); d.keep {
					keptRare++
					out += 8
				}
			}
			if d := s.decide(fmt.Appendf(nil, "k-%d", z.zipf.Uint64()), 3, z.randomness(), 1, now); d.keep {
				out += 3
			}
		}
		if i >= 2 {
			assert.Equal(t, 1, keptRare, "interval %d: the rare 8-span trace", i+1)
		}
		if i >= 4 {
			assert.InDelta(t, goal, out, goal*0.10, "interval %d: spans kept", i+1)
		}
	}
}

// feed runs n traces over one interval through s; key(i) names each trace's
// key. It returns what was kept, in traces.
func feed(s *sampler, z *zipfStream, start time.Time, d time.Duration, n int, key func(i int) string) float64 {
	var out float64
	for i := range n {
		now := start.Add(time.Duration(int64(d) * int64(i) / int64(n)))
		if s.decide([]byte(key(i)), 1, z.randomness(), 1, now).keep {
			out++
		}
	}
	return out
}

// High-cardinality keys (an ID in a span name) do not break the budget:
// keys seen in one interval only share the fresh-keys bucket's rate.
func TestUniqueKeysHoldBudget(t *testing.T) {
	cfg := testConfig()
	cfg.MaxKeys = 1_000_000
	goal := cfg.Target.TracesPerSecond * cfg.AdjustmentInterval.Seconds()
	t0 := time.Unix(1_700_000_000, 0)
	t.Run("every trace a new key", func(t *testing.T) {
		s := newSampler(cfg, t0)
		z := newZipfStream(30, 10, 0)
		next := 0
		for i := range 10 {
			out := feed(s, z, t0.Add(time.Duration(i)*cfg.AdjustmentInterval), cfg.AdjustmentInterval, int(3*goal), func(int) string {
				next++
				return fmt.Sprintf("id-%d", next)
			})
			if i >= 2 {
				assert.InDelta(t, goal, out, goal*0.15, "interval %d", i+1)
			}
		}
	})
	t.Run("zipf plus half unique", func(t *testing.T) {
		s := newSampler(cfg, t0)
		z := newZipfStream(31, 100, 0)
		next := 0
		for i := range 12 {
			out := feed(s, z, t0.Add(time.Duration(i)*cfg.AdjustmentInterval), cfg.AdjustmentInterval, int(6*goal), func(j int) string {
				if j%2 == 0 {
					next++
					return fmt.Sprintf("id-%d", next)
				}
				return z.names[z.zipf.Uint64()%100] + fmt.Sprint(z.zipf.Uint64()%100)
			})
			if i >= 4 {
				assert.InDelta(t, goal, out, goal*0.15, "interval %d", i+1)
			}
		}
	})
}

// A small weight (a long memory) with the default age_out_value: keys
// still get rates and the budget holds.
func TestSmallWeightHoldsBudget(t *testing.T) {
	cfg := testConfig()
	cfg.Weight = 0.1
	goal := cfg.Target.TracesPerSecond * cfg.AdjustmentInterval.Seconds()
	t0 := time.Unix(1_700_000_000, 0)
	s := newSampler(cfg, t0)
	z := newZipfStream(32, 2000, 0)
	for i := range 15 {
		r := z.interval(s, t0.Add(time.Duration(i)*cfg.AdjustmentInterval), cfg.AdjustmentInterval, 2000*4)
		if i >= 5 {
			assert.InDelta(t, goal, r.outN, goal*0.15, "interval %d", i+1)
		}
	}
}

// A 10x drop in traffic does not overshoot the budget while the averages
// follow it down; a 10x rise undershoots for a few intervals at most.
func TestTrafficSteps(t *testing.T) {
	cfg := testConfig()
	goal := cfg.Target.TracesPerSecond * cfg.AdjustmentInterval.Seconds()
	t0 := time.Unix(1_700_000_000, 0)
	s := newSampler(cfg, t0)
	z := newZipfStream(33, 500, 0)
	i := 0
	step := func(n, intervals int) []float64 {
		var outs []float64
		for range intervals {
			outs = append(outs, z.interval(s, t0.Add(time.Duration(i)*cfg.AdjustmentInterval), cfg.AdjustmentInterval, n).outN)
			i++
		}
		return outs
	}
	step(int(20*goal), 8)
	// The averages follow a drop at weight 0.5 (a 10x drop is still 1.6x
	// in the average four intervals on): under budget meanwhile.
	for k, out := range step(int(2*goal), 10) {
		assert.LessOrEqual(t, out, goal*1.15, "after the drop, interval %d", k+1)
		if k >= 6 {
			assert.InDelta(t, goal, out, goal*0.20, "after the drop, interval %d", k+1)
		}
	}
	// A rise: the burst check ends the interval early (at twice the
	// expected volume), so new keys are not kept whole for long.
	outs := step(int(20*goal), 8)
	assert.LessOrEqual(t, outs[0], goal*4, "the interval of the rise")
	for k, out := range outs[1:] {
		assert.LessOrEqual(t, out, goal*1.5, "after the rise, interval %d", k+2)
		if k >= 3 {
			assert.InDelta(t, goal, out, goal*0.15, "after the rise, interval %d", k+2)
		}
	}
}

// Traffic an earlier consistent sampler kept at 1 in 4 (th, the same
// randomness): the policy keeps 1 in n of what arrives, and the kept traces
// re-weighted by n/pUp give back the traffic before the earlier sampler.
func TestUpstreamThreshold(t *testing.T) {
	cfg := testConfig()
	goal := cfg.Target.TracesPerSecond * cfg.AdjustmentInterval.Seconds()
	const pUp = 0.25
	up, err := sampling.ProbabilityToThreshold(pUp)
	require.NoError(t, err)
	t0 := time.Unix(1_700_000_000, 0)
	s := newSampler(cfg, t0)
	z := newZipfStream(34, 300, 0)
	var before, reweighted float64
	for i := range 20 {
		start := t0.Add(time.Duration(i) * cfg.AdjustmentInterval)
		arrived, out := 0, 0.0
		for j := 0; arrived < int(10*goal); j++ {
			rnd := z.randomness()
			key := z.zipf.Uint64()
			if i >= 5 {
				before++
			}
			if !up.ShouldSample(rnd) {
				continue // dropped upstream
			}
			now := start.Add(time.Duration(int64(cfg.AdjustmentInterval) * int64(arrived) / int64(10*goal)))
			arrived++
			d := s.decide(fmt.Appendf(nil, "k-%d", key), 1, rnd, pUp, now)
			if d.keep {
				out++
				if i >= 5 {
					reweighted += float64(d.r.n) / pUp
				}
			}
		}
		if i >= 4 {
			assert.InDelta(t, goal, out, goal*0.10, "interval %d", i+1)
		}
	}
	assert.InEpsilon(t, before, reweighted, 0.03, "re-weighted by the combined rate: the traffic before the earlier sampler")
}
