package gobenchreceiver // import "github.com/otelcol-fabric/otelcol-fabric/receivers/gobenchreceiver"

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/perf/benchfmt"
)

// Body formats.
const (
	formatText = "text" // go test -bench output (the Go benchmark format)
	formatJSON = "json" // go test -json: the benchmark lines are in "output" events
)

// maxLineBytes bounds one line of input: go test's benchmark lines are a
// few hundred bytes; benchfmt's own scanner stops at 64 KiB.
const maxLineBytes = 64 << 10

// rejectedLine is a line that was left out, with its 1-based line number in
// the request body.
type rejectedLine struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// series is one benchmark and unit of a run: the -count N samples of it.
type series struct {
	// config is the file configuration in force for the result (goos,
	// goarch, pkg, cpu and user keys such as commit), in input order.
	config []benchfmt.Config
	// name is the full benchmark name without the -GOMAXPROCS suffix.
	name  string
	procs int
	// unit is benchfmt's tidied unit (sec/op, B/op, allocs/op, B/s, ...);
	// values are in that unit, in input order.
	unit     string
	values   []float64
	origUnit string
	// assume and better are the unit's metadata (Unit lines), if any.
	assume, better string
}

// decoded is what one request held.
type decoded struct {
	series   []*series
	results  int // benchmark lines parsed
	rejected []rejectedLine
}

// detectFormat returns the format asked for, or sniffs it: a go test -json
// stream starts with '{'.
func detectFormat(param string, body []byte) (string, error) {
	switch param {
	case formatText, formatJSON:
		return param, nil
	case "":
	default:
		return "", fmt.Errorf("format=%q is not supported (supported: text, json)", param)
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return formatJSON, nil
	}
	return formatText, nil
}

// decode parses a request body of the given format. It never fails on a
// malformed line: the line is reported in rejected and the rest is kept. It
// fails when a line is longer than maxLineBytes.
func decode(body []byte, format string, maxSamples int) (*decoded, error) {
	d := &decoded{}
	agg := newAggregator(maxSamples)
	if format == formatJSON {
		streams, rejected, err := splitJSON(body)
		if err != nil {
			return nil, err
		}
		d.rejected = rejected
		for _, s := range streams {
			if err := d.read(agg, s.text.Bytes(), s.pkg, s.lines); err != nil {
				return nil, err
			}
		}
	} else if err := d.read(agg, body, "body", nil); err != nil {
		return nil, err
	}
	sort.SliceStable(d.rejected, func(i, j int) bool { return d.rejected[i].Line < d.rejected[j].Line })
	agg.finish()
	d.series = agg.list
	return d, nil
}

// read runs benchfmt over text. lines maps a line of text (0-based) to its
// line number in the request; nil when text is the body itself.
func (d *decoded) read(agg *aggregator, text []byte, name string, lines []int) error {
	bodyLine := func(l int) int {
		if lines == nil || l < 1 || l > len(lines) {
			return l
		}
		return lines[l-1]
	}
	d.rejectPrefixed(text, bodyLine)
	r := benchfmt.NewReader(bytes.NewReader(text), name)
	for r.Scan() {
		switch rec := r.Result().(type) {
		case *benchfmt.Result:
			_, l := rec.Pos()
			if msg := checkResult(rec); msg != "" {
				d.rejected = append(d.rejected, rejectedLine{Line: bodyLine(l), Error: msg})
				continue
			}
			if msg := agg.add(rec); msg != "" {
				d.rejected = append(d.rejected, rejectedLine{Line: bodyLine(l), Error: msg})
				continue
			}
			d.results++
		case *benchfmt.SyntaxError:
			d.rejected = append(d.rejected, rejectedLine{Line: bodyLine(rec.Line), Error: rec.Msg})
		case *benchfmt.UnitMetadata:
			agg.unitMeta(rec)
		}
	}
	if err := r.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("a line is longer than %d bytes (%w)", maxLineBytes, err)
		}
		return err
	}
	return nil
}

// prefixedResult is a benchmark result line after something else: an
// indent, or a CI log's timestamp. benchfmt reads a result only at the start
// of a line and takes any other line for text, so without this check such a
// line would be dropped without a word.
var prefixedResult = regexp.MustCompile(`\bBenchmark\S*\s+\d+\s+[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s+\S`)

// rejectPrefixed reports the lines of text that look like benchmark
// results but do not start the line.
func (d *decoded) rejectPrefixed(text []byte, bodyLine func(int) int) {
	for n := 1; len(text) > 0; n++ {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		if bytes.HasPrefix(line, []byte("Benchmark")) || !bytes.Contains(line, []byte("Benchmark")) {
			continue
		}
		if prefixedResult.Match(line) {
			d.rejected = append(d.rejected, rejectedLine{Line: bodyLine(n), Error: "a benchmark result that does not start the line (an indent or a log prefix such as a timestamp): go test prints results at the start of a line; strip the prefix before posting"})
		}
	}
}

// checkResult refuses what benchfmt accepts but a metric cannot carry.
func checkResult(r *benchfmt.Result) string {
	if !utf8.Valid(r.Name) {
		return "the benchmark name is not valid UTF-8"
	}
	for _, c := range r.Config {
		if !utf8.Valid(c.Value) || !utf8.ValidString(c.Key) {
			return fmt.Sprintf("configuration %q is not valid UTF-8", c.Key)
		}
	}
	for _, v := range r.Values {
		if !utf8.ValidString(v.Unit) {
			return "a unit is not valid UTF-8"
		}
		if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
			return fmt.Sprintf("the %s value is not a finite number", unitOf(v))
		}
	}
	return ""
}

