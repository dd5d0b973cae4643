// Package configs holds the distribution's shipped configurations. The local
// configuration is compiled into the binary as its default.
package configs // import "github.com/otelcol-fabric/otelcol-fabric/configs"

import _ "embed"

// Local is configs/local.yaml, the configuration the collector runs when it is
// started without --config.
//
//go:embed local.yaml
var Local string
