package adaptivesamplingextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/adaptivesamplingextension"

import (
	"math"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/sampling"
)

// overflowKey is the key of the traces whose own key was new while max_keys
// keys were tracked. A trace's key is empty or starts with '=' or 'M'
// (fields.go), so no trace's key can equal it.
const overflowKey = "\x00overflow"

// rate is a keep rate, 1 in n, and the threshold that keeps a trace at it:
// a trace is kept when its randomness is at or above the threshold
// (OpenTelemetry consistent probability sampling).
type rate struct {
	n  int
	th sampling.Threshold
}

func newRate(n int) rate {
	if n <= 1 {
		return rate{n: 1, th: sampling.AlwaysSampleThreshold}
	}
	th, err := sampling.ProbabilityToThreshold(1 / float64(n))
	if err != nil {
		// 1/n is in range for every n below 2^56; beyond it never sample
		// more rarely than the smallest probability the encoding holds.
		th, _ = sampling.ProbabilityToThreshold(sampling.MinSamplingProbability)
	}
	return rate{n: n, th: th}
}

var rateOne = newRate(1)

// keyState is what the sampler holds per key: about 150 bytes with the map
// entry, plus the key itself (README, "Memory").
type keyState struct {
	count  float64 // items seen this interval
	traces float64 // traces seen this interval
	ema    float64 // moving average of items per interval
	emaT   float64 // moving average of traces per interval
	age    int     // intervals folded into the averages
	r      rate    // the key's own rate, from its second interval on; n == 0 before
}

// established is whether a key has a rate of its own: it has been seen in
// two adjustments, so its average says something about the next interval.
// A key seen in one interval only may never come back (an ID in a span
// name): until then it is sampled with the fresh-keys bucket.
func (st *keyState) established() bool { return st.age >= 2 && st.r.n > 0 }

// decision is what the sampler decided for one trace.
type decision struct {
	r          rate // the rate, 1 in r.n, the trace was decided at
	keep       bool
	overflowed bool
	adjusted   bool // an interval ended (or the factor changed): telemetry is due
}

// stats are the figures of the sampler's last adjustment, for telemetry.
type stats struct {
	target  float64 // per second, with the pressure factor applied
	factor  float64
	inRate  float64 // per second over the last interval
	outRate float64
	keys    int
}

// sampler is the rate table behind a policy: per-key counts folded into
// exponential moving averages every interval, and per-key rates that put the
// expected output on the target. It is Refinery's EMA throughput sampler
// (dynsampler-go EMAThroughput) with the differences README.md lists. It is
// driven by the caller's clock and not safe for concurrent use.
type sampler struct {
	interval time.Duration
	weight   float64
	ageOut   float64
	maxKeys  int
	target   float64 // per second, as configured
	initial  rate
	factor   float64
	keys     map[string]*keyState
	// fresh is the bucket of the traffic of keys that are not established
	// (new, or seen in one interval only): one pseudo-key with its own
	// average and rate, so that many new keys cannot break the budget.
	fresh keyState
	// The keep-fraction correction (see computeRates): what established
	// keys saw and kept this interval, and what the rates predicted.
	ratedIn, ratedOut float64
	modelIn, modelOut float64
	bias              float64
	mixed             bool // the rates changed within this interval
	// burst ends an interval early when its volume passes twice what the
	// averages expect (Refinery's BurstMultiple 2): a surge of new keys is
	// otherwise kept whole until the interval ends.
	burst    float64
	haveData bool
	start    time.Time // of the current interval
	inItems  float64   // this interval
	outItems float64
	last     stats
	ents     []entry // reused by computeRates
}

func newSampler(cfg *Config, now time.Time) *sampler {
	s := &sampler{
		interval: cfg.AdjustmentInterval,
		weight:   cfg.Weight,
		ageOut:   cfg.AgeOutValue,
		maxKeys:  cfg.MaxKeys,
		target:   cfg.targetPerSecond(),
		initial:  newRate(cfg.InitialSampleRate),
		factor:   1,
		bias:     1,
		keys:     make(map[string]*keyState),
		start:    now,
	}
	s.last = stats{target: s.target, factor: 1}
	return s
}