// jsonStream is the text of one package's output events, reassembled:
// go test -json may split a benchmark line over several events (the name,
// then the measurements when the benchmark ends).
type jsonStream struct {
	pkg   string
	text  bytes.Buffer
	lines []int // body line number of each line of text
	open  bool  // the last line of text has no newline yet
}

type testEvent struct {
	Action  string
	Package string
	Output  *string
}

// splitJSON reads a go test -json stream: one JSON event per line.
func splitJSON(body []byte) ([]*jsonStream, []rejectedLine, error) {
	var (
		order    []*jsonStream
		byPkg    = map[string]*jsonStream{}
		rejected []rejectedLine
	)
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 4096), maxLineBytes)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var ev testEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			rejected = append(rejected, rejectedLine{Line: n, Error: "not a go test -json event: " + err.Error()})
			continue
		}
		if ev.Action != "output" || ev.Output == nil {
			continue
		}
		s := byPkg[ev.Package]
		if s == nil {
			s = &jsonStream{pkg: ev.Package}
			if s.pkg == "" {
				s.pkg = "body"
			}
			byPkg[ev.Package] = s
			order = append(order, s)
		}
		out := *ev.Output
		for len(out) > 0 {
			if !s.open {
				s.lines = append(s.lines, n)
			}
			i := strings.IndexByte(out, '\n')
			if i < 0 {
				s.text.WriteString(out)
				s.open = true
				break
			}
			s.text.WriteString(out[:i+1])
			s.open = false
			out = out[i+1:]
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, nil, fmt.Errorf("line %d is longer than %d bytes", n+1, maxLineBytes)
		}
		return nil, nil, err
	}
	return order, rejected, nil
}

// aggregator groups the samples of a run by configuration, name and unit,
// keeping the order in which they first appear.
type aggregator struct {
	byKey      map[string]*series
	list       []*series
	meta       map[benchfmt.UnitMetadataKey]string
	maxSamples int // per series
	// unitOfMetric is the unit each metric name of the request stands for:
	// different units may map to one name (a-b/op, a_b/op; a custom
	// "throughput" and B/s), and one metric cannot hold both.
	unitOfMetric map[string]string
}

func newAggregator(maxSamples int) *aggregator {
	return &aggregator{byKey: map[string]*series{}, meta: map[benchfmt.UnitMetadataKey]string{}, maxSamples: maxSamples, unitOfMetric: map[string]string{}}
}

func (a *aggregator) unitMeta(m *benchfmt.UnitMetadata) {
	a.meta[m.UnitMetadataKey] = m.Value
}

// add adds the values of a result line to their series, or none of them
// and says why.
func (a *aggregator) add(r *benchfmt.Result) string {
	name, procs := splitProcs(r.Name)
	var key strings.Builder
	for _, c := range r.Config {
		if !c.File {
			continue
		}
		key.WriteString(c.Key)
		key.WriteByte(0)
		key.Write(c.Value)
		key.WriteByte(0)
	}
	key.WriteString(name)
	key.WriteByte(0)
	key.WriteString(strconv.Itoa(procs))
	key.WriteByte(0)
	base := key.String()
	for i, v := range r.Values {
		if s := a.byKey[base+v.Unit]; s != nil && len(s.values) >= a.maxSamples {
			return fmt.Sprintf("Benchmark%s already has max_samples_per_benchmark (%d) %s samples in this request (each sample is a Prometheus series): run go test with a smaller -count, or split the upload", r.Name, a.maxSamples, unitOf(v))
		}
		name := metricFor(v.Unit).name
		other, ok := a.unitOfMetric[name]
		for _, w := range r.Values[:i] {
			if !ok && w.Unit != v.Unit && metricFor(w.Unit).name == name {
				other, ok = w.Unit, true
			}
		}
		if ok && other != v.Unit {
			return fmt.Sprintf("unit %q and unit %q would both be metric %s: rename one of them (b.ReportMetric)", unitOf(v), other, name)
		}
	}
	for _, v := range r.Values {
		a.unitOfMetric[metricFor(v.Unit).name] = v.Unit
	}
	for _, v := range r.Values {
		k := base + v.Unit
		s := a.byKey[k]
		if s == nil {
			s = &series{name: name, procs: procs, unit: v.Unit, origUnit: v.OrigUnit}
			for _, c := range r.Config {
				if c.File {
					s.config = append(s.config, benchfmt.Config{Key: c.Key, Value: bytes.Clone(c.Value), File: true})
				}
			}
			a.byKey[k] = s
			a.list = append(a.list, s)
		}
		s.values = append(s.values, v.Value)
	}
	return ""
}

// finish copies the unit metadata onto every series.
func (a *aggregator) finish() {
	for _, s := range a.list {
		s.assume = a.meta[benchfmt.UnitMetadataKey{Unit: s.unit, Key: "assume"}]
		s.better = a.meta[benchfmt.UnitMetadataKey{Unit: s.unit, Key: "better"}]
	}
}

// splitProcs splits the -GOMAXPROCS suffix off a benchmark name, as benchfmt
// parses it. go test omits the suffix when GOMAXPROCS is 1.
func splitProcs(n benchfmt.Name) (string, int) {
	base, parts := n.Parts()
	procs := 1
	if len(parts) > 0 {
		last := parts[len(parts)-1]
		if len(last) > 1 && last[0] == '-' {
			if p, err := strconv.Atoi(string(last[1:])); err == nil {
				procs = p
				parts = parts[:len(parts)-1]
			}
		}
	}
	var b strings.Builder
	b.WriteString("Benchmark") // Parts drops it; keep the name go test prints
	b.Write(base)
	for _, p := range parts {
		b.Write(p)
	}
	return b.String(), procs
}

func unitOf(v benchfmt.Value) string {
	if v.OrigUnit != "" {
		return v.OrigUnit
	}
	return v.Unit
}
