package attrmatch

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeep(t *testing.T) {
	aliases := map[string]string{"env": "deployment.environment.name", "service": "service.name"}
	protected := []string{"service.name", "deployment.environment.name"}
	long := strings.Repeat("k", 64) // same length bucket (mod 64) as the empty key
	for _, tc := range []struct {
		name  string
		rules Rules
		keep  []string
		drop  []string
	}{
		{"no rules", Rules{}, []string{"a", "", long}, nil},
		{"allow by alias and glob", Rules{Allow: []string{"env", "k8s.*", "http.{route,method}"}, Aliases: aliases, Protected: protected},
			[]string{"deployment.environment.name", "service.name", "k8s.pod.name", "http.route"}, []string{"http.url", "user.id", "", long}},
		{"deny pattern spares protected keys", Rules{Deny: []string{"*"}, Aliases: aliases, Protected: protected},
			[]string{"service.name", "deployment.environment.name"}, []string{"x", "k8s.pod.name"}},
		{"exact deny removes a protected key", Rules{Deny: []string{"service", "user.*"}, Aliases: aliases, Protected: protected},
			[]string{"deployment.environment.name", "http.route"}, []string{"service.name", "user.id"}},
		{"lengths collide modulo 64", Rules{Allow: []string{long}},
			[]string{long}, []string{"", strings.Repeat("k", 128), "k"}},
		{"single-character wildcard", Rules{Deny: []string{"re?ry"}}, []string{"retries"}, []string{"retry"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.rules)
			require.NoError(t, err)
			for _, k := range tc.keep {
				assert.True(t, m.Keep(k), "keep %q", k)
			}
			for _, k := range tc.drop {
				assert.False(t, m.Keep(k), "drop %q", k)
			}
		})
	}
}

func TestInvalidPatterns(t *testing.T) {
	for _, p := range []string{"", "http.[route", "[a-"} {
		_, err := CompilePattern(p)
		assert.Error(t, err, "%q", p)
		_, err = New(Rules{Allow: []string{p}})
		assert.Error(t, err, "%q", p)
	}
}
