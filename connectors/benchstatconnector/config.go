// Package benchstatconnector compares each benchmark run the gobench
// receiver ingests with a baseline run, with benchstat's statistics
// (golang.org/x/perf/benchmath), and emits the deltas as metrics and
// significant regressions as WARN log records.
package benchstatconnector // import "github.com/otelcol-fabric/otelcol-fabric/connectors/benchstatconnector"

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
)

// Config configures the benchstat connector. Every field is documented in
// README.md.
type Config struct {
	// BaselineBranch: a run's baseline is the last run of the same service
	// on this branch (vcs.ref.head.name), unless the run names one
	// (benchmark.baseline.run.id).
	BaselineBranch string `mapstructure:"baseline_branch"`
	// Alpha is the significance level of the Mann-Whitney U test
	// (benchstat -alpha).
	Alpha float64 `mapstructure:"alpha"`
	// Confidence is the confidence level of the intervals (benchstat
	// -confidence).
	Confidence float64 `mapstructure:"confidence"`
	// RegressionThreshold: a significant regression of at least this
	// fraction of the baseline (0.05: 5%) is logged at WARN.
	RegressionThreshold float64 `mapstructure:"regression_threshold"`
	// MaxRuns bounds the runs held (the oldest go first).
	MaxRuns int `mapstructure:"max_runs"`
	// MaxSeriesPerRun bounds the benchmark series (benchmark x unit) held
	// per run.
	MaxSeriesPerRun int `mapstructure:"max_series_per_run"`
	// Storage is a storage extension (file_storage) that keeps the runs
	// across restarts; none: in memory only.
	Storage *component.ID `mapstructure:"storage"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.BaselineBranch == "" {
		errs = append(errs, errors.New("baseline_branch: must be set (e.g. main)"))
	}
	if !(cfg.Alpha > 0 && cfg.Alpha < 1) {
		errs = append(errs, fmt.Errorf("alpha: must be in (0, 1), got %v", cfg.Alpha))
	}
	if !(cfg.Confidence > 0 && cfg.Confidence < 1) {
		errs = append(errs, fmt.Errorf("confidence: must be in (0, 1), got %v", cfg.Confidence))
	}
	if cfg.RegressionThreshold < 0 {
		errs = append(errs, fmt.Errorf("regression_threshold: must not be negative, got %v", cfg.RegressionThreshold))
	}
	if cfg.MaxRuns < 2 {
		errs = append(errs, fmt.Errorf("max_runs: must be at least 2 (a run and its baseline), got %d", cfg.MaxRuns))
	}
	if cfg.MaxSeriesPerRun <= 0 {
		errs = append(errs, fmt.Errorf("max_series_per_run: must be positive, got %d", cfg.MaxSeriesPerRun))
	}
	return errors.Join(errs...)
}
