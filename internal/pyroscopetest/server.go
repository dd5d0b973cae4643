// Package pyroscopetest is a stand-in Pyroscope for tests: the Push API
// (push.v1.PusherService/Push) served by the generated connect handler of
// the official github.com/grafana/pyroscope/api module, decoding each raw
// profile with the same generated type Pyroscope's distributor uses
// (google.v1.Profile, vtproto), and enforcing the validation rules of
// Pyroscope v2.2.1 that a request can break:
//
//   - pkg/distributor/distributor.go Push: gzip or raw pprof, at most
//     max-profile-size-bytes (4 MiB) once inflated;
//   - pkg/validation/validate.go ValidateLabels: a __name__ that is a
//     metric name, a service_name, label names that are legacy Prometheus
//     names once dots become underscores, no duplicate names, UTF-8 values
//     of at most 2048 bytes, at most 30 names;
//   - ValidateProfile: sample types, no '-' in a sample type, one value per
//     sample type, non-zero ids, string-table indices in range, UTF-8
//     strings, at most 16000 samples, at most 100 labels per sample, a
//     timestamp inside the ingestion window (1 h back, 10 min ahead);
//   - pkg/model/pprofsplit: string sample labels other than span_id and
//     trace_id (profile_id is renamed span_id) become series labels, so
//     the stand-in records the series each profile creates.
//
// What it does not do: store, query or merge profiles; relabel rules;
// rate, ingestion and series limits (per-tenant settings of a deployment).
package pyroscopetest // import "github.com/otelcol-fabric/otelcol-fabric/internal/pyroscopetest"

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	profilev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

// Pyroscope v2.2.1's default limits (pkg/validation/limits.go).
const (
	MaxProfileSizeBytes    = 4 << 20
	MaxSamples             = 16000
	MaxSampleLabels        = 100
	MaxLabelNamesPerSeries = 30
	MaxLabelNameLength     = 1024
	MaxLabelValueLength    = 2048
	RejectOlderThan        = time.Hour
	RejectNewerThan        = 10 * time.Minute
)

var legacyName = regexp.MustCompile(`^[a-zA-Z_.][a-zA-Z0-9_.]*$`)

// Profile is one accepted raw profile.
type Profile struct {
	Tenant string
	// Labels are the series labels as sent (after dot sanitization).
	Labels map[string]string
	// Profile is the decoded pprof.
	Profile *profilev1.Profile
	// Series are the label sets Pyroscope stores the profile's samples
	// under: the series labels plus each sample's string labels other than
	// span_id and trace_id, as canonical strings.
	Series []string
	// SpanSamples counts samples per span_id label value.
	SpanSamples map[string]int
}

// Label returns a string label of a sample.
func (p *Profile) Label(s *profilev1.Sample, key string) string {
	for _, l := range s.Label {
		if p.str(l.Key) == key {
			return p.str(l.Str)
		}
	}
	return ""
}

// SampleTypes are the profile's sample types as type/unit.
func (p *Profile) SampleTypes() []string {
	var out []string
	for _, st := range p.Profile.SampleType {
		out = append(out, p.str(st.Type)+"/"+p.str(st.Unit))
	}
	return out
}

func (p *Profile) str(i int64) string {
	if i < 0 || int(i) >= len(p.Profile.StringTable) {
		return ""
	}
	return p.Profile.StringTable[i]
}

// Server is the stand-in. The zero value is not usable: use New.
type Server struct {
	mu       sync.Mutex
	profiles []*Profile
	rejected []string
	requests int
	// Down makes every request fail with 503, as a load balancer in front
	// of a Pyroscope that is down answers.
	Down atomic.Bool
	// refused counts requests answered 503 because of Down.
	refused atomic.Int64
	// Throttle refuses the next n series with ResourceExhausted, as
	// Pyroscope's rate limit does: the other series of the same request
	// are stored all the same, and the request fails.
	Throttle atomic.Int64
	// Now is the server's clock (ingestion window); time.Now by default.
	Now func() time.Time
}

