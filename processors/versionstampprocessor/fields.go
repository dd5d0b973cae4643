package versionstampprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/versionstampprocessor"

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// field is one of the facts a resource is stamped with.
type field int

const (
	fieldVersion field = iota
	fieldCommit
	fieldBuildTime
	fieldEnvironment
	numFields
)

var fields = [numFields]field{fieldVersion, fieldCommit, fieldBuildTime, fieldEnvironment}

// stampOrder is the order a resource's fields are resolved in: the
// environment first, so that the catalog lookup of the other three sees the
// environment however it was found (an env attribute, a namespace label).
var stampOrder = [numFields]field{fieldEnvironment, fieldVersion, fieldCommit, fieldBuildTime}

// name is the field's name in telemetry and in the catalog file.
func (f field) name() string {
	switch f {
	case fieldVersion:
		return "version"
	case fieldCommit:
		return "commit"
	case fieldEnvironment:
		return "environment"
	default:
		return "build_time"
	}
}

func fieldByConfigName(name string) field {
	switch {
	case strings.HasSuffix(name, "version"):
		return fieldVersion
	case strings.HasSuffix(name, "commit"):
		return fieldCommit
	case strings.HasSuffix(name, "environment"):
		return fieldEnvironment
	default:
		return fieldBuildTime
	}
}

// Unix seconds accepted as a build time: 2000-01-01 to 2100-01-01. Anything
// outside is far more likely a mistake (milliseconds, a counter) than a build.
const (
	minUnixBuildTime = 946684800
	maxUnixBuildTime = 4102444800
)

var (
	errEmpty       = errors.New("empty value")
	errNotSemver   = errors.New("not a semantic version (MAJOR.MINOR.PATCH[-pre][+build], a leading v allowed)")
	errNotCommit   = errors.New("not a commit SHA (7 to 40 hex characters)")
	errNotDateTime = errors.New("not a build time (RFC 3339, or Unix seconds between 2000 and 2100)")
)

// normalize validates a value of the field and returns the form it is written
// in: versions as given (trimmed), commits in lower case, build times as RFC
// 3339 in UTC, environments as given (trimmed; any name is valid).
func (f field) normalize(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", errEmpty
	}
	switch f {
	case fieldVersion:
		return s, validateVersion(s)
	case fieldCommit:
		return normalizeCommit(s)
	case fieldEnvironment:
		return s, nil
	default:
		return normalizeBuildTime(s)
	}
}

// validateVersion checks s against Semantic Versioning 2.0.0
// (MAJOR.MINOR.PATCH[-pre][+build], all three numbers required, no leading
// zeros), with an optional leading v. It does not allocate: it runs on every
// resource of the fast path.
func validateVersion(s string) error {
	s = strings.TrimPrefix(s, "v")
	for part := 0; part < 3; part++ {
		n := 0
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		if n == 0 || (n > 1 && s[0] == '0') {
			return errNotSemver
		}
		s = s[n:]
		if part < 2 {
			if s == "" || s[0] != '.' {
				return errNotSemver
			}
			s = s[1:]
		}
	}
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		var err error
		if s, err = semverIdentifiers(rest, true); err != nil {
			return err
		}
	}
	if rest, ok := strings.CutPrefix(s, "+"); ok {
		var err error
		if s, err = semverIdentifiers(rest, false); err != nil {
			return err
		}
	}
	if s != "" {
		return errNotSemver
	}
	return nil
}

// semverIdentifiers consumes dot-separated identifiers ([0-9A-Za-z-]+) up to a
// '+' or the end; pre-release numeric identifiers must not have leading zeros.
func semverIdentifiers(s string, preRelease bool) (string, error) {
	for {
		n, numeric := 0, true
		for n < len(s) && s[n] != '.' && s[n] != '+' {
			c := s[n]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				numeric = false
			default:
				return "", errNotSemver
			}
			n++
		}
		if n == 0 || (preRelease && numeric && n > 1 && s[0] == '0') {
			return "", errNotSemver
		}
		s = s[n:]
		if s == "" || s[0] == '+' {
			return s, nil
		}
		s = s[1:] // '.'
	}
}

func normalizeCommit(s string) (string, error) {
	if len(s) < 7 || len(s) > 40 {
		return "", errNotCommit
	}
	lower := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			lower = false
		default:
			return "", errNotCommit
		}
	}
	if !lower {
		return strings.ToLower(s), nil
	}
	return s, nil
}

func normalizeBuildTime(s string) (string, error) {
	if isDigits(s) {
		secs, err := strconv.ParseInt(s, 10, 64)
		if err != nil || secs < minUnixBuildTime || secs > maxUnixBuildTime {
			return "", errNotDateTime
		}
		return time.Unix(secs, 0).UTC().Format(time.RFC3339), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "", errNotDateTime
	}
	if t.Location() == time.UTC && strings.HasSuffix(s, "Z") && !strings.Contains(s, ".") {
		return s, nil // already canonical: no allocation
	}
	return t.UTC().Format(time.RFC3339), nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// imageTagFacts reads a container image tag: a semantic version gives the
// version; a commit-like tag the commit. Commit-like is hex, 7 to 40
// characters, with a sha-, git- or g prefix, or with at least one letter (so
// that date tags such as 20261124 are not taken for commits).
func imageTagFacts(tag string) (f field, value string, ok bool) {
	tag = strings.TrimSpace(tag)
	if validateVersion(nonEmpty(tag)) == nil {
		return fieldVersion, tag, true
	}
	for _, prefix := range []string{"sha-", "git-", "g"} {
		if rest, found := strings.CutPrefix(tag, prefix); found {
			if c, err := normalizeCommit(rest); err == nil {
				return fieldCommit, c, true
			}
		}
	}
	if c, err := normalizeCommit(tag); err == nil && (len(c) == 40 || strings.ContainsAny(c, "abcdef")) {
		return fieldCommit, c, true
	}
	return 0, "", false
}

// blank reports whether raw is no value at all. For the environment, which
// has no format a value of spaces could fail, that includes only spaces: it is
// absent, not an invalid value to keep under the raw key.
func blank(f field, raw string) bool {
	return raw == "" || (f == fieldEnvironment && strings.TrimSpace(raw) == "")
}

func nonEmpty(s string) string {
	if s == "" {
		return "-" // fails every check
	}
	return s
}

// describe is how an invalid value is named in errors: quoted and bounded.
func describe(f field, raw string, err error) error {
	if len(raw) > 64 {
		raw = raw[:64] + "..."
	}
	return fmt.Errorf("%s %q: %w", f.name(), raw, err)
}
