// Command gen writes otelcol-fabric's Grafana dashboards (package
// dashboards) to deploy/docker/grafana/dashboards. Run from the
// repository root: go run ./internal/dashboards/gen
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/otelcol-fabric/otelcol-fabric/internal/dashboards"
)

func main() {
	for name, b := range dashboards.All() {
		out, err := dashboards.Render(b)
		if err == nil {
			err = os.WriteFile(filepath.Join(dashboards.Dir, name), out, 0o644)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "gen: %s: %v\n", name, err)
			os.Exit(1)
		}
	}
}
