package pyroscopereceiver // import "github.com/otelcol-fabric/otelcol-fabric/receivers/pyroscopereceiver"

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"google.golang.org/protobuf/encoding/protowire"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"

	"github.com/otelcol-fabric/otelcol-fabric/internal/pprofconv"
)

// profileTypeSuffixes are the profile types legacy agents append to the
// application name (name=myapp.cpu{...}); they are not part of the service.
var profileTypeSuffixes = []string{
	".cpu", ".itimer", ".wall", ".alloc_objects", ".alloc_space", ".inuse_objects", ".inuse_space",
	".goroutines", ".mutex_count", ".mutex_duration", ".block_count", ".block_duration",
}

// ingest is one parsed /ingest request.
type ingest struct {
	app         string
	profileType string // from a legacy name suffix, if any
	labels      map[string]string
	format      string
	from, until time.Time
	sampleRate  int64
	spyName     string
	units       string
	profileName string // Pyroscope's profile name (__name__), see pprofconv.ProfileName
}

// parseName parses Pyroscope's application key: app{label=value,...}.
func parseName(name string) (app, profileType string, labels map[string]string, err error) {
	labels = map[string]string{}
	app, rest, hasLabels := strings.Cut(name, "{")
	app = strings.TrimSpace(app)
	if hasLabels {
		body, ok := strings.CutSuffix(strings.TrimSpace(rest), "}")
		if !ok {
			return "", "", nil, fmt.Errorf("name %q: labels are not closed with }", name)
		}
		for _, pair := range strings.Split(body, ",") {
			if strings.TrimSpace(pair) == "" {
				continue
			}
			k, v, ok := strings.Cut(pair, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || k == "" {
				return "", "", nil, fmt.Errorf("name %q: label %q is not key=value", name, pair)
			}
			labels[k] = v
		}
	}
	for _, s := range profileTypeSuffixes {
		if base, ok := strings.CutSuffix(app, s); ok && base != "" {
			app, profileType = base, s[1:]
			break
		}
	}
	if app == "" {
		return "", "", nil, fmt.Errorf("name %q: the application name is empty", name)
	}
	if strings.ContainsAny(app, "{}=,") {
		return "", "", nil, fmt.Errorf("name %q: the application name contains {, }, = or ,", name)
	}
	return app, profileType, labels, nil
}

// parseTime reads from/until: Unix nanoseconds (pyroscope-go), or Unix
// seconds (older agents).
func parseTime(field, s string, fallback time.Time) (time.Time, error) {
	if s == "" {
		return fallback, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("%s=%q is not a Unix time", field, s)
	}
	if n < 1e12 {
		return time.Unix(n, 0), nil
	}
	return time.Unix(0, n), nil
}

// parseLines reads the collapsed ("folded", "lines") format: one stack per
// line, frames separated by ';', root first, then a space and a count.
func parseLines(data []byte, sampleRate int64, units string) (*profile.Profile, error) {
	if units == "" {
		units = "samples"
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}},
	}
	if units != "samples" {
		p.SampleType[0] = &profile.ValueType{Type: units, Unit: units}
	}
	if sampleRate > 0 {
		p.PeriodType = &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}
		p.Period = int64(time.Second) / sampleRate
	}
	functions := map[string]*profile.Function{}
	locations := map[string]*profile.Location{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		i := strings.LastIndexByte(text, ' ')
		if i <= 0 {
			return nil, fmt.Errorf("line %d: expected \"frame;frame;... count\"", line)
		}
		count, err := strconv.ParseInt(text[i+1:], 10, 64)
		if err != nil || count < 0 {
			return nil, fmt.Errorf("line %d: count %q is not a non-negative integer", line, text[i+1:])
		}
		frames := strings.Split(strings.TrimSpace(text[:i]), ";")
		s := &profile.Sample{Value: []int64{count}}
		for j := len(frames) - 1; j >= 0; j-- { // pprof lists the leaf first
			name := frames[j]
			if name == "" {
				return nil, fmt.Errorf("line %d: empty frame", line)
			}
			loc := locations[name]
			if loc == nil {
				fn := functions[name]
				if fn == nil {
					fn = &profile.Function{ID: uint64(len(functions) + 1), Name: name}
					functions[name] = fn
					p.Function = append(p.Function, fn)
				}
				loc = &profile.Location{ID: uint64(len(locations) + 1), Line: []profile.Line{{Function: fn}}}
				locations[name] = loc
				p.Location = append(p.Location, loc)
			}
			s.Location = append(s.Location, loc)
		}
		p.Sample = append(p.Sample, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if len(p.Sample) == 0 {
		return nil, errors.New("no samples")
	}
	return p, nil
}

// decompressedTooLargeError is a payload that inflates beyond
// max_decompressed_size.
type decompressedTooLargeError struct{ limit int64 }

func (e *decompressedTooLargeError) Error() string {
	return fmt.Sprintf("the profile is larger than max_decompressed_size (%d bytes) once decompressed", e.limit)
}

// inflate returns data, gunzipped if it is gzip, refusing more than limit
// bytes of output: a small gzip body can expand a thousandfold.
func inflate(data []byte, limit int64) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		if int64(len(data)) > limit {
			return nil, &decompressedTooLargeError{limit}
		}
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("corrupt gzip: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("corrupt gzip: %w", err)
	}
	if int64(len(out)) > limit {
		return nil, &decompressedTooLargeError{limit}
	}
	return out, nil
}

