package pyroscopereceiver // import "github.com/otelcol-fabric/otelcol-fabric/receivers/pyroscopereceiver"

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/xconsumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-fabric/otelcol-fabric/internal/pprofconv"
	"github.com/otelcol-fabric/otelcol-fabric/receivers/pyroscopereceiver/internal/metadata"
)

type pyroscopeReceiver struct {
	cfg    *Config
	set    receiver.Settings
	next   xconsumer.Profiles
	tb     *metadata.TelemetryBuilder
	server *http.Server
	done   sync.WaitGroup
}

func newReceiver(set receiver.Settings, cfg *Config, next xconsumer.Profiles) (*pyroscopeReceiver, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("pyroscope: telemetry: %w", err)
	}
	return &pyroscopeReceiver{cfg: cfg, set: set, next: next, tb: tb}, nil
}

func (r *pyroscopeReceiver) Start(ctx context.Context, host component.Host) error {
	ln, err := r.cfg.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("pyroscope: listen on %s: %w", r.cfg.NetAddr.Endpoint, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ingest", r.handleIngest)
	srv, err := r.cfg.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, mux)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("pyroscope: server: %w", err)
	}
	r.server = srv
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.set.Logger.Error("pyroscope: server stopped", zap.Error(err))
		}
	}()
	return nil
}

func (r *pyroscopeReceiver) Shutdown(ctx context.Context) error {
	var err error
	if r.server != nil {
		err = r.server.Shutdown(ctx)
	}
	r.done.Wait()
	r.tb.Shutdown()
	return err
}