// New returns a stand-in Pyroscope.
func New() *Server { return &Server{Now: time.Now} }

// Handler serves the Push API (and 404 for everything else).
func (s *Server) Handler() http.Handler {
	path, h := pushv1connect.NewPusherServiceHandler(pusher{s})
	mux := http.NewServeMux()
	mux.Handle(path, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Down.Load() {
			s.refused.Add(1)
			http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Profiles returns what was accepted so far.
func (s *Server) Profiles() []*Profile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Profile(nil), s.profiles...)
}

// Rejected returns the error of every refused request.
func (s *Server) Rejected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rejected...)
}

// Refused counts requests answered 503 while Down.
func (s *Server) Refused() int { return int(s.refused.Load()) }

// Requests counts Push calls that reached the handler.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

type pusher struct{ s *Server }

func (p pusher) Push(_ context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	s := p.s
	tenant := req.Header().Get("X-Scope-OrgID")
	if tenant == "" {
		tenant = "anonymous" // multitenancy disabled
	}
	var accepted []*Profile
	var errs []error
	var throttled error
	for _, series := range req.Msg.Series {
		if s.Throttle.Add(-1) >= 0 {
			throttled = connect.NewError(connect.CodeResourceExhausted, errors.New("push rate limit exceeded"))
			continue
		}
		s.Throttle.Store(0)
		labels, err := validateLabels(series.Labels)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, raw := range series.Samples {
			prof, err := s.decode(raw.RawProfile, labels)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			prof.Tenant = tenant
			accepted = append(accepted, prof)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	// Pyroscope stores the valid profiles of a request and reports the
	// invalid ones with InvalidArgument.
	s.profiles = append(s.profiles, accepted...)
	if throttled != nil {
		return nil, throttled
	}
	if err := errors.Join(errs...); err != nil {
		s.rejected = append(s.rejected, err.Error())
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	if len(req.Msg.Series) == 0 {
		err := errors.New("no profiles received")
		s.rejected = append(s.rejected, err.Error())
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

// validateLabels follows validation.ValidateLabels with sanitization on.
func validateLabels(ls []*typesv1.LabelPair) (map[string]string, error) {
	if len(ls) == 0 {
		return nil, errors.New("error at least one label pair is required per profile")
	}
	if len(ls) > MaxLabelNamesPerSeries {
		return nil, fmt.Errorf("profile series has %d label names; limit %d", len(ls), MaxLabelNamesPerSeries)
	}
	out := make(map[string]string, len(ls))
	for _, l := range ls {
		if len(l.Name) > MaxLabelNameLength {
			return nil, fmt.Errorf("label name too long: %q", l.Name)
		}
		if len(l.Value) > MaxLabelValueLength {
			return nil, fmt.Errorf("label value too long: %q", l.Value)
		}
		if !legacyName.MatchString(l.Name) {
			return nil, fmt.Errorf("invalid labels with error: invalid label name '%s'", l.Name)
		}
		if !utf8.ValidString(l.Value) {
			return nil, fmt.Errorf("invalid labels with error: invalid label value '%s'", l.Value)
		}
		name := strings.ReplaceAll(l.Name, ".", "_")
		if v, dup := out[name]; dup && (name == l.Name || v != l.Value) {
			return nil, fmt.Errorf("duplicate label name: '%s'", name)
		}
		out[name] = l.Value
	}
	if name := out["__name__"]; name == "" || !utf8.ValidString(name) {
		return nil, errors.New("invalid labels with error: invalid metric name")
	}
	if out["service_name"] == "" {
		return nil, errors.New("invalid labels with error: service name is not provided")
	}
	return out, nil
}

// decode follows Distributor.Push (pprof.RawFromBytesWithLimit) and
// validation.ValidateProfile.
func (s *Server) decode(raw []byte, labels map[string]string) (*Profile, error) {
	data := raw
	if len(raw) > 1 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		if data, err = io.ReadAll(io.LimitReader(zr, MaxProfileSizeBytes+1)); err != nil {
			return nil, err
		}
	}
	if len(data) > MaxProfileSizeBytes {
		return nil, fmt.Errorf("uncompressed profile payload size exceeds limit of %d bytes", MaxProfileSizeBytes)
	}
	p := &profilev1.Profile{}
	if err := p.UnmarshalVT(data); err != nil {
		return nil, err
	}
	prof := &Profile{Labels: labels, Profile: p, SpanSamples: map[string]int{}}
	if err := s.validateProfile(prof); err != nil {
		return nil, err
	}
	series := map[string]bool{}
	for _, smp := range p.Sample {
		set := make(map[string]string, len(labels)+len(smp.Label))
		for k, v := range labels {
			set[k] = v
		}
		for _, l := range smp.Label {
			key := prof.str(l.Key)
			if key == "profile_id" {
				key = "span_id"
			}
			switch {
			case l.Str <= 0:
			case key == "span_id":
				prof.SpanSamples[prof.str(l.Str)]++
			case key == "trace_id":
			default:
				if _, ok := set[key]; !ok {
					set[key] = prof.str(l.Str)
				}
			}
		}
		key := canonical(set)
		if !series[key] {
			// Pyroscope validates each series a profile is split into.
			pairs := make([]*typesv1.LabelPair, 0, len(set))
			for k, v := range set {
				pairs = append(pairs, &typesv1.LabelPair{Name: k, Value: v})
			}
			if _, err := validateLabels(pairs); err != nil {
				return nil, fmt.Errorf("series %s: %w", key, err)
			}
		}
		series[key] = true
	}
	for k := range series {
		prof.Series = append(prof.Series, k)
	}
	sort.Strings(prof.Series)
	return prof, nil
}

func (s *Server) validateProfile(prof *Profile) error {
	p := prof.Profile
	if len(p.SampleType) == 0 {
		return errors.New("empty profile")
	}
	if p.TimeNanos > 0 {
		t, now := time.Unix(0, p.TimeNanos), s.Now()
		if t.Before(now.Add(-RejectOlderThan)) || t.After(now.Add(RejectNewerThan)) {
			return fmt.Errorf("profile is outside of ingestion window (profile timestamp: %s)", t.UTC().Format(time.RFC3339))
		}
	}
	if len(p.Sample) > MaxSamples {
		return fmt.Errorf("the profile exceeds the samples count limit (%d > %d)", len(p.Sample), MaxSamples)
	}
	n := int64(len(p.StringTable))
	if n == 0 || p.StringTable[0] != "" {
		return errors.New("string 0 should be empty string")
	}
	for _, st := range p.SampleType {
		if st.Type >= n || st.Unit >= n {
			return errors.New("sample type type string index out of range")
		}
		if strings.Contains(p.StringTable[st.Type], "-") {
			return errors.New("sample type contains -")
		}
	}
	for _, smp := range p.Sample {
		if len(smp.Value) != len(p.SampleType) {
			return errors.New("sample value length mismatch")
		}
		if len(smp.Label) > MaxSampleLabels {
			return fmt.Errorf("the profile exceeds the sample labels limit (%d > %d)", len(smp.Label), MaxSampleLabels)
		}
		for _, l := range smp.Label {
			if l.Str >= n || l.Key >= n {
				return errors.New("sample label string index out of range")
			}
		}
	}
	for _, l := range p.Location {
		if l.Id == 0 {
			return errors.New("location id is 0")
		}
	}
	for _, f := range p.Function {
		if f.Id == 0 {
			return errors.New("function id is 0")
		}
		if f.Name >= n || f.SystemName >= n || f.Filename >= n {
			return errors.New("function string index out of range")
		}
	}
	for _, m := range p.Mapping {
		if m.Filename >= n || m.BuildId >= n {
			return errors.New("mapping string index out of range")
		}
	}
	for _, str := range p.StringTable {
		if !utf8.ValidString(str) {
			return fmt.Errorf("invalid utf8 string %q", str)
		}
	}
	return nil
}

// canonical is a label set as {a="1", b="2"}, sorted by name.
func canonical(set map[string]string) string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, set[k])
	}
	b.WriteByte('}')
	return b.String()
}
