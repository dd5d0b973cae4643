// Package pressure is the contract between the queuewatch extension, which
// measures how full the exporters' queues are and publishes a pressure level,
// and the backpressure processor, which reads the level and sheds or refuses
// data by tier.
package pressure // import "github.com/otelcol-fabric/otelcol-fabric/internal/pressure"

import (
	"fmt"
	"time"
)

// Level is the graded pressure on the pipeline's exporters.
type Level int32

const (
	OK Level = iota
	Elevated
	High
	Critical
	NumLevels
)

var levelNames = [NumLevels]string{"ok", "elevated", "high", "critical"}

func (l Level) String() string {
	if l < 0 || l >= NumLevels {
		return fmt.Sprintf("level(%d)", int32(l))
	}
	return levelNames[l]
}

// Tiers of service criticality, highest first.
const (
	Gold   = "gold"
	Silver = "silver"
	Bronze = "bronze"
)

// Tiers lists the tiers, highest first.
var Tiers = []string{Gold, Silver, Bronze}

// Source is what queuewatch offers the processors that consult it.
type Source interface {
	// Level is the current pressure level.
	Level() Level
	// Fill is the highest fill ratio (0..1) of the watched queues at the
	// last measurement.
	Fill() float64
	// Room is, for a signal ("traces", "metrics", "logs"), how much the
	// fullest watched queue of that signal could still take at the last
	// measurement (capacity minus size, in the queue's sizer units: items
	// with `sizer: items`), and when that measurement was taken; false
	// before a measurement saw one.
	Room(signal string) (room float64, at time.Time, ok bool)
	// ReportShed records items a processor shed or refused, for the status
	// page: tier, signal, and the reason (a fixed word such as
	// "tier_dropped", "below_severity", "refused").
	ReportShed(tier, signal, reason string, items int)
}
