// Package dashboards builds otelcol-fabric's Grafana dashboards as code
// (grafana-foundation-sdk): the queue SLO, correlation coverage, and
// benchmark trends. `go run ./internal/dashboards/gen` writes them to
// deploy/docker/grafana/dashboards, where the compose stack provisions them
// and any Grafana can import them.
package dashboards // import "github.com/otelcol-fabric/otelcol-fabric/internal/dashboards"

// The classic dashboard model (package dashboard) is deprecated in the SDK
// in favour of dashboardv2, whose JSON is served by Grafana 12's v2
// dashboard API; the classic JSON is what file provisioning and Import take
// in any Grafana, which is what these files are for.

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// builder is the classic model's dashboard builder (see the note above).
type builder = dashboard.DashboardBuilder //nolint:staticcheck // classic model, on purpose

// Dir is where the generated dashboards live, from the repository root.
const Dir = "deploy/docker/grafana/dashboards"

// promDS is the Prometheus data source of deploy/docker's Grafana (uid
// prometheus); in another Grafana, pick yours on import.
func promDS() common.DataSourceRef {
	t, uid := "prometheus", "prometheus"
	return common.DataSourceRef{Type: &t, Uid: &uid}
}

func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Expr(expr).LegendFormat(legend)
}

func thresholds(colorBelow string, steps ...any) *dashboard.ThresholdsConfigBuilder {
	ts := []dashboard.Threshold{{Value: nil, Color: colorBelow}}
	for i := 0; i+1 < len(steps); i += 2 {
		v := steps[i].(float64)
		ts = append(ts, dashboard.Threshold{Value: &v, Color: steps[i+1].(string)})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(ts)
}

func series(title, unit string, w, h uint32, targets ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().Title(title).Unit(unit).Datasource(promDS()).Span(w).Height(h)
	for _, t := range targets {
		p = p.WithTarget(t)
	}
	return p
}

// QueueSLO: the exporters' queue fill against queuewatch's target, the SLO
// compliance over its window, the pressure level, and what backpressure
// shed and refused, by tier and signal.
func QueueSLO() *builder {
	return dashboard.NewDashboardBuilder( //nolint:staticcheck
		"otelcol-fabric: queue SLO").
		Uid("fabric-queue-slo").
		Tags([]string{"otelcol-fabric", "slo"}).
		Time("now-1h", "now").
		Refresh("30s").
		WithRow(dashboard.NewRowBuilder("Queues against the SLO")).
		WithPanel(series("Queue fill per exporter (target 0.5: slo.fill_target)", "percentunit", 16, 8,
			query(`otelcol_queuewatch_queue_fill_ratio`, "{{exporter}}")).
			Min(0).Max(1).
			Thresholds(thresholds("green", 0.5, "orange", 0.9, "red")).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLine))).
		WithPanel(stat.NewPanelBuilder().Title("SLO compliance over the window (objective 0.99)").
			Datasource(promDS()).Span(8).Height(4).Unit("percentunit").
			WithTarget(query(`otelcol_queuewatch_slo_compliance_ratio`, "compliance")).
			Thresholds(thresholds("red", 0.99, "green"))).
		WithPanel(stat.NewPanelBuilder().Title("Pressure level (0 ok, 1 elevated, 2 high, 3 critical)").
			Datasource(promDS()).Span(8).Height(4).
			WithTarget(query(`otelcol_queuewatch_level`, "level")).
			Thresholds(thresholds("green", 1.0, "yellow", 2.0, "orange", 3.0, "red"))).
		WithPanel(series("Exporter queue size over capacity", "percentunit", 24, 8,
			query(`otelcol_exporter_queue_size / otelcol_exporter_queue_capacity`, "{{exporter}} {{data_type}}"))).
		WithRow(dashboard.NewRowBuilder("Backpressure")).
		WithPanel(series("Items shed, by tier and signal", "short", 12, 8,
			query(`sum by (tier, signal, reason) (rate(otelcol_processor_backpressure_items_shed_total[$__rate_interval]))`, "{{tier}} {{signal}} {{reason}}"))).
		WithPanel(series("Items refused (retryable), by tier and signal", "short", 12, 8,
			query(`sum by (tier, signal) (rate(otelcol_processor_backpressure_items_refused_total[$__rate_interval]))`, "{{tier}} {{signal}}")))
}

// Correlation: how resources got their version and commit (versionstamp),
// how many had none, and what tagguard removed or folded.
func Correlation() *builder {
	return dashboard.NewDashboardBuilder( //nolint:staticcheck
		"otelcol-fabric: correlation coverage").
		Uid("fabric-correlation").
		Tags([]string{"otelcol-fabric", "correlation"}).
		Time("now-6h", "now").
		Refresh("1m").
		WithRow(dashboard.NewRowBuilder("Version and commit (versionstamp)")).
		WithPanel(series("Share of values missing, by field", "percentunit", 12, 8,
			query(`sum by (field) (rate(otelcol_processor_versionstamp_values_missing_total[$__rate_interval])) / on (field) (sum by (field) (rate(otelcol_processor_versionstamp_values_total[$__rate_interval])) + sum by (field) (rate(otelcol_processor_versionstamp_values_missing_total[$__rate_interval])))`, "{{field}}")).
			Min(0).Max(1)).
		WithPanel(series("Values set, by field and source", "short", 12, 8,
			query(`sum by (field, source) (rate(otelcol_processor_versionstamp_values_total[$__rate_interval]))`, "{{field}} from {{source}}"))).
		WithPanel(series("Invalid values, by field and source", "short", 12, 8,
			query(`sum by (field, source) (rate(otelcol_processor_versionstamp_values_invalid_total[$__rate_interval]))`, "{{field}} from {{source}}"))).
		WithRow(dashboard.NewRowBuilder("Cardinality (tagguard)")).
		WithPanel(series("Attribute keys dropped, by signal and scope", "short", 12, 8,
			query(`sum by (signal, scope) (rate(otelcol_processor_tagguard_attributes_dropped_total[$__rate_interval]))`, "{{signal}} {{scope}}"))).
		WithPanel(series("Data points folded into overflow series", "short", 12, 8,
			query(`sum by (mode) (rate(otelcol_processor_tagguard_datapoints_folded_total[$__rate_interval]))`, "{{mode}}"))).
		WithPanel(series("Series tracked", "short", 12, 8,
			query(`otelcol_processor_tagguard_series_tracked`, "series")))
}

