package pprofconv

import (
	"testing"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/assert"
)

func TestProfileName(t *testing.T) {
	for _, tc := range []struct {
		types   []string
		period  string
		display map[string]string
		want    string
	}{
		{[]string{"samples", "cpu"}, "cpu", nil, "process_cpu"}, // pyroscope-go CPU
		{[]string{"samples"}, "cpu", nil, "process_cpu"},        // its first sample type alone, as the receiver splits it
		{[]string{"cpu"}, "cpu", nil, "process_cpu"},
		{[]string{"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"}, "space", nil, "memory"},
		{[]string{"inuse_space"}, "", nil, "memory"},
		{[]string{"goroutine"}, "goroutine", map[string]string{"goroutine": "goroutines"}, "goroutines"},
		{[]string{"contentions", "delay"}, "contentions", map[string]string{"contentions": "mutex_count", "delay": "mutex_duration"}, "mutex"},
		{[]string{"contentions", "delay"}, "contentions", map[string]string{"contentions": "block_count", "delay": "block_duration"}, "block"},
		{[]string{"samples", "wall"}, "wall", nil, "wall"},
		{[]string{"contentions", "delay"}, "contentions", nil, "mutex"}, // Pyroscope's default display names
		{[]string{"goroutine"}, "", nil, "goroutines"},
		{[]string{"samples"}, "", nil, "process_cpu"},             // default display name cpu
		{[]string{"samples"}, "", map[string]string{}, "samples"}, // a config without it: no default
		{[]string{"lock_count"}, "", nil, "lock_count"},           // nothing matches: its own name
		{nil, "", nil, "unknown"},
	} {
		p := &profile.Profile{}
		for _, st := range tc.types {
			p.SampleType = append(p.SampleType, &profile.ValueType{Type: st})
		}
		if tc.period != "" {
			p.PeriodType = &profile.ValueType{Type: tc.period}
		}
		assert.Equal(t, tc.want, ProfileName(p, tc.display), "%v %s %v", tc.types, tc.period, tc.display)
	}
}

func TestLegacyProfileName(t *testing.T) {
	assert.Equal(t, "memory", LegacyProfileName("inuse_space"))
	assert.Equal(t, "process_cpu", LegacyProfileName("cpu"))
	assert.Equal(t, "block", LegacyProfileName("block_duration"))
	assert.Empty(t, LegacyProfileName("nope"))
}
