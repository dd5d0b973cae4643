// Package pdatacount counts the data points of a metric, whatever its type
// (pdata counts them for a whole pmetric.Metrics only).
package pdatacount // import "github.com/otelcol-fabric/otelcol-fabric/internal/pdatacount"

import "go.opentelemetry.io/collector/pdata/pmetric"

// Metric is the number of data points of m.
func Metric(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}

// ResourceMetrics is the number of data points under rm.
func ResourceMetrics(rm pmetric.ResourceMetrics) int {
	n := 0
	for _, sm := range rm.ScopeMetrics().All() {
		for _, m := range sm.Metrics().All() {
			n += Metric(m)
		}
	}
	return n
}