// decide counts a trace of `items` items under key and decides whether it
// is kept, from its randomness (sampling.TraceIDToRandomness). pUp is the
// probability an earlier consistent sampler kept the trace with (its th; 1
// when none): the trace is then kept at pUp/n of the randomness, so that it
// is kept with probability 1/n among the traces that arrived.
func (s *sampler) decide(key []byte, items float64, rnd sampling.Randomness, pUp float64, now time.Time) decision {
	var d decision
	if now.Sub(s.start) >= s.interval || (s.burst > 0 && s.inItems >= s.burst && now.Sub(s.start) >= s.interval/16) {
		s.adjust(now)
		d.adjusted = true
	}
	st, ok := s.keys[string(key)] // no allocation for the lookup
	if !ok {
		if len(s.keys) >= s.maxKeys {
			d.overflowed = true
			if st = s.keys[overflowKey]; st == nil {
				st = &keyState{}
				s.keys[overflowKey] = st
			}
		} else {
			st = &keyState{}
			s.keys[string(key)] = st
		}
	}
	st.count += items
	st.traces++
	s.inItems += items
	established := s.haveData && st.established()
	if !established {
		s.fresh.count += items
		s.fresh.traces++
	} else {
		s.ratedIn += items
	}
	switch {
	case !s.haveData:
		d.r = s.initial
	case established:
		d.r = st.r
	default:
		d.r = s.fresh.r
		if d.r.n == 0 {
			// No fresh traffic in the intervals so far: kept whole
			// for this interval, as Refinery keeps new keys.
			d.r = rateOne
		}
	}
	th := d.r.th
	if pUp < 1 && d.r.n > 1 {
		th = thresholdFor(pUp / float64(d.r.n))
	}
	d.keep = th.ShouldSample(rnd)
	if d.keep {
		s.outItems += items
		if established {
			s.ratedOut += items
		}
	}
	return d
}

// thresholdFor is the threshold of probability p, clamped to the smallest
// the encoding holds.
func thresholdFor(p float64) sampling.Threshold {
	th, err := sampling.ProbabilityToThreshold(math.Max(p, sampling.MinSamplingProbability))
	if err != nil {
		return sampling.AlwaysSampleThreshold
	}
	return th
}

// setFactor applies a new pressure factor to the target at once, from the
// current moving averages, instead of waiting for the interval to end.
func (s *sampler) setFactor(f float64) bool {
	if f == s.factor {
		return false
	}
	s.factor = f
	s.last.factor = f
	s.last.target = s.target * f
	s.mixed = true
	if s.haveData {
		s.computeRates()
	}
	return true
}

// fold ends a key's interval: its counts, scaled to one configured
// interval, go into its moving averages.
func (s *sampler) fold(st *keyState, scale float64) {
	c, tr := st.count*scale, st.traces*scale
	st.count, st.traces = 0, 0
	if st.age == 0 {
		st.ema, st.emaT = s.weight*c, s.weight*tr
	} else {
		st.ema = s.weight*c + (1-s.weight)*st.ema
		st.emaT = s.weight*tr + (1-s.weight)*st.emaT
	}
	st.age++
}

// adjust ends the interval: it folds the interval's counts into the moving
// averages, ages out the keys that faded, and recomputes the rates.
func (s *sampler) adjust(now time.Time) {
	elapsed := now.Sub(s.start)
	s.start = now
	if elapsed <= 0 {
		elapsed = s.interval
	}
	secs := elapsed.Seconds()
	s.last.inRate, s.last.outRate = s.inItems/secs, s.outItems/secs
	if s.inItems == 0 {
		// No traffic: leave the averages alone rather than decay them, as
		// Refinery does, so a pause does not reset what was learned.
		s.last.keys = len(s.keys)
		return
	}
	// Counts are normalised to one configured interval: decisions come in
	// tail_sampling's ticks, so an interval ends up to a tick late.
	scale := s.interval.Seconds() / secs
	for k, st := range s.keys {
		s.fold(st, scale)
		// A key is forgotten when its traces per interval, corrected for
		// the average's start at zero, fall below age_out_value: a key
		// seen once lives one more interval, whatever the weight, and a
		// span target does not keep big traces' keys longer.
		if st.emaT/s.debias(st) < s.ageOut {
			delete(s.keys, k)
		}
	}
	s.fold(&s.fresh, scale)
	if elapsed < s.interval {
		s.mixed = true // a burst: no keep-fraction sample from it
	}
	s.sampleBias(scale)
	s.inItems, s.outItems = 0, 0
	s.haveData = true
	s.computeRates()
}

// sampleBias updates the keep-fraction correction from the interval that
// ended. Rates set from noisy averages keep more than the averages predict:
// a key whose average came out low gets a low rate, and what it keeps goes
// as 1/average (Jensen's inequality); with Poisson traffic over many small
// keys, 5 to 10% over the goal (TestPressureFactorScalesTarget at 20x the
// target). The correction is the ratio of the fraction the established keys
// kept to the fraction their rates predicted, so a change in the volume of
// traffic does not move it; an interval whose volume is more than 25% off
// the prediction, or in which the rates changed, is not used; it moves
// slowly (weight 0.25) and within 0.8 to 1.25.
func (s *sampler) sampleBias(scale float64) {
	in, out := s.ratedIn*scale, s.ratedOut*scale
	mIn, mOut := s.modelIn, s.modelOut
	mixed := s.mixed
	s.ratedIn, s.ratedOut, s.mixed = 0, 0, false
	if mixed || mIn <= 0 || mOut <= 0 || in <= 0 || out <= 0 || math.Abs(in/mIn-1) > 0.25 {
		return
	}
	ratio := (out / in) / (mOut / mIn)
	ratio = math.Min(math.Max(ratio, 0.8), 1.25)
	s.bias = 0.25*ratio + 0.75*s.bias
}

