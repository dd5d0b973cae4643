package versionstampprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/versionstampprocessor"

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"
)

// maxCatalogBytes bounds the catalog file: it lists services, not requests.
const maxCatalogBytes = 16 << 20

// catalog maps a service (and optionally its environment) to its facts.
type catalog struct {
	entries map[catalogKey]*[numFields]string
}

type catalogKey struct{ service, environment string }

// catalogFile is the file format; see README.md "Version catalog".
type catalogFile struct {
	Services *[]yaml.Node `yaml:"services"`
}

type catalogEntry struct {
	Service     string `yaml:"service"`
	Environment string `yaml:"environment"`
	Version     string `yaml:"version"`
	Commit      string `yaml:"commit"`
	BuildTime   string `yaml:"build_time"`
}

// lookup returns the entry for the service in the environment, or else the
// service's entry without an environment.
func (c *catalog) lookup(service, environment string) (*[numFields]string, bool) {
	if c == nil || service == "" {
		return nil, false
	}
	if environment != "" {
		if v, ok := c.entries[catalogKey{service, environment}]; ok {
			return v, true
		}
	}
	v, ok := c.entries[catalogKey{service, ""}]
	return v, ok
}

func (c *catalog) size() int {
	if c == nil {
		return 0
	}
	return len(c.entries)
}

func loadCatalogFile(path string) (*catalog, error) {
	data, err := readCatalogFile(path)
	if err != nil {
		return nil, err
	}
	c, err := parseCatalog(data)
	if err != nil {
		return nil, fmt.Errorf("version catalog %s: %w", path, err)
	}
	return c, nil
}

func readCatalogFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("version catalog: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCatalogBytes+1))
	if err != nil {
		return nil, fmt.Errorf("version catalog %s: %w", path, err)
	}
	if len(data) > maxCatalogBytes {
		return nil, fmt.Errorf("version catalog %s: larger than %d bytes", path, maxCatalogBytes)
	}
	return data, nil
}

// parseCatalog decodes and validates a catalog. Each error names the line it
// concerns; the caller prefixes the path.
func parseCatalog(data []byte) (*catalog, error) {
	var file catalogFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return nil, errors.New(strings.TrimPrefix(yamlErrorText(err), "yaml: "))
	}
	// A file without a services list is an error, not an empty catalog: a
	// deploy pipeline that truncates the file before writing it (rather
	// than renaming a complete file into place) must not wipe the versions
	// of every service for a reload interval. "services: []" is an empty
	// catalog on purpose.
	if file.Services == nil {
		if len(bytes.TrimSpace(data)) == 0 {
			return nil, errors.New("the file is empty")
		}
		return nil, errors.New("no services list (write services: [] for an empty catalog)")
	}
	services := *file.Services
	c := &catalog{entries: make(map[catalogKey]*[numFields]string, len(services))}
	lines := map[catalogKey]int{}
	var errs []error
	for i := range services {
		node := &services[i]
		var e catalogEntry
		if line, err := decodeStrict(node, &e); err != nil {
			errs = append(errs, fmt.Errorf("line %d: services[%d]: %s", line, i, yamlErrorText(err)))
			continue
		}
		if e.Service == "" {
			errs = append(errs, fmt.Errorf("line %d: services[%d]: service is required", node.Line, i))
			continue
		}
		key := catalogKey{e.Service, e.Environment}
		if prev, dup := lines[key]; dup {
			errs = append(errs, fmt.Errorf("line %d: services[%d]: service %q environment %q is already listed at line %d", node.Line, i, e.Service, e.Environment, prev))
			continue
		}
		lines[key] = node.Line
		var values [numFields]string
		empty := true
		for f, raw := range [numFields]string{e.Version, e.Commit, e.BuildTime} {
			if raw == "" {
				continue
			}
			empty = false
			v, err := field(f).normalize(raw)
			if err != nil {
				errs = append(errs, fmt.Errorf("line %d: services[%d] (%s): %w", node.Line, i, e.Service, describe(field(f), raw, err)))
				continue
			}
			values[f] = v
		}
		if empty {
			errs = append(errs, fmt.Errorf("line %d: services[%d] (%s): none of version, commit, build_time is set", node.Line, i, e.Service))
		}
		c.entries[key] = &values
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// decodeStrict decodes one entry, rejecting unknown keys and non-scalar values
// (Node.Decode alone accepts both); it returns the line of the first problem.
func decodeStrict(node *yaml.Node, out *catalogEntry) (int, error) {
	if node.Kind != yaml.MappingNode {
		return node.Line, errors.New("an entry must be a mapping of service, environment, version, commit, build_time")
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		switch k := node.Content[i]; k.Value {
		case "service", "environment", "version", "commit", "build_time":
			if v := node.Content[i+1]; v.Kind != yaml.ScalarNode {
				return v.Line, fmt.Errorf("%s must be a string", k.Value)
			}
		default:
			return k.Line, fmt.Errorf("unknown key %q (valid: service, environment, version, commit, build_time)", k.Value)
		}
	}
	return node.Line, node.Decode(out)
}

func yamlErrorText(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return fmt.Sprint(te.Errors)
	}
	return err.Error()
}