// tooManyEntriesError is a profile with more entries of one kind than
// max_profile_entries.
type tooManyEntriesError struct {
	what     string
	n, limit int
}

func (e *tooManyEntriesError) Error() string {
	return fmt.Sprintf("the profile has more than max_profile_entries (%d) %s", e.limit, e.what)
}

// pprof.Profile fields that hold one entry per occurrence.
var pprofEntryFields = map[protowire.Number]string{2: "samples", 3: "mappings", 4: "locations", 5: "functions", 6: "strings"}

// countEntries counts a raw pprof's top-level entries per kind without
// parsing them, and refuses a profile with more than max of any kind. It
// reads only field headers: what it cannot read, the parser reports.
func countEntries(raw []byte, max int) error {
	var counts [7]int
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return nil
		}
		raw = raw[n:]
		n = protowire.ConsumeFieldValue(num, typ, raw)
		if n < 0 {
			return nil
		}
		raw = raw[n:]
		if what, ok := pprofEntryFields[num]; ok {
			if counts[num]++; counts[num] > max {
				return &tooManyEntriesError{what: what, n: counts[num], limit: max}
			}
		}
	}
	return nil
}

// decodePprof parses a pprof payload (gzipped or not, at most limit bytes
// once inflated, at most maxEntries entries of each kind) and checks it.
func decodePprof(data []byte, limit int64, maxEntries int) (*profile.Profile, error) {
	raw, err := inflate(data, limit)
	if err != nil {
		return nil, err
	}
	if err := countEntries(raw, maxEntries); err != nil {
		return nil, err
	}
	p, err := profile.ParseUncompressed(raw)
	if err != nil {
		return nil, fmt.Errorf("corrupt pprof: %w", err)
	}
	if err := p.CheckValid(); err != nil {
		return nil, fmt.Errorf("invalid pprof: %w", err)
	}
	if len(p.SampleType) == 0 {
		return nil, errors.New("invalid pprof: no sample types")
	}
	return p, nil
}

// toProfiles turns one ingest into OTLP profiles: the application is
// service.name, the labels are resource attributes.
func toProfiles(in *ingest, p *profile.Profile) pprofile.Profiles {
	pd := pprofile.NewProfiles()
	dict := pprofconv.NewDict(pd)
	rp := pd.ResourceProfiles().AppendEmpty()
	attrs := rp.Resource().Attributes()
	attrs.PutStr("service.name", in.app)
	for k, v := range in.labels {
		if k == "service_name" || k == "service.name" {
			continue
		}
		attrs.PutStr(k, v)
	}
	if in.spyName != "" {
		attrs.PutStr("pyroscope.spy_name", in.spyName)
	}
	if in.profileType != "" {
		attrs.PutStr("pyroscope.profile_type", in.profileType)
	}
	sp := rp.ScopeProfiles().AppendEmpty()
	sp.Scope().SetName("github.com/otelcol-fabric/otelcol-fabric/receivers/pyroscopereceiver")
	duration := uint64(0)
	if in.until.After(in.from) {
		duration = uint64(in.until.Sub(in.from))
	}
	dict.AppendProfiles(p, sp, pcommon.NewTimestampFromTime(in.from), duration)
	if in.profileName != "" {
		name := dict.Attr(pprofconv.AttrProfileName, in.profileName)
		for _, prof := range sp.Profiles().All() {
			prof.AttributeIndices().Append(name)
		}
	}
	return pd
}
