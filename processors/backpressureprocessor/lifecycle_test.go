package backpressureprocessor

import (
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
)

// newLifecycleTestHost is the host of the generated lifecycle test
// (metadata.yaml tests::host): Start fails without a pressure source
// registered as the queuewatch extension.
func newLifecycleTestHost() component.Host {
	return host{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{
		component.MustNewID("queuewatch"): &fakeWatch{shed: map[string]int{}},
	}}
}
