package dashboards

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGeneratedFilesUpToDate: the dashboards shipped under deploy/ are what
// the code generates (go run ./internal/dashboards/gen).
func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", Dir, "*.json"))
	require.NoError(t, err)
	all := All()
	assert.Len(t, files, len(all), "a dashboard file the code does not generate")
	for name, b := range all {
		want, err := Render(b)
		require.NoError(t, err, name)
		got, err := os.ReadFile(filepath.Join("..", "..", Dir, name))
		require.NoError(t, err, "%s: run go run ./internal/dashboards/gen", name)
		assert.Equal(t, string(want), string(got), "%s is stale: run go run ./internal/dashboards/gen", name)
	}
}

// TestQueriesParse: every query of every dashboard parses as PromQL and
// selects a named metric.
func TestQueriesParse(t *testing.T) {
	for name, b := range All() {
		raw, err := Render(b)
		require.NoError(t, err)
		qs, err := Queries(raw)
		require.NoError(t, err, name)
		require.NotEmpty(t, qs, name)
		for _, q := range qs {
			names, err := MetricNames(q)
			require.NoError(t, err, "%s: %s", name, q)
			assert.NotEmpty(t, names, "%s: %s selects no metric", name, q)
			for _, n := range names {
				assert.NotEmpty(t, n, "%s: %s has a selector without a metric name", name, q)
			}
		}
	}
}

func TestMetricNamesRefusesBadPromQL(t *testing.T) {
	_, err := MetricNames(`sum by (x (rate(foo[5m]))`)
	assert.Error(t, err)
	names, err := MetricNames(`a{x=~"$service"} / on (x) rate(b_total[$__rate_interval])`)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b_total"}, names)
}