// debias corrects a moving average for its start at zero: after t
// intervals of a steady count c the average is c(1-(1-w)^t), so dividing by
// (1-(1-w)^t) gives c from the first interval on. Refinery uses the raw
// average, which halves a new key's volume (at weight 0.5) and so keeps
// twice its share for an interval.
func (s *sampler) debias(st *keyState) float64 {
	return 1 - math.Pow(1-s.weight, float64(min(st.age, 64)))
}

// computeRates gives every established key, and the fresh-keys bucket, a
// share of the interval's goal and the rate (1 in n) that keeps about that
// share of it. As in Refinery, a key's share grows with the log10 of its
// volume, so frequent keys are sampled hard and rare ones are kept whole,
// but the shares are scaled until the expected output, with the rates
// rounded up to whole numbers, meets the goal, instead of handing each key
// at least one trace: Refinery's floor overshoots the goal whenever the keys
// outnumber it. When even one trace per key is over the goal, every key gets
// the same share of a trace below one (rare keys are then sampled too,
// evenly). Sums are kept in fixed point, so that the same averages give the
// same rates whatever the map order.
func (s *sampler) computeRates() {
	goal := s.target * s.factor * s.interval.Seconds() / s.bias
	s.last.target = s.target * s.factor
	s.last.factor = s.factor
	s.last.keys = len(s.keys)

	ents := s.ents[:0]
	var total, floorSum, logSum float64
	add := func(st *keyState) {
		d := s.debias(st)
		c, tr := st.ema/d, st.emaT/d
		if c <= 0 {
			return
		}
		// A key's floor is one of its traces, in items: with a target in
		// spans, a trace of 8 spans seen once per interval is kept whole.
		per := 1.0
		if tr > 0 {
			per = math.Max(1, c/tr)
		}
		e := entry{st: st, c: c, lg: math.Log10(math.Max(c, 1)), per: per}
		ents = append(ents, e)
		total += c
		floorSum += math.Min(c, per)
		logSum += e.lg
	}
	for _, st := range s.keys {
		if st.age >= 2 {
			add(st)
		} else {
			st.r = rate{}
		}
	}
	if s.fresh.age > 0 {
		add(&s.fresh)
	}
	s.ents = ents
	// total is all the traffic, established or not, that the averages
	// expect per interval.
	s.burst = 2 * total
	var floor, ratio float64
	switch {
	case total <= goal:
		floor, ratio = 1, math.Inf(1)
	case floorSum >= goal:
		// The largest floor f in (0, 1] whose output is within the goal.
		lo, hi := 0.0, 1.0
		for range 40 {
			mid := (lo + hi) / 2
			if expected(ents, mid, 0) <= toFixed(goal) {
				lo = mid
			} else {
				hi = mid
			}
		}
		floor, ratio = math.Max(lo, 1e-9), 0
	default:
		// The largest ratio whose output is within the goal, bracketed
		// around Refinery's ratio (goal / sum of log10 volumes).
		g := toFixed(goal)
		lo, hi := 0.0, math.Max(goal/math.Max(logSum, 1), 1e-9)
		for expected(ents, 1, hi) <= g && hi < 1e15 {
			lo, hi = hi, hi*2
		}
		for hi-lo > 1e-4*hi {
			mid := (lo + hi) / 2
			if expected(ents, 1, mid) <= g {
				lo = mid
			} else {
				hi = mid
			}
		}
		floor, ratio = 1, lo
	}
	s.modelIn, s.modelOut = 0, 0
	for _, e := range ents {
		n := rateFor(e.c, e.lg, floor*e.per, ratio)
		if e.st.r.n != n {
			e.st.r = newRate(n)
		}
		if e.st != &s.fresh {
			s.modelIn += e.c
			s.modelOut += e.c / float64(n)
		}
	}
}

// entry is a key's volume estimate and its log10, for computeRates.
type entry struct {
	st  *keyState
	c   float64
	lg  float64
	per float64 // items per trace: the floor is counted in traces
}

// fixedOne is 1 in the fixed point computeRates sums in: exact, so
// independent of the order of the sum, up to 2^47 items per interval.
const fixedOne = 1 << 16

func toFixed(x float64) int64 { return int64(math.Round(x * fixedOne)) }

// rateFor is the rate of a key of c items per interval (lg = log10(max(c,
// 1))) whose share is max(floor, lg·ratio) items.
func rateFor(c, lg, floor, ratio float64) int {
	share := math.Max(floor, lg*ratio)
	if c <= share {
		return 1
	}
	n := math.Ceil(c / share)
	if math.IsNaN(n) || n < 1 {
		return 1
	}
	return int(math.Min(n, math.MaxInt32))
}

// expected is the output per interval, in fixed point, of the rates that
// floor and ratio give.
func expected(ents []entry, floor, ratio float64) int64 {
	var out int64
	for _, e := range ents {
		out += toFixed(e.c / float64(rateFor(e.c, e.lg, floor*e.per, ratio)))
	}
	return out
}