// Benchmarks: each benchmark's median per run, across commits, with the
// benchstat connector's regressions marked.
func Benchmarks() *builder {
	sel := `service_name=~"$service", benchmark_name=~"$benchmark"`
	return dashboard.NewDashboardBuilder( //nolint:staticcheck
		"otelcol-fabric: benchmark trends").
		Uid("fabric-benchmarks").
		Tags([]string{"otelcol-fabric", "benchmarks"}).
		Time("now-30d", "now").
		Refresh("5m").
		WithVariable(dashboard.NewQueryVariableBuilder("service").Label("Service").
			Datasource(promDS()).
			Query(dashboard.StringOrMap{String: ptr(`label_values(gobench_op_duration_seconds_count, service_name)`)}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Multi(true).IncludeAll(true)).
		WithVariable(dashboard.NewQueryVariableBuilder("benchmark").Label("Benchmark").
			Datasource(promDS()).
			Query(dashboard.StringOrMap{String: ptr(`label_values(gobench_op_duration_seconds_count{service_name=~"$service"}, benchmark_name)`)}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Multi(true).IncludeAll(true)).
		Annotation(dashboard.NewAnnotationQueryBuilder().Name("Regressions (benchstat)").
			Datasource(promDS()).Enable(true).IconColor("red").
			Expr(`gobench_delta_ratio{` + sel + `, benchmark_verdict="regression"}`).
			TitleFormat(`{{benchmark_name}} {{benchmark_unit}} regressed`).
			TextFormat(`run {{benchmark_run_id}} at {{vcs_ref_head_revision}} against {{benchmark_baseline_run_id}}`).
			Step("60s")).
		WithRow(dashboard.NewRowBuilder("Medians per run (quantile 0.5 of go test -count N)")).
		WithPanel(series("Time per op", "s", 24, 9,
			query(`gobench_op_duration_seconds{`+sel+`, quantile="0.5"}`, "{{benchmark_name}}-{{benchmark_procs}} @ {{vcs_ref_head_revision}}")).
			ShowPoints(common.VisibilityModeAlways).SpanNulls(common.BoolOrFloat64{Bool: ptr(true)})).
		WithPanel(series("Bytes allocated per op", "bytes", 12, 8,
			query(`gobench_op_memory_allocated_bytes{`+sel+`, quantile="0.5"}`, "{{benchmark_name}} @ {{vcs_ref_head_revision}}")).
			ShowPoints(common.VisibilityModeAlways)).
		WithPanel(series("Allocations per op", "short", 12, 8,
			query(`gobench_op_allocations{`+sel+`, quantile="0.5"}`, "{{benchmark_name}} @ {{vcs_ref_head_revision}}")).
			ShowPoints(common.VisibilityModeAlways)).
		WithPanel(series("Throughput", "binBps", 12, 8,
			query(`gobench_throughput_bytes_per_second{`+sel+`, quantile="0.5"}`, "{{benchmark_name}} @ {{vcs_ref_head_revision}}")).
			ShowPoints(common.VisibilityModeAlways)).
		WithPanel(series("Spread: max over min per run", "short", 12, 8,
			query(`gobench_op_duration_seconds{`+sel+`, quantile="1"} / ignoring (quantile) gobench_op_duration_seconds{`+sel+`, quantile="0"}`, "{{benchmark_name}} @ {{vcs_ref_head_revision}}")).
			ShowPoints(common.VisibilityModeAlways)).
		WithRow(dashboard.NewRowBuilder("Against the baseline (benchstat connector)")).
		WithPanel(series("Run median over baseline median", "percentunit", 12, 8,
			query(`gobench_delta_ratio{`+sel+`}`, "{{benchmark_name}} {{benchmark_unit}} {{benchmark_verdict}}")).
			ShowPoints(common.VisibilityModeAlways).
			Thresholds(thresholds("green", 1.05, "red")).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLine))).
		WithPanel(series("p-value (Mann-Whitney U; alpha 0.05)", "short", 12, 8,
			query(`gobench_delta_p_value{`+sel+`}`, "{{benchmark_name}} {{benchmark_unit}}")).
			ShowPoints(common.VisibilityModeAlways).
			Thresholds(thresholds("green", 0.05, "transparent")).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLine))).
		WithPanel(stat.NewPanelBuilder().Title("Regressions in range").Datasource(promDS()).Span(24).Height(4).
			WithTarget(query(`count(count_over_time(gobench_delta_ratio{`+sel+`, benchmark_verdict="regression"}[$__range])) or vector(0)`, "regressions")).
			Thresholds(thresholds("green", 1.0, "red")))
}

func ptr[T any](v T) *T { return &v }

// All returns every dashboard by file name.
func All() map[string]*builder {
	return map[string]*builder{
		"queue-slo.json":   QueueSLO(),
		"correlation.json": Correlation(),
		"benchmarks.json":  Benchmarks(),
	}
}

// Render builds a dashboard as the JSON Grafana imports.
func Render(b *builder) ([]byte, error) {
	d, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
