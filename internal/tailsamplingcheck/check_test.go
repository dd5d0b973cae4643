package tailsamplingcheck

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/confmap"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		ts   map[string]any
		want []string // substrings of the error; none: valid
	}{
		{name: "default", ts: map[string]any{"num_traces": 100}},
		{name: "evicting, no caches", ts: map[string]any{"block_on_overflow": false}},
		{name: "blocking with both caches", ts: map[string]any{"block_on_overflow": true,
			"decision_cache": map[string]any{"sampled_cache_size": 10, "non_sampled_cache_size": "20"}}},
		{name: "blocking, no caches", ts: map[string]any{"block_on_overflow": true},
			want: []string{"processors::tail_sampling/x: block_on_overflow: true needs decision_cache::sampled_cache_size and decision_cache::non_sampled_cache_size above 0", "waits forever", "sampled_cache_size: 100000"}},
		{name: "blocking, no room", ts: map[string]any{"block_on_overflow": true, "num_traces": "0",
			"decision_cache": map[string]any{"sampled_cache_size": 10, "non_sampled_cache_size": 10}},
			want: []string{"processors::tail_sampling/x: num_traces must be at least 1 with block_on_overflow: true, got 0"}},
		{name: "blocking, env string, one cache zero", ts: map[string]any{"block_on_overflow": "true",
			"decision_cache": map[string]any{"sampled_cache_size": 10, "non_sampled_cache_size": 0}},
			want: []string{"needs decision_cache::non_sampled_cache_size above 0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := map[string]any{"processors": map[string]any{"tail_sampling/x": tc.ts, "batch": nil}}
			err := Check(conf)
			if len(tc.want) == 0 {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestConverter(t *testing.T) {
	conv := NewConverterFactory().Create(confmap.ConverterSettings{})
	bad := confmap.NewFromStringMap(map[string]any{"processors": map[string]any{"tail_sampling": map[string]any{"block_on_overflow": true}}})
	assert.ErrorContains(t, conv.Convert(context.Background(), bad), "processors::tail_sampling: block_on_overflow")
	good := confmap.NewFromStringMap(map[string]any{"processors": map[string]any{"tail_sampling": map[string]any{}}})
	assert.NoError(t, conv.Convert(context.Background(), good))
}
