// Package buildinfo holds the distribution's build stamps. The Makefile sets
// them with
//
//	-ldflags "-X github.com/otelcol-fabric/otelcol-fabric/internal/buildinfo.Version=..."
//
// (likewise Commit and BuildTime). A binary built without them reports the
// placeholders below. Components that stamp data with the collector's own
// identity read them here.
package buildinfo // import "github.com/otelcol-fabric/otelcol-fabric/internal/buildinfo"

var (
	// Version is the distribution's semantic version (the VERSION file).
	Version = "0.0.0-dev"
	// Commit is the full SHA of the commit the binary was built from.
	Commit = "unknown"
	// BuildTime is when the binary was built, RFC 3339 in UTC.
	BuildTime = "unknown"
)
