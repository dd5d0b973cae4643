package tagguardprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor"

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gobwas/glob"
)

// isGlob reports whether s uses glob syntax.
func isGlob(s string) bool {
	return strings.ContainsAny(s, "*?[]{}\\")
}

// pattern is one compiled allow or deny entry.
type pattern struct {
	exact  string    // a plain key
	prefix string    // "k8s.*" -> "k8s."
	g      glob.Glob // anything else
}

func compilePattern(p string) (pattern, error) {
	if p == "" {
		return pattern{}, errors.New("empty pattern")
	}
	if !isGlob(p) {
		return pattern{exact: p}, nil
	}
	if rest, ok := strings.CutSuffix(p, "*"); ok && !isGlob(rest) {
		return pattern{prefix: rest}, nil
	}
	g, err := glob.Compile(p)
	if err != nil {
		return pattern{}, fmt.Errorf("invalid glob %q: %w", p, err)
	}
	return pattern{g: g}, nil
}

// matcher decides, for one scope, whether an attribute key is kept. It is
// immutable after construction and safe for concurrent use; matching a key
// does not allocate.
type matcher struct {
	// active is false when the scope has no rules: every key is kept.
	active bool
	// denyExact are keys a deny entry names exactly (after alias
	// resolution); they win even over protected keys.
	denyExact   map[string]struct{}
	denyPrefix  []string
	denyGlobs   []glob.Glob
	protected   map[string]struct{}
	hasAllow    bool
	allowExact  map[string]struct{}
	allowPrefix []string
	allowGlobs  []glob.Glob
}

func newMatcher(cfg *Config, rules ScopeRules) (*matcher, error) {
	m := &matcher{
		denyExact:  map[string]struct{}{},
		protected:  map[string]struct{}{},
		allowExact: map[string]struct{}{},
		hasAllow:   len(rules.Allow) > 0,
	}
	m.active = len(rules.Allow) > 0 || len(rules.Deny) > 0
	for _, k := range cfg.ProtectedKeys {
		m.protected[cfg.resolve(k)] = struct{}{}
	}
	for _, raw := range rules.Deny {
		p, err := compilePattern(cfg.resolve(raw))
		if err != nil {
			return nil, err
		}
		switch {
		case p.exact != "":
			m.denyExact[p.exact] = struct{}{}
		case p.g == nil:
			m.denyPrefix = append(m.denyPrefix, p.prefix)
		default:
			m.denyGlobs = append(m.denyGlobs, p.g)
		}
	}
	for _, raw := range rules.Allow {
		p, err := compilePattern(cfg.resolve(raw))
		if err != nil {
			return nil, err
		}
		switch {
		case p.exact != "":
			m.allowExact[p.exact] = struct{}{}
		case p.g == nil:
			m.allowPrefix = append(m.allowPrefix, p.prefix)
		default:
			m.allowGlobs = append(m.allowGlobs, p.g)
		}
	}
	return m, nil
}

// keep reports whether the key survives the scope's rules.
func (m *matcher) keep(k string) bool {
	if _, denied := m.denyExact[k]; denied {
		return false
	}
	if _, ok := m.protected[k]; ok {
		return true
	}
	if matchAny(k, m.denyPrefix, m.denyGlobs) {
		return false
	}
	if !m.hasAllow {
		return true
	}
	if _, ok := m.allowExact[k]; ok {
		return true
	}
	return matchAny(k, m.allowPrefix, m.allowGlobs)
}

func matchAny(k string, prefixes []string, globs []glob.Glob) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	for _, g := range globs {
		if g.Match(k) {
			return true
		}
	}
	return false
}
