package queuewatchextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/queuewatchextension"

import (
	"time"

	"github.com/otelcol-fabric/otelcol-fabric/internal/pressure"
)

// levelMachine turns fill measurements into a pressure level. It rises at
// once, as soon as the fill reaches a level's threshold; it falls one step at
// a time, only when the fill is Hysteresis below the current level's
// threshold and the level has been held for HoldTime, so it does not flap.
type levelMachine struct {
	thresholds [pressure.NumLevels]float64 // thresholds[OK] = 0
	hysteresis float64
	hold       time.Duration

	level pressure.Level
	since time.Time
}

func newLevelMachine(cfg *Config) *levelMachine {
	return &levelMachine{
		thresholds: [pressure.NumLevels]float64{0, cfg.Levels.Elevated, cfg.Levels.High, cfg.Levels.Critical},
		hysteresis: cfg.Hysteresis,
		hold:       cfg.HoldTime,
	}
}

// levelFor is the highest level whose threshold fill reaches.
func (m *levelMachine) levelFor(fill float64) pressure.Level {
	l := pressure.OK
	for i := pressure.Elevated; i < pressure.NumLevels; i++ {
		if fill >= m.thresholds[i] {
			l = i
		}
	}
	return l
}

// update applies one measurement and returns the level.
func (m *levelMachine) update(fill float64, now time.Time) pressure.Level {
	if m.since.IsZero() {
		m.since = now
	}
	switch target := m.levelFor(fill); {
	case target > m.level:
		m.level, m.since = target, now
	case target < m.level && fill < m.thresholds[m.level]-m.hysteresis && now.Sub(m.since) >= m.hold:
		m.level, m.since = m.level-1, now
	}
	return m.level
}

// sample is one measurement, kept for the SLO window and the status page.
type sample struct {
	At    time.Time          `json:"at"`
	Level pressure.Level     `json:"level"`
	Max   float64            `json:"max_fill"`
	Fill  map[string]float64 `json:"fill"`
}

// ring keeps the samples of the longest of the SLO window and the history.
type ring struct {
	keep    time.Duration
	samples []sample
}

func (r *ring) add(s sample) {
	r.samples = append(r.samples, s)
	cut := 0
	for cut < len(r.samples) && s.At.Sub(r.samples[cut].At) > r.keep {
		cut++
	}
	if cut > 0 {
		r.samples = append(r.samples[:0], r.samples[cut:]...)
	}
}

// compliance is the share of samples within window whose fill was below target.
func (r *ring) compliance(window time.Duration, target float64, now time.Time) float64 {
	var in, good int
	for _, s := range r.samples {
		if now.Sub(s.At) > window {
			continue
		}
		in++
		if s.Max < target {
			good++
		}
	}
	if in == 0 {
		return 1
	}
	return float64(good) / float64(in)
}

func (r *ring) since(d time.Duration, now time.Time) []sample {
	for i, s := range r.samples {
		if now.Sub(s.At) <= d {
			return r.samples[i:]
		}
	}
	return nil
}
