package adaptivesamplingextension // import "github.com/otelcol-fabric/otelcol-fabric/extensions/adaptivesamplingextension"

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.opentelemetry.io/collector/confmap"

	"github.com/otelcol-fabric/otelcol-fabric/extensions/adaptivesamplingextension/internal/metadata"
)

// subPolicyKeys are where tail_sampling nests policies in a policy.
var subPolicyKeys = []string{"and::and_sub_policy", "composite::composite_sub_policy", "drop::drop_sub_policy", "not::not_sub_policy"}

// CheckPolicies checks the tail_sampling policies that name an
// adaptive_sampling extension, across components, where neither
// tail_sampling's validation nor this extension's can look:
//
//   - the extension is configured and enabled in service::extensions
//     (tail_sampling would otherwise fail at start with "unknown sampling
//     policy type"); the error gives the YAML to add;
//   - the policy is the last top-level policy and tail_sampling has
//     sample_on_first_match: true, so that only traces no other policy kept
//     reach it; the rate it writes on a trace would otherwise over-count a
//     trace that an always-keep policy kept too;
//   - the policy's own keys, laid over the extension's configuration, are
//     valid (the collector validates only the extension's).
//
// The distribution runs this as a configuration converter
// (NewConverterFactory), so `otelcol-fabric validate` reports it.
func CheckPolicies(conf map[string]any) error {
	processors, _ := conf["processors"].(map[string]any)
	extensions, _ := conf["extensions"].(map[string]any)
	service, _ := conf["service"].(map[string]any)
	var enabled []string
	if list, ok := service["extensions"].([]any); ok {
		for _, e := range list {
			enabled = append(enabled, fmt.Sprint(e))
		}
	}
	names := make([]string, 0, len(processors))
	for name := range processors {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	// tail_sampling hands an extension the policy's name alone, which
	// names the policy's telemetry: two adaptive policies of one name (in
	// two tail_sampling processors) would share their metrics.
	byName := map[string]string{}
	for _, pname := range names {
		if typeOf(pname) != "tail_sampling" {
			continue
		}
		pcfg, _ := processors[pname].(map[string]any)
		policies, _ := pcfg["policies"].([]any)
		firstMatch := fmt.Sprint(pcfg["sample_on_first_match"]) == "true"
		// tail_sampling evaluates drop policies first, wherever they are
		// listed: "last" is among the others.
		last := -1
		for i, raw := range policies {
			if pol, _ := raw.(map[string]any); fmt.Sprint(pol["type"]) != "drop" {
				last = i
			}
		}
		for i, raw := range policies {
			pol, _ := raw.(map[string]any)
			name := fmt.Sprint(pol["name"])
			path := fmt.Sprintf("processors::%s::policies[%d] (%q)", pname, i, name)
			typ := fmt.Sprint(pol["type"])
			if typeOf(typ) != metadata.Type.String() {
				errs = append(errs, nested(path, pol)...)
				errs = append(errs, strayKeys(path, typ, pol)...)
				continue
			}
			if err := checkEnabled(path, typ, extensions, enabled); err != nil {
				errs = append(errs, err)
				continue
			}
			if i != last || !firstMatch {
				errs = append(errs, fmt.Errorf("%s: an %s policy must be the last policy, with sample_on_first_match: true on %s, so that it sees only the traces no other policy kept: the rate it writes on the traces it keeps would over-count a trace another policy kept as well", path, metadata.Type, pname))
			}
			if other, dup := byName[name]; dup {
				errs = append(errs, fmt.Errorf("%s: another %s policy is named %q (%s); tail_sampling gives the extension the policy's name only, so their telemetry would mix: name them apart", path, metadata.Type, name, other))
			}
			byName[name] = path
			errs = append(errs, strayKeys(path, typ, pol)...)
			if err := checkOverrides(typ, extensions[typ], pol[typ]); err != nil {
				errs = append(errs, fmt.Errorf("%s::%s: %w", path, typ, err))
			}
		}
	}
	return errors.Join(errs...)
}

// strayKeys reports an adaptive_sampling section under a policy whose type
// is not that exact extension: tail_sampling reads a policy's section under
// its type string (adaptive_sampling/x for type adaptive_sampling/x), and
// would ignore the others without a word.
func strayKeys(path, typ string, pol map[string]any) []error {
	var errs []error
	keys := make([]string, 0, len(pol))
	for k := range pol {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if typeOf(k) == metadata.Type.String() && k != typ {
			errs = append(errs, fmt.Errorf("%s: section %q is ignored: the policy's type is %q, and tail_sampling reads the section named as the type", path, k, typ))
		}
	}
	return errs
}

func typeOf(id string) string {
	t, _, _ := strings.Cut(id, "/")
	return t
}

// nested reports adaptive policies inside and/composite/drop/not policies:
// their verdict is not the trace's, so the rate they write would be wrong.
func nested(path string, pol map[string]any) []error {
	var errs []error
	c := confmap.NewFromStringMap(pol)
	for _, key := range subPolicyKeys {
		v := c.Get(key)
		var subs []any
		switch s := v.(type) {
		case []any:
			subs = s
		case map[string]any:
			subs = []any{s}
		}
		for j, raw := range subs {
			sub, _ := raw.(map[string]any)
			subPath := fmt.Sprintf("%s::%s[%d]", path, key, j)
			if typeOf(fmt.Sprint(sub["type"])) == metadata.Type.String() {
				errs = append(errs, fmt.Errorf("%s: an %s policy can only be a top-level policy (the last one): inside a combined policy its verdict is not the trace's, so the rate it writes would be wrong", subPath, metadata.Type))
				continue
			}
			errs = append(errs, nested(subPath, sub)...)
		}
	}
	return errs
}

func checkEnabled(path, typ string, extensions map[string]any, enabled []string) error {
	_, configured := extensions[typ]
	on := false
	for _, e := range enabled {
		on = on || e == typ
	}
	if configured && on {
		return nil
	}
	list := strings.Join(append(append([]string(nil), enabled...), typ), ", ")
	if configured {
		return fmt.Errorf("%s: type %s names an extension that is configured but not enabled; add it to the service:\n\nservice:\n  extensions: [%s]", path, typ, list)
	}
	return fmt.Errorf("%s: type %s names an extension that is not configured; add it:\n\nextensions:\n  %s:\n    target:\n      traces_per_second: 100\nservice:\n  extensions: [%s]", path, typ, typ, list)
}

func checkOverrides(typ string, extRaw, polRaw any) error {
	base := createDefaultConfig().(*Config)
	if m, ok := extRaw.(map[string]any); ok {
		if err := confmap.NewFromStringMap(m).Unmarshal(base); err != nil {
			return nil // the collector reports the extension's own errors
		}
	}
	if base.Validate() != nil {
		return nil // likewise
	}
	m, _ := polRaw.(map[string]any)
	if polRaw != nil && m == nil {
		return fmt.Errorf("must be a map of %s keys, got %T", typ, polRaw)
	}
	_, err := policyConfig(base, m)
	return err
}

// NewConverterFactory returns the configuration converter that runs
// CheckPolicies when the collector loads its configuration.
func NewConverterFactory() confmap.ConverterFactory {
	return confmap.NewConverterFactory(func(confmap.ConverterSettings) confmap.Converter { return checker{} })
}

type checker struct{}

func (checker) Convert(_ context.Context, conf *confmap.Conf) error {
	return CheckPolicies(conf.ToStringMap())
}
