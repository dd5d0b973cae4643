package adaptivesamplingextension

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func parse(t *testing.T, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(doc), &m))
	return m
}

const goodConfig = `
extensions:
  adaptive_sampling:
    target:
      traces_per_second: 50
service:
  extensions: [adaptive_sampling]
processors:
  tail_sampling:
    sample_on_first_match: true
    policies:
      - name: errors
        type: status_code
        status_code: {status_codes: [ERROR]}
      - name: rest
        type: adaptive_sampling
        adaptive_sampling:
          target:
            spans_per_second: 300
`

func TestCheckPolicies(t *testing.T) {
	require.NoError(t, CheckPolicies(parse(t, goodConfig)))
	require.NoError(t, CheckPolicies(parse(t, `processors: {tail_sampling: {policies: [{name: a, type: always_sample}]}}`)), "no adaptive policy, nothing to check")
	require.NoError(t, CheckPolicies(parse(t, goodConfig+`
      - name: junk
        type: drop
        drop: {drop_sub_policy: [{name: d, type: string_attribute, string_attribute: {key: junk, values: ["1"]}}]}
`)), "a drop policy after it: tail_sampling runs drop policies first anyway")

	tests := []struct {
		name, doc string
		want      []string
	}{
		{
			name: "extension not configured",
			doc: `
service: {extensions: [health_check]}
processors:
  tail_sampling:
    sample_on_first_match: true
    policies: [{name: rest, type: adaptive_sampling}]`,
			want: []string{
				`processors::tail_sampling::policies[0] ("rest"): type adaptive_sampling names an extension that is not configured; add it:`,
				"extensions:\n  adaptive_sampling:\n    target:\n      traces_per_second: 100\nservice:\n  extensions: [health_check, adaptive_sampling]",
			},
		},
		{
			name: "extension not enabled",
			doc: `
extensions: {adaptive_sampling/x: {}}
processors:
  tail_sampling:
    sample_on_first_match: true
    policies: [{name: rest, type: adaptive_sampling/x}]`,
			want: []string{"configured but not enabled; add it to the service:\n\nservice:\n  extensions: [adaptive_sampling/x]"},
		},
		{
			name: "not last",
			doc: `
extensions: {adaptive_sampling: {}}
service: {extensions: [adaptive_sampling]}
processors:
  tail_sampling/gw:
    sample_on_first_match: true
    policies: [{name: rest, type: adaptive_sampling}, {name: errors, type: status_code}]`,
			want: []string{`processors::tail_sampling/gw::policies[0] ("rest"): an adaptive_sampling policy must be the last policy, with sample_on_first_match: true`},
		},
		{
			name: "no sample_on_first_match",
			doc: `
extensions: {adaptive_sampling: {}}
service: {extensions: [adaptive_sampling]}
processors:
  tail_sampling:
    policies: [{name: rest, type: adaptive_sampling}]`,
			want: []string{"must be the last policy, with sample_on_first_match: true on tail_sampling"},
		},
		{
			name: "nested",
			doc: `
extensions: {adaptive_sampling: {}}
service: {extensions: [adaptive_sampling]}
processors:
  tail_sampling:
    sample_on_first_match: true
    policies:
      - name: combo
        type: and
        and:
          and_sub_policy: [{name: inner, type: adaptive_sampling}]`,
			want: []string{`processors::tail_sampling::policies[0] ("combo")::and::and_sub_policy[0]: an adaptive_sampling policy can only be a top-level policy`},
		},
		{
			name: "section under another name",
			doc: `
extensions: {adaptive_sampling/x: {}}
service: {extensions: [adaptive_sampling/x]}
processors:
  tail_sampling:
    sample_on_first_match: true
    policies:
      - name: rest
        type: adaptive_sampling/x
        adaptive_sampling:
          key_fields: [span.nam]`,
			want: []string{`section "adaptive_sampling" is ignored: the policy's type is "adaptive_sampling/x"`},
		},
		{
			name: "same name in two processors",
			doc: `
extensions: {adaptive_sampling: {}}
service: {extensions: [adaptive_sampling]}
processors:
  tail_sampling/a:
    sample_on_first_match: true
    policies: [{name: rest, type: adaptive_sampling}]
  tail_sampling/b:
    sample_on_first_match: true
    policies: [{name: rest, type: adaptive_sampling}]`,
			want: []string{`processors::tail_sampling/b::policies[0] ("rest"): another adaptive_sampling policy is named "rest"`},
		},
		{
			name: "bad override",
			doc: `
extensions: {adaptive_sampling: {}}
service: {extensions: [adaptive_sampling]}
processors:
  tail_sampling:
    sample_on_first_match: true
    policies:
      - name: rest
        type: adaptive_sampling
        adaptive_sampling:
          key_fields: [span.name, span.route]
          target: {traces_per_second: -1}`,
			want: []string{
				`processors::tail_sampling::policies[0] ("rest")::adaptive_sampling: key_fields[1]: unknown field "span.route"`,
				"target::traces_per_second: must be positive, got -1",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPolicies(parse(t, tt.doc))
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
