// Package attrmatch decides which attribute keys an allow/deny rule set keeps:
// exact keys, aliases, glob patterns and protected keys, compiled once and
// matched without allocating. Shared by tagguard and backpressure.
package attrmatch // import "github.com/otelcol-fabric/otelcol-fabric/internal/attrmatch"

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gobwas/glob"
)

// IsGlob reports whether s uses glob syntax.
func IsGlob(s string) bool {
	return strings.ContainsAny(s, "*?[]{}\\")
}

// pattern is one compiled allow or deny entry.
type pattern struct {
	exact  string    // a plain key
	prefix string    // "k8s.*" -> "k8s."
	g      glob.Glob // anything else
}

func CompilePattern(p string) (pattern, error) {
	if p == "" {
		return pattern{}, errors.New("empty pattern")
	}
	if !IsGlob(p) {
		return pattern{exact: p}, nil
	}
	if rest, ok := strings.CutSuffix(p, "*"); ok && !IsGlob(rest) {
		return pattern{prefix: rest}, nil
	}
	g, err := glob.Compile(p)
	if err != nil {
		return pattern{}, fmt.Errorf("invalid glob %q: %w", p, err)
	}
	return pattern{g: g}, nil
}

// Classes of exact keys.
const (
	clsDeny uint8 = 1 << iota
	clsProtected
	clsAllow
)

// maxLinear is the number of same-length exact keys looked up by comparing
// them one by one; longer lists use a map.
const maxLinear = 8

type exactKey struct {
	key string
	cls uint8
}

// Matcher decides, for one rule set, whether an attribute key is kept. It is
// immutable after construction and safe for concurrent use; matching a key
// does not allocate and, for exact keys, usually does not hash: keys are
// found among the few configured keys of the same length.
type Matcher struct {
	// Active is false when there are no rules: every key is kept.
	Active   bool
	hasAllow bool
	// byLen[len(key)%64] lists the exact keys (deny, protected, allow) of
	// that length; a list longer than maxLinear is also in exact.
	byLen [64][]exactKey
	exact map[string]uint8

	denyPrefix  []string
	denyGlobs   []glob.Glob
	allowPrefix []string
	allowGlobs  []glob.Glob

	// exactOnly: no prefixes or globs, so the class of a key decides alone,
	// by the precomputed decide table.
	exactOnly bool
	decide    [8]bool
}

// Rules is what a Matcher is built from. Allow and Deny entries are keys,
// alias names or glob patterns; Aliases map a name to an attribute key;
// Protected keys are kept by every allow list and deny pattern, and removed
// only by a deny entry naming them exactly.
type Rules struct {
	Allow, Deny []string
	Aliases     map[string]string
	Protected   []string
}

func (r Rules) resolve(name string) string {
	if target, ok := r.Aliases[name]; ok {
		return target
	}
	return name
}

// New compiles the rules.
func New(rules Rules) (*Matcher, error) {
	m := &Matcher{exact: map[string]uint8{}, hasAllow: len(rules.Allow) > 0}
	m.Active = len(rules.Allow) > 0 || len(rules.Deny) > 0
	for _, k := range rules.Protected {
		m.exact[rules.resolve(k)] |= clsProtected
	}
	for _, list := range []struct {
		patterns []string
		cls      uint8
		prefixes *[]string
		globs    *[]glob.Glob
	}{
		{rules.Deny, clsDeny, &m.denyPrefix, &m.denyGlobs},
		{rules.Allow, clsAllow, &m.allowPrefix, &m.allowGlobs},
	} {
		for _, raw := range list.patterns {
			p, err := CompilePattern(rules.resolve(raw))
			if err != nil {
				return nil, err
			}
			switch {
			case p.exact != "":
				m.exact[p.exact] |= list.cls
			case p.g == nil:
				*list.prefixes = append(*list.prefixes, p.prefix)
			default:
				*list.globs = append(*list.globs, p.g)
			}
		}
	}
	for k, cls := range m.exact {
		m.byLen[len(k)%64] = append(m.byLen[len(k)%64], exactKey{k, cls})
	}
	m.exactOnly = len(m.denyPrefix) == 0 && len(m.denyGlobs) == 0 && len(m.allowPrefix) == 0 && len(m.allowGlobs) == 0
	for cls := range m.decide {
		m.decide[cls] = m.keepSlow("", uint8(cls))
	}
	return m, nil
}

// Class is the exact-key class of k (0 when no exact entry names it). It and
// Decide are the two halves of Keep, small enough to be inlined on hot paths.
func (m *Matcher) Class(k string) uint8 {
	cands := m.byLen[len(k)%64]
	if len(cands) > maxLinear {
		return m.exact[k]
	}
	// Same length (modulo 64); the last byte tells most keys of a namespace
	// apart (k8s.pod.name, k8s.pod.uid) before the full comparison.
	for i := range cands {
		if c := &cands[i]; len(c.key) == len(k) && c.key[len(k)-1] == k[len(k)-1] && c.key == k {
			return c.cls
		}
	}
	return 0
}

// Keep reports whether the key survives the scope's rules: an exact deny
// removes it; a protected key stays; a deny pattern removes it; without an
// allow list it stays; otherwise it stays if the allow list matches it.
func (m *Matcher) Keep(k string) bool {
	return m.Decide(m.Class(k), k)
}

// Decide is Keep for a key whose Class is known.
func (m *Matcher) Decide(cls uint8, k string) bool {
	if m.exactOnly {
		return m.decide[cls&7]
	}
	return m.keepSlow(k, cls)
}

func (m *Matcher) keepSlow(k string, cls uint8) bool {
	if cls&clsDeny != 0 {
		return false
	}
	if cls&clsProtected != 0 {
		return true
	}
	if (len(m.denyPrefix) > 0 || len(m.denyGlobs) > 0) && matchAny(k, m.denyPrefix, m.denyGlobs) {
		return false
	}
	if !m.hasAllow || cls&clsAllow != 0 {
		return true
	}
	return (len(m.allowPrefix) > 0 || len(m.allowGlobs) > 0) && matchAny(k, m.allowPrefix, m.allowGlobs)
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
