package queuewatchextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/queuewatchextension"

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
)

// typesWithoutQueue are exporter types that have no exporterhelper sending
// queue, so report no queue size: watching one is a configuration error.
var typesWithoutQueue = map[string]bool{"debug": true, "file": true, "prometheus": true, "nop": true}

// CheckExporters checks, against the whole collector configuration, that
// every exporter a queuewatch extension watches is configured and has a
// sending queue. A component's own Validate cannot see other components, so
// the distribution runs this as a configuration converter (NewConverterFactory).
func CheckExporters(conf map[string]any) error {
	extensions, _ := conf["extensions"].(map[string]any)
	exporters, _ := conf["exporters"].(map[string]any)
	configured := make([]string, 0, len(exporters))
	for name := range exporters {
		configured = append(configured, name)
	}
	sort.Strings(configured)
	var errs []error
	names := make([]string, 0, len(extensions))
	for name := range extensions {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		var id component.ID
		if id.UnmarshalText([]byte(name)) != nil || id.Type().String() != "queuewatch" {
			continue
		}
		cfg, _ := extensions[name].(map[string]any)
		watched, _ := cfg["exporters"].([]any)
		for i, raw := range watched {
			exp := fmt.Sprint(raw)
			ecfg, ok := exporters[exp]
			if !ok {
				errs = append(errs, fmt.Errorf("extensions::%s: exporters[%d]: %q is not configured under exporters (configured: %s)",
					name, i, exp, strings.Join(configured, ", ")))
				continue
			}
			typ, _, _ := strings.Cut(exp, "/")
			if typesWithoutQueue[typ] {
				errs = append(errs, fmt.Errorf("extensions::%s: exporters[%d]: %q has no sending queue to watch (type %s)", name, i, exp, typ))
				continue
			}
			m, _ := ecfg.(map[string]any)
			if q, ok := m["sending_queue"].(map[string]any); ok {
				if enabled, ok := q["enabled"].(bool); ok && !enabled {
					errs = append(errs, fmt.Errorf("extensions::%s: exporters[%d]: %q has sending_queue::enabled: false, so no queue to watch", name, i, exp))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// NewConverterFactory returns the configuration converter that runs
// CheckExporters when the collector loads its configuration.
func NewConverterFactory() confmap.ConverterFactory {
	return confmap.NewConverterFactory(func(confmap.ConverterSettings) confmap.Converter { return checker{} })
}

type checker struct{}

func (checker) Convert(_ context.Context, conf *confmap.Conf) error {
	return CheckExporters(conf.ToStringMap())
}
