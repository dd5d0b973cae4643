package versionstampprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/versionstampprocessor"

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
)

// Source names, in the order of the default priority.
const (
	sourceResource   = "resource"
	sourceKubernetes = "kubernetes"
	sourceCatalog    = "catalog"
	sourceStatic     = "static"
)

var knownSources = []string{sourceResource, sourceKubernetes, sourceCatalog, sourceStatic}

// Config configures the versionstamp processor. Every field is documented in
// README.md.
type Config struct {
	// Keys are the resource attribute keys the facts are written under.
	Keys Keys `mapstructure:"keys"`
	// Sources lists where values are looked for, highest priority first.
	Sources []string `mapstructure:"sources"`
	// Override lets the sources replace a valid value the data already carries
	// under an output key. Off by default: data is never overwritten.
	Override bool `mapstructure:"override"`
	// Aliases are legacy resource attribute keys read by the resource source
	// and normalised to the output keys.
	Aliases Aliases `mapstructure:"aliases"`
	// KeepAliases keeps the alias attributes after normalisation; by default
	// they are removed, so each fact is carried once, under its output key.
	KeepAliases bool `mapstructure:"keep_aliases"`
	// Kubernetes names the attributes (as k8sattributes writes them) the
	// kubernetes source reads.
	Kubernetes KubernetesSource `mapstructure:"kubernetes"`
	// Catalog is the version catalog file a deploy pipeline writes.
	Catalog CatalogSource `mapstructure:"catalog"`
	// Static values, typically ${env:...} references, for collectors that
	// serve a single service (a sidecar).
	Static Values `mapstructure:"static"`
	// UnknownValue is written when no source has a valid value; empty leaves
	// the key absent. A value equal to it is treated as absent on input.
	UnknownValue string `mapstructure:"unknown_value"`
	// RawSuffix is appended to an output key to keep an invalid value that
	// came with the data.
	RawSuffix string `mapstructure:"raw_suffix"`
	// Collector optionally stamps the otelcol-fabric build that handled the data.
	Collector CollectorStamp `mapstructure:"collector"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Keys are the output attribute keys.
type Keys struct {
	Version     string `mapstructure:"version"`
	Commit      string `mapstructure:"commit"`
	BuildTime   string `mapstructure:"build_time"`
	Environment string `mapstructure:"environment"`
}

// Aliases are the legacy keys of each fact.
type Aliases struct {
	Version     []string `mapstructure:"version"`
	Commit      []string `mapstructure:"commit"`
	BuildTime   []string `mapstructure:"build_time"`
	Environment []string `mapstructure:"environment"`
}

// Values are one value of each fact.
type Values struct {
	Version     string `mapstructure:"version"`
	Commit      string `mapstructure:"commit"`
	BuildTime   string `mapstructure:"build_time"`
	Environment string `mapstructure:"environment"`
}

// KubernetesSource names the resource attributes that carry Kubernetes metadata.
type KubernetesSource struct {
	// VersionKeys carry a version, e.g. the app.kubernetes.io/version pod label.
	VersionKeys []string `mapstructure:"version_keys"`
	// ImageTagKeys carry a container image tag: a semantic-version tag gives
	// the version, a commit-like tag (hex, optionally sha- or git- prefixed)
	// the commit; other tags (latest, main) are ignored.
	ImageTagKeys []string `mapstructure:"image_tag_keys"`
	// RevisionKeys carry a commit, e.g. the org.opencontainers.image.revision annotation.
	RevisionKeys []string `mapstructure:"revision_keys"`
	// CreatedKeys carry a build time, e.g. the org.opencontainers.image.created annotation.
	CreatedKeys []string `mapstructure:"created_keys"`
	// EnvironmentKeys carry the deployment environment, e.g. an environment
	// label of the pod or of its namespace.
	EnvironmentKeys []string `mapstructure:"environment_keys"`
}

// CatalogSource configures the version catalog.
type CatalogSource struct {
	// Path of the catalog file; empty leaves the catalog source inactive.
	Path string `mapstructure:"path"`
	// ReloadInterval is how often the file is checked for changes.
	ReloadInterval time.Duration `mapstructure:"reload_interval"`
	// EnvironmentKeys are the resource attributes that name the environment
	// for environment-specific catalog entries, first found wins.
	EnvironmentKeys []string `mapstructure:"environment_keys"`
}

// CollectorStamp configures stamping the collector's own build.
type CollectorStamp struct {
	Enabled    bool   `mapstructure:"enabled"`
	VersionKey string `mapstructure:"version_key"`
	CommitKey  string `mapstructure:"commit_key"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration and, when a catalog path is set, loads the
// catalog once so that a broken file is reported with its line before start.
func (cfg *Config) Validate() error {
	var errs []error
	outputs := map[string]string{}
	for _, k := range []struct{ name, key string }{
		{"keys::version", cfg.Keys.Version},
		{"keys::commit", cfg.Keys.Commit},
		{"keys::build_time", cfg.Keys.BuildTime},
		{"keys::environment", cfg.Keys.Environment},
	} {
		switch prev, dup := outputs[k.key]; {
		case k.key == "":
			errs = append(errs, fmt.Errorf("%s must not be empty", k.name))
		case dup:
			errs = append(errs, fmt.Errorf("%s: %q is already the key of %s", k.name, k.key, prev))
		default:
			outputs[k.key] = k.name
		}
	}

	if len(cfg.Sources) == 0 {
		errs = append(errs, fmt.Errorf("sources must name at least one of %s", strings.Join(knownSources, ", ")))
	}
	seen := map[string]bool{}
	for i, s := range cfg.Sources {
		switch {
		case !slices.Contains(knownSources, s):
			errs = append(errs, fmt.Errorf("sources[%d]: unknown source %q (valid: %s)", i, s, strings.Join(knownSources, ", ")))
		case seen[s]:
			errs = append(errs, fmt.Errorf("sources[%d]: %q is listed twice", i, s))
		}
		seen[s] = true
	}

	aliasOwner := map[string]string{}
	for _, a := range []struct {
		name string
		keys []string
	}{
		{"aliases::version", cfg.Aliases.Version},
		{"aliases::commit", cfg.Aliases.Commit},
		{"aliases::build_time", cfg.Aliases.BuildTime},
		{"aliases::environment", cfg.Aliases.Environment},
	} {
		for _, key := range a.keys {
			switch {
			case key == "":
				errs = append(errs, fmt.Errorf("%s: empty key", a.name))
			case outputs[key] != "":
				errs = append(errs, fmt.Errorf("%s: %q is an output key (%s), not an alias", a.name, key, outputs[key]))
			case aliasOwner[key] != "":
				errs = append(errs, fmt.Errorf("%s: %q is already an alias in %s", a.name, key, aliasOwner[key]))
			default:
				aliasOwner[key] = a.name
			}
		}
	}

	if cfg.RawSuffix == "" {
		errs = append(errs, errors.New("raw_suffix must not be empty: invalid values that came with the data are kept under <key><raw_suffix>"))
	}
	if cfg.UnknownValue != "" && isValid(cfg.UnknownValue) {
		errs = append(errs, fmt.Errorf("unknown_value %q would pass as a real version or commit; choose a marker that cannot", cfg.UnknownValue))
	}

	for _, v := range []struct{ name, value string }{
		{"static::version", cfg.Static.Version},
		{"static::commit", cfg.Static.Commit},
		{"static::build_time", cfg.Static.BuildTime},
		{"static::environment", cfg.Static.Environment},
	} {
		if v.value == "" {
			continue
		}
		if _, err := fieldByConfigName(v.name).normalize(v.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", v.name, err))
		}
	}

	if cfg.Catalog.Path != "" {
		if cfg.Catalog.ReloadInterval <= 0 {
			errs = append(errs, fmt.Errorf("catalog::reload_interval must be positive, got %s", cfg.Catalog.ReloadInterval))
		}
		if _, err := loadCatalogFile(cfg.Catalog.Path); err != nil {
			errs = append(errs, fmt.Errorf("catalog::path: %w", err))
		}
	}
	if cfg.Collector.Enabled && (cfg.Collector.VersionKey == "" || cfg.Collector.CommitKey == "") {
		errs = append(errs, errors.New("collector::version_key and collector::commit_key must be set when collector::enabled is true"))
	}
	return errors.Join(errs...)
}

// isValid reports whether s passes as a version, commit or build time. Any
// name passes as an environment, so that field is left out: the marker is
// recognised there by equality.
func isValid(s string) bool {
	for _, f := range fields {
		if f == fieldEnvironment {
			continue
		}
		if _, err := f.normalize(s); err == nil {
			return true
		}
	}
	return false
}
