package queuewatchextension

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/otelcol-fabric/otelcol-fabric/internal/pressure"
)

func TestLevelMachine(t *testing.T) {
	cfg := createDefaultConfig().(*Config) // 0.5 / 0.7 / 0.9, hysteresis 0.1, hold 10s
	m := newLevelMachine(cfg)
	t0 := time.Unix(1_800_000_000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, step := range []struct {
		sec  int
		fill float64
		want pressure.Level
		why  string
	}{
		{0, 0.1, pressure.OK, "empty queue"},
		{1, 0.55, pressure.Elevated, "rises at once"},
		{2, 0.95, pressure.Critical, "jumps straight to critical"},
		{3, 0.5, pressure.Critical, "falls only after the hold time"},
		{13, 0.85, pressure.Critical, "0.85 is not below 0.9 - 0.1"},
		{14, 0.75, pressure.High, "held 12s, fill below 0.8: one step down"},
		{15, 0.1, pressure.High, "one step at a time, each held"},
		{24, 0.65, pressure.High, "0.65 is not below 0.7 - 0.1: no flapping around 0.7"},
		{25, 0.59, pressure.Elevated, "below 0.6 and held 11s"},
		{30, 0.72, pressure.High, "rises again at once"},
		{41, 0.0, pressure.Elevated, ""},
		{52, 0.0, pressure.OK, "recovered"},
	} {
		assert.Equal(t, step.want, m.update(step.fill, at(step.sec)), "t=%ds fill=%v: %s", step.sec, step.fill, step.why)
	}
}

func TestRingCompliance(t *testing.T) {
	r := ring{keep: time.Minute}
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 100 {
		fill := 0.1
		if i%10 == 0 {
			fill = 0.8
		}
		r.add(sample{At: t0.Add(time.Duration(i) * time.Second), Max: fill})
	}
	now := t0.Add(99 * time.Second)
	assert.Len(t, r.samples, 61, "samples older than keep are dropped")
	assert.InDelta(t, 55.0/61.0, r.compliance(time.Minute, 0.5, now), 1e-9, "6 of the 61 samples in the window (t=39..99) were above target")
	assert.InDelta(t, 0.9, r.compliance(10*time.Second-time.Nanosecond, 0.5, now), 0.1)
	assert.Len(t, r.since(10*time.Second, now), 11)
}