// catalogWatcher holds the catalog in use and reloads it when the file changes.
// A failed reload keeps the last good catalog.
type catalogWatcher struct {
	path     string
	interval time.Duration
	logger   *zap.Logger
	// onLoad reports each load attempt's outcome and the entries in use.
	onLoad func(ok bool, entries int)

	current  atomic.Pointer[catalog]
	lastHash [sha256.Size]byte
	lastErr  string

	stop chan struct{}
	done sync.WaitGroup
}

func newCatalogWatcher(path string, interval time.Duration, logger *zap.Logger, onLoad func(bool, int)) *catalogWatcher {
	return &catalogWatcher{path: path, interval: interval, logger: logger, onLoad: onLoad}
}

// start loads the catalog (failing if it cannot) and starts the reload loop.
func (w *catalogWatcher) start() error {
	if err := w.reload(); err != nil {
		return err
	}
	w.stop = make(chan struct{})
	w.done.Add(1)
	go w.loop()
	return nil
}

func (w *catalogWatcher) shutdown(ctx context.Context) error {
	if w.stop == nil {
		return nil
	}
	close(w.stop)
	finished := make(chan struct{})
	go func() { w.done.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *catalogWatcher) loop() {
	defer w.done.Done()
	ticker := time.NewTicker(w.interval)
	defer ticker.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-ticker.C:
			_ = w.reload() // reported by reload itself
		}
	}
}

// reload reads the file and, when its content changed, parses and swaps it in.
func (w *catalogWatcher) reload() error {
	data, err := readCatalogFile(w.path)
	var c *catalog
	if err == nil {
		hash := sha256.Sum256(data)
		if hash == w.lastHash && w.current.Load() != nil {
			return nil // unchanged
		}
		c, err = parseCatalog(data)
		if err != nil {
			err = fmt.Errorf("version catalog %s: %w", w.path, err)
		} else {
			w.lastHash = hash
		}
	}
	if err != nil {
		// Report a failure once per distinct error, not on every tick.
		if msg := err.Error(); msg != w.lastErr {
			w.lastErr = msg
			w.onLoad(false, w.current.Load().size())
			if w.current.Load() != nil {
				w.logger.Error("Version catalog reload failed; keeping the last good catalog. Fix the file: it is re-read every reload_interval.",
					zap.String("path", w.path), zap.Int("entries_in_use", w.current.Load().size()), zap.Error(err))
			}
		}
		return err
	}
	w.lastErr = ""
	w.current.Store(c)
	w.onLoad(true, c.size())
	w.logger.Info("Version catalog loaded", zap.String("path", w.path), zap.Int("entries", c.size()))
	return nil
}

func (w *catalogWatcher) catalog() *catalog {
	if w == nil {
		return nil
	}
	return w.current.Load()
}
