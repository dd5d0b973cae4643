package pprofconv // import "github.com/otelcol-fabric/otelcol-fabric/internal/pprofconv"

import (
	"strings"

	"github.com/google/pprof/profile"
)

// AttrProfileName is the OTLP profile attribute that carries Pyroscope's
// profile name (the __name__ series label: process_cpu, memory, mutex,
// block, goroutines, wall, ...), set by the pyroscope receiver from what the
// client sent and read by the profilelink exporter.
const AttrProfileName = "pyroscope.profile.name"

// ProfileName is Pyroscope's profile name for a pprof profile, computed as
// Pyroscope's own /ingest handler does for pprof uploads
// (pkg/og/convert/pprof/profile.go, RawProfile.metricName, v2.2.1): the
// first sample type whose name (or display name from the client's
// sample_type_config) says what it measures. pyroscope-go names mutex and
// block profiles only through display names (both have the sample types
// contentions and delay). A profile no rule matches takes its period type
// (samples of a cpu period are process_cpu, as Pyroscope's OTLP ingest
// decides), then its first sample type.
func ProfileName(p *profile.Profile, displayNames map[string]string) string {
	var types []string
	for _, st := range p.SampleType {
		types = append(types, st.Type)
	}
	period := ""
	if p.PeriodType != nil {
		period = p.PeriodType.Type
	}
	return profileName(types, period, displayNames)
}

// defaultDisplayNames is Pyroscope's tree.DefaultSampleTypeMapping (the
// display names), used when an upload brings no sample_type_config.
var defaultDisplayNames = map[string]string{
	"samples":     "cpu",
	"goroutine":   "goroutines",
	"contentions": "mutex_count",
	"delay":       "mutex_duration",
}

// legacyNames maps the profile-type suffix of a legacy application name
// (app.inuse_space{...}) to the profile name, as Pyroscope's ingest adapter
// does for collapsed-stack uploads (pkg/ingester/pyroscope/ingest_adapter.go
// convertMetadata).
var legacyNames = map[string]string{
	"cpu": "process_cpu", "itimer": "process_cpu", "wall": "wall",
	"inuse_objects": "memory", "inuse_space": "memory", "alloc_objects": "memory", "alloc_space": "memory",
	"goroutines":  "goroutine",
	"mutex_count": "mutex", "mutex_duration": "mutex",
	"block_count": "block", "block_duration": "block",
}

// LegacyProfileName is the profile name of a collapsed-stack upload whose
// application name carried a profile-type suffix, or "" for an unknown one.
func LegacyProfileName(suffix string) string {
	return legacyNames[suffix]
}

func profileName(sampleTypes []string, periodType string, displayNames map[string]string) string {
	if displayNames == nil {
		displayNames = defaultDisplayNames
	}
	for _, st := range sampleTypes {
		if st == "wall" {
			return st
		}
	}
	for _, st := range sampleTypes {
		if d := displayNames[st]; d != "" {
			st = d
		}
		switch {
		case strings.Contains(st, "cpu"):
			return "process_cpu"
		case strings.Contains(st, "alloc_"), strings.Contains(st, "inuse_"), st == "space", st == "objects":
			return "memory"
		case strings.Contains(st, "mutex_"):
			return "mutex"
		case strings.Contains(st, "block_"):
			return "block"
		case strings.Contains(st, "goroutine"):
			return "goroutines"
		}
	}
	if strings.Contains(periodType, "cpu") {
		return "process_cpu"
	}
	if len(sampleTypes) > 0 && sampleTypes[0] != "" {
		return sampleTypes[0]
	}
	return "unknown"
}
