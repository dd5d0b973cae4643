// Package tailsamplingcheck checks tail_sampling settings that contrib
// v0.145.0 accepts but cannot run: block_on_overflow without decision
// caches, or with num_traces below 1.
//
// With block_on_overflow: true, tail_sampling stops evicting the oldest trace
// when num_traces traces are held, and waits for room instead. A decided
// trace leaves that map only when its trace ID is put into the decision cache
// of its verdict (decision_cache::sampled_cache_size,
// non_sampled_cache_size); with the default size 0 the cache is a no-op, the
// decided traces stay, the map fills once and the processor waits forever,
// and every receiver of its pipeline with it. The distribution runs this as a
// configuration converter, so `otelcol-fabric validate` refuses the
// configuration instead of a gateway that hangs under its first burst.
package tailsamplingcheck // import "github.com/otelcol-fabric/otelcol-fabric/internal/tailsamplingcheck"

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/confmap"
)

// Check returns an error naming every tail_sampling processor in conf that
// sets block_on_overflow: true without both decision caches or with
// num_traces below 1.
func Check(conf map[string]any) error {
	processors, _ := conf["processors"].(map[string]any)
	names := make([]string, 0, len(processors))
	for name := range processors {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		if t, _, _ := strings.Cut(name, "/"); t != "tail_sampling" {
			continue
		}
		cfg, _ := processors[name].(map[string]any)
		if b, err := strconv.ParseBool(fmt.Sprint(cfg["block_on_overflow"])); err != nil || !b {
			continue
		}
		// tail_sampling has no Validate: num_traces 0 would make every
		// trace wait for a room that never comes.
		if v, ok := cfg["num_traces"]; ok {
			if n, err := strconv.Atoi(fmt.Sprint(v)); err != nil || n < 1 {
				errs = append(errs, fmt.Errorf("processors::%s: num_traces must be at least 1 with block_on_overflow: true, got %v (every new trace would wait forever)", name, v))
			}
		}
		caches, _ := cfg["decision_cache"].(map[string]any)
		var missing []string
		for _, key := range []string{"sampled_cache_size", "non_sampled_cache_size"} {
			if n, err := strconv.Atoi(fmt.Sprint(caches[key])); err != nil || n <= 0 {
				missing = append(missing, "decision_cache::"+key)
			}
		}
		if len(missing) == 0 {
			continue
		}
		errs = append(errs, fmt.Errorf("processors::%s: block_on_overflow: true needs %s above 0: "+
			"tail_sampling removes a decided trace from num_traces only by caching its decision, so without "+
			"the caches num_traces fills once and the processor then waits forever, with every receiver of its pipeline; add\n\n"+
			"processors:\n  %s:\n    decision_cache:\n      sampled_cache_size: 100000\n      non_sampled_cache_size: 100000",
			name, strings.Join(missing, " and "), name))
	}
	return errors.Join(errs...)
}

// NewConverterFactory returns the configuration converter that runs Check
// when the collector loads its configuration.
func NewConverterFactory() confmap.ConverterFactory {
	return confmap.NewConverterFactory(func(confmap.ConverterSettings) confmap.Converter { return checker{} })
}

type checker struct{}

func (checker) Convert(_ context.Context, conf *confmap.Conf) error {
	return Check(conf.ToStringMap())
}
