package benchstatconnector // import "github.com/otelcol-fabric/otelcol-fabric/connectors/benchstatconnector"

import (
	"fmt"
	"strconv"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"
	"golang.org/x/perf/benchunit"
)

// Verdicts.
const (
	verdictRegression      = "regression"
	verdictImprovement     = "improvement"
	verdictNoChange        = "no_change"
	verdictBelowThreshold  = "regression_below_threshold"
	verdictNoBaseline      = "no_baseline"
	verdictChanged         = "changed" // significant, for a unit with no known better direction
	severityRegressionText = "WARN"
)

// comparison is one benchmark and unit of a run against its baseline, as
// benchstat computes and prints it.
type comparison struct {
	old, new benchmath.Summary
	cmp      benchmath.Comparison
	// ratio is new center / old center: 1 when they are equal, +Inf when
	// only the baseline's is 0 (no gobench.delta point then).
	ratio float64
	// delta is benchstat's delta column: "~", "+22.76%", "0.00%" or "?"
	// (significant, from a zero baseline).
	delta string
	// significant: benchstat prints a percentage, not "~" (p <= alpha).
	significant bool
	// better: +1 higher is better, -1 lower is better, 0 unknown (benchfmt's
	// defaults and Unit lines).
	better  int
	verdict string
	// line is the row in benchstat's words: old ± range, new ± range,
	// delta (p=... n=...).
	line string
}

// unitMetadata is the UnitMetadataMap benchstat would have read from Unit
// lines, from what the receiver kept in the metric's metadata.
func unitMetadata(unit, assume, better string) benchfmt.UnitMetadataMap {
	m := benchfmt.UnitMetadataMap{}
	if assume != "" {
		k := benchfmt.UnitMetadataKey{Unit: unit, Key: "assume"}
		m[k] = &benchfmt.UnitMetadata{UnitMetadataKey: k, OrigUnit: unit, Value: assume}
	}
	if better != "" {
		k := benchfmt.UnitMetadataKey{Unit: unit, Key: "better"}
		m[k] = &benchfmt.UnitMetadata{UnitMetadataKey: k, OrigUnit: unit, Value: better}
	}
	return m
}

// compare computes what benchstat prints for one row: each sample's
// summary (median and confidence interval under the unit's assumption),
// the Mann-Whitney U test (or the exact assumption's test), the delta.
func compare(unit, assume, betterMeta string, oldVals, newVals []float64, alpha, confidence, threshold float64) comparison {
	thr := &benchmath.Thresholds{CompareAlpha: alpha}
	units := unitMetadata(unit, assume, betterMeta)
	a := units.GetAssumption(unit)
	os, ns := benchmath.NewSample(oldVals, thr), benchmath.NewSample(newVals, thr)
	c := comparison{old: a.Summary(os, confidence), new: a.Summary(ns, confidence), cmp: a.Compare(os, ns)}
	c.delta = c.cmp.FormatDelta(c.old.Center, c.new.Center)
	c.significant = c.delta != "~"
	c.ratio = c.new.Center / c.old.Center
	if c.new.Center == c.old.Center {
		c.ratio = 1 // 0 allocs/op before and after: no change, not 0/0
	}
	c.better = units.GetBetter(unit)
	scale := benchunit.CommonScale([]float64{c.old.Center, c.new.Center}, benchunit.ClassOf(unit))
	c.line = fmt.Sprintf("%s ± %s  %s ± %s  %s (%s)",
		scale.Format(c.old.Center), c.old.PctRangeString(),
		scale.Format(c.new.Center), c.new.PctRangeString(),
		c.delta, c.cmp.String())
	c.verdict = verdictNoChange
	// A significant change from a zero baseline (0 -> 1 allocs/op) has no
	// percentage (benchstat's delta is "?") and an infinite ratio: its
	// verdict is still the unit's direction, and it is a regression beyond
	// any threshold.
	if c.significant && c.old.Center != c.new.Center {
		worse := (c.better < 0 && c.new.Center > c.old.Center) || (c.better > 0 && c.new.Center < c.old.Center)
		improved := (c.better < 0 && c.new.Center < c.old.Center) || (c.better > 0 && c.new.Center > c.old.Center)
		change := c.ratio - 1
		if change < 0 {
			change = -change
		}
		switch {
		case worse && change >= threshold:
			c.verdict = verdictRegression
		case worse:
			c.verdict = verdictBelowThreshold
		case improved:
			c.verdict = verdictImprovement
		default:
			c.verdict = verdictChanged
		}
	}
	return c
}

// displayName is the name benchstat's rows show, with the Benchmark prefix
// go test prints: BenchmarkSum-2 (GOMAXPROCS 1 has no suffix).
func displayName(name string, procs int64) string {
	if procs <= 1 {
		return name
	}
	return name + "-" + strconv.FormatInt(procs, 10)
}
