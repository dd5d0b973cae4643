package dashboards // import "github.com/otelcol-fabric/otelcol-fabric/internal/dashboards"

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/promql/parser"
)

// Queries returns every PromQL expression of a dashboard's JSON: panel
// targets, annotations, and the series selectors of label_values()
// variables.
func Queries(dashboardJSON []byte) ([]string, error) {
	var doc any
	if err := json.Unmarshal(dashboardJSON, &doc); err != nil {
		return nil, err
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if s, ok := c.(string); ok && k == "expr" {
					out = append(out, s)
				}
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	var vars struct {
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(dashboardJSON, &vars); err != nil {
		return nil, err
	}
	for _, v := range vars.Templating.List {
		q, _ := v.Query.(string)
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			return nil, fmt.Errorf("variable query %q is not label_values(<selector>, <label>)", q)
		}
		out = append(out, m[1])
	}
	sort.Strings(out)
	return out, nil
}

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

// grafanaVars stand in for Grafana's variables, as Grafana substitutes
// them before the query reaches Prometheus.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h", "$__interval", "1m",
	"$service", ".*", "$benchmark", ".*")

// MetricNames parses a dashboard's PromQL expression (Grafana variables
// substituted) with Prometheus' own parser and returns the metric names it
// selects.
func MetricNames(expr string) ([]string, error) {
	e, err := parser.ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == "__name__" {
					name = m.Value
				}
			}
			names = append(names, name)
		}
		return nil
	})
	return names, nil
}