// requestError is a client error: 4xx with its message.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func (r *pyroscopeReceiver) handleIngest(w http.ResponseWriter, req *http.Request) {
	format := "pprof"
	outcome := "accepted"
	defer func() {
		r.tb.ReceiverPyroscopeRequests.Add(req.Context(), 1, metric.WithAttributeSet(
			attribute.NewSet(attribute.String("format", format), attribute.String("outcome", outcome))))
	}()
	if req.Method != http.MethodPost {
		outcome = "rejected"
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "pyroscope ingest: use POST", http.StatusMethodNotAllowed)
		return
	}
	in, p, err := r.decode(req)
	if in != nil {
		format = in.format
	}
	if err != nil {
		outcome = "rejected"
		status := http.StatusBadRequest
		var re *requestError
		if errors.As(err, &re) {
			status = re.status
		}
		http.Error(w, "pyroscope ingest: "+err.Error(), status)
		return
	}
	pd := toProfiles(in, p)
	if err := r.next.ConsumeProfiles(req.Context(), pd); err != nil {
		if consumererror.IsPermanent(err) {
			outcome = "rejected"
			http.Error(w, "pyroscope ingest: "+err.Error(), http.StatusBadRequest)
			return
		}
		outcome = "refused"
		w.Header().Set("Retry-After", "5")
		http.Error(w, "pyroscope ingest: the collector cannot take this profile now, retry: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	r.tb.ReceiverPyroscopeSamples.Add(req.Context(), int64(pd.SampleCount()))
	w.WriteHeader(http.StatusOK)
}

// decode reads and parses one ingest request.
func (r *pyroscopeReceiver) decode(req *http.Request) (*ingest, *profile.Profile, error) {
	q := req.URL.Query()
	// What becomes a label or attribute must be UTF-8 (OTLP strings are; the
	// gateway's protoguard refuses a request holding one that is not).
	for _, k := range []string{"name", "spyName", "units"} {
		if v := q.Get(k); !utf8.ValidString(v) {
			return nil, nil, badRequest("the %s parameter is not valid UTF-8: %q", k, v)
		}
	}
	in := &ingest{format: "pprof", spyName: q.Get("spyName"), units: q.Get("units")}
	switch f := q.Get("format"); f {
	case "", "pprof":
	case "lines", "folded":
		in.format = "lines"
	default:
		return in, nil, &requestError{status: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("format=%q is not supported (supported: pprof, lines, folded)", f)}
	}
	name := q.Get("name")
	if name == "" {
		return in, nil, badRequest("the name parameter is missing (name=<application>{label=value,...})")
	}
	var err error
	if in.app, in.profileType, in.labels, err = parseName(name); err != nil {
		return in, nil, badRequest("%v", err)
	}
	now := time.Now()
	if in.until, err = parseTime("until", q.Get("until"), now); err != nil {
		return in, nil, badRequest("%v", err)
	}
	if in.from, err = parseTime("from", q.Get("from"), in.until.Add(-10*time.Second)); err != nil {
		return in, nil, badRequest("%v", err)
	}
	if s := q.Get("sampleRate"); s != "" {
		if in.sampleRate, err = strconv.ParseInt(s, 10, 64); err != nil || in.sampleRate < 0 {
			return in, nil, badRequest("sampleRate=%q is not a non-negative integer", s)
		}
	}

	data, displayNames, err := readProfile(req)
	if err != nil {
		return in, nil, err
	}
	limit := r.cfg.MaxDecompressedSize
	var p *profile.Profile
	if in.format == "lines" {
		if data, err = inflate(data, limit); err == nil {
			if n := bytes.Count(data, []byte{'\n'}) + 1; n > r.cfg.MaxProfileEntries {
				err = &tooManyEntriesError{what: "lines", n: n, limit: r.cfg.MaxProfileEntries}
			} else {
				p, err = parseLines(data, in.sampleRate, in.units)
			}
		}
	} else {
		p, err = decodePprof(data, limit, r.cfg.MaxProfileEntries)
	}
	var tooLarge *decompressedTooLargeError
	var tooMany *tooManyEntriesError
	if errors.As(err, &tooLarge) || errors.As(err, &tooMany) {
		return in, nil, &requestError{status: http.StatusRequestEntityTooLarge, msg: err.Error()}
	}
	if err != nil {
		return in, nil, badRequest("%v", err)
	}
	in.profileName = pprofconv.ProfileName(p, displayNames)
	if name := pprofconv.LegacyProfileName(in.profileType); in.format == "lines" && name != "" {
		in.profileName = name // collapsed stacks say what they are only in the name suffix
	}
	return in, p, nil
}

// maxSampleTypeConfig bounds the sample_type_config part: a few hundred
// bytes in practice.
const maxSampleTypeConfig = 64 << 10

// readProfile returns the profile bytes: the "profile" part of a multipart
// form (as pyroscope-go sends it), or the raw body; and the display names of
// the form's sample_type_config part, which name mutex and block profiles.
func readProfile(req *http.Request) (data []byte, displayNames map[string]string, err error) {
	mediaType, params, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if mediaType != "multipart/form-data" {
		data, err = readAll(req.Body)
		return data, nil, err
	}
	mr := multipart.NewReader(req.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			if data == nil {
				return nil, nil, badRequest("multipart body has no \"profile\" part")
			}
			return data, displayNames, nil
		}
		if err != nil {
			return nil, nil, tooLargeOr(err, "malformed multipart body: %v", err)
		}
		switch part.FormName() {
		case "profile":
			if data, err = readAll(part); err != nil {
				return nil, nil, err
			}
		case "sample_type_config":
			if displayNames, err = readSampleTypeConfig(part); err != nil {
				return nil, nil, err
			}
		default:
			// prev_profile: pyroscope-go has sent deltas itself since v0.x;
			// Pyroscope refuses it too.
		}
	}
}

// readSampleTypeConfig reads pyroscope-go's sample_type_config part:
// {"<sample type>": {"display-name": "...", "units": ..., ...}, ...}.
func readSampleTypeConfig(r io.Reader) (map[string]string, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxSampleTypeConfig+1))
	if err != nil {
		return nil, tooLargeOr(err, "reading sample_type_config: %v", err)
	}
	if len(raw) > maxSampleTypeConfig {
		return nil, &requestError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("the sample_type_config part is larger than %d bytes", maxSampleTypeConfig)}
	}
	var cfg map[string]*struct {
		DisplayName string `json:"display-name"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, badRequest("sample_type_config is not valid JSON: %v", err)
	}
	names := make(map[string]string, len(cfg))
	for st, c := range cfg {
		if c != nil && c.DisplayName != "" {
			names[st] = c.DisplayName
		}
	}
	return names, nil
}

func readAll(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, tooLargeOr(err, "reading the body: %v", err)
	}
	if len(data) == 0 {
		return nil, badRequest("the profile is empty")
	}
	return data, nil
}

// tooLargeOr maps confighttp's body limit to 413, anything else to 400.
func tooLargeOr(err error, format string, args ...any) error {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return &requestError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("the body is larger than max_request_body_size (%d bytes)", maxErr.Limit)}
	}
	if strings.Contains(err.Error(), "request body too large") {
		return &requestError{status: http.StatusRequestEntityTooLarge, msg: "the body is larger than max_request_body_size"}
	}
	return badRequest(format, args...)
}
