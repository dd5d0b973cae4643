package pdatacount

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func TestCounts(t *testing.T) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	ms.AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty()
	s := ms.AppendEmpty().SetEmptySum()
	s.DataPoints().AppendEmpty()
	s.DataPoints().AppendEmpty()
	ms.AppendEmpty().SetEmptyHistogram().DataPoints().AppendEmpty()
	ms.AppendEmpty().SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
	ms.AppendEmpty().SetEmptySummary().DataPoints().AppendEmpty()
	ms.AppendEmpty() // empty metric
	assert.Equal(t, 2, Metric(ms.At(1)))
	assert.Equal(t, 0, Metric(ms.At(5)))
	assert.Equal(t, md.DataPointCount(), ResourceMetrics(rm))
	assert.Equal(t, 6, ResourceMetrics(rm))
}
