package gobenchreceiver // import "github.com/otelcol-fabric/otelcol-fabric/receivers/gobenchreceiver"

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/otelcol-fabric/otelcol-fabric/receivers/gobenchreceiver/internal/metadata"
)

// runParam is a request parameter naming the run: a query parameter, or
// the header of the same meaning; it becomes a resource attribute.
type runParam struct {
	query, header, attr string
}

// runParams are the parameters a request may carry. Query parameters win
// over headers.
var runParams = []runParam{
	{"run_id", "X-Benchmark-Run-Id", AttrRunID},
	{"baseline_run_id", "X-Benchmark-Baseline-Run-Id", AttrBaselineRunID},
	{"service.name", "X-Service-Name", "service.name"},
	{"service.version", "X-Service-Version", "service.version"},
	{"vcs.ref.head.revision", "X-Vcs-Ref-Head-Revision", "vcs.ref.head.revision"},
	{"vcs.ref.head.name", "X-Vcs-Ref-Head-Name", "vcs.ref.head.name"},
	{"deployment.environment.name", "X-Deployment-Environment-Name", "deployment.environment.name"},
	{"ci_job_url", "X-Ci-Job-Url", "cicd.pipeline.run.url.full"},
}

// maxParamBytes bounds a parameter's value: an id, a commit, a URL.
const maxParamBytes = 1024

// maxListedLines bounds how many rejected lines a response lists (all are
// counted).
const maxListedLines = 100

type gobenchReceiver struct {
	cfg    *Config
	set    receiver.Settings
	next   consumer.Metrics
	tb     *metadata.TelemetryBuilder
	obs    *receiverhelper.ObsReport
	server *http.Server
	done   sync.WaitGroup
}

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Metrics) (*gobenchReceiver, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("gobench: telemetry: %w", err)
	}
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, fmt.Errorf("gobench: obsreport: %w", err)
	}
	return &gobenchReceiver{cfg: cfg, set: set, next: next, tb: tb, obs: obs}, nil
}

func (r *gobenchReceiver) Start(ctx context.Context, host component.Host) error {
	ln, err := r.cfg.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("gobench: listen on %s: %w", r.cfg.NetAddr.Endpoint, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(r.cfg.Path, r.handle)
	srv, err := r.cfg.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, mux)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("gobench: server: %w", err)
	}
	r.server = srv
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.set.Logger.Error("gobench: server stopped", zap.Error(err))
		}
	}()
	return nil
}

func (r *gobenchReceiver) Shutdown(ctx context.Context) error {
	var err error
	if r.server != nil {
		err = r.server.Shutdown(ctx)
	}
	r.done.Wait()
	r.tb.Shutdown()
	return err
}

// response is the JSON body of every answer but 405.
type response struct {
	RunID string `json:"run_id,omitempty"`
	// Status: accepted (every line kept), partial (the lines in
	// rejected_lines were left out, the rest was ingested), rejected (400,
	// 413, 415: nothing was ingested; or the pipeline refused the data
	// permanently) or refused (503: the pipeline could not take it all
	// now; a branch of the pipeline may have taken it).
	Status          string         `json:"status"`
	Message         string         `json:"message"`
	Format          string         `json:"format,omitempty"`
	Benchmarks      int            `json:"benchmarks"`
	DataPoints      int            `json:"data_points"`
	RejectedCount   int            `json:"rejected_line_count,omitempty"`
	RejectedLines   []rejectedLine `json:"rejected_lines,omitempty"`
	RejectedListCut bool           `json:"rejected_lines_truncated,omitempty"`
}

func (r *gobenchReceiver) handle(w http.ResponseWriter, req *http.Request) {
	resp := &response{Status: "rejected"}
	status := http.StatusBadRequest
	defer func() {
		r.tb.ReceiverGobenchRuns.Add(req.Context(), 1, metric.WithAttributeSet(
			attribute.NewSet(attribute.String("format", orText(resp.Format)), attribute.String("outcome", resp.Status))))
		w.Header().Set("Content-Type", "application/json")
		if resp.RunID != "" {
			w.Header().Set("X-Benchmark-Run-Id", resp.RunID)
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "5")
		}
		w.WriteHeader(status)
		b, _ := json.MarshalIndent(resp, "", "  ")
		_, _ = w.Write(append(b, '\n'))
	}()
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		status, resp.Message = http.StatusMethodNotAllowed, "gobench: use POST with go test -bench output as the body"
		return
	}
	attrs, err := runAttributes(req)
	if err != nil {
		resp.Message = "gobench: " + err.Error()
		return
	}
	resp.RunID = attrs[AttrRunID]
	body, err := io.ReadAll(req.Body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			status = http.StatusRequestEntityTooLarge
			resp.Message = fmt.Sprintf("gobench: the body is larger than max_request_body_size (%d bytes, after gzip inflation); nothing was ingested: split the upload (one request per package)", maxErr.Limit)
			return
		}
		resp.Message = "gobench: reading the body: " + err.Error()
		return
	}
	format, err := detectFormat(req.URL.Query().Get("format"), body)
	if err != nil {
		status, resp.Message = http.StatusUnsupportedMediaType, "gobench: "+err.Error()
		return
	}
	resp.Format = format
	d, err := decode(body, format, r.cfg.MaxSamplesPerBenchmark)
	if err != nil {
		resp.Message = "gobench: " + err.Error() + "; nothing was ingested"
		return
	}
	resp.RejectedCount = len(d.rejected)
	resp.RejectedLines = d.rejected
	if len(resp.RejectedLines) > maxListedLines {
		resp.RejectedLines, resp.RejectedListCut = resp.RejectedLines[:maxListedLines], true
	}
	r.tb.ReceiverGobenchLinesRejected.Add(req.Context(), int64(len(d.rejected)))
	if d.results == 0 {
		resp.Message = "gobench: no benchmark result lines in the body (expected go test -bench output, or go test -json with -bench); nothing was ingested"
		return
	}
	if len(d.rejected) > r.cfg.MaxRejectedLines {
		resp.Message = fmt.Sprintf("gobench: %d rejected lines (malformed or beyond a limit), more than max_rejected_lines (%d); nothing was ingested", len(d.rejected), r.cfg.MaxRejectedLines)
		return
	}

	md := toMetrics(d, attrs, pcommon.NewTimestampFromTime(time.Now()))
	resp.Benchmarks, resp.DataPoints = d.results, md.DataPointCount()
	ctx := r.obs.StartMetricsOp(req.Context())
	err = r.next.ConsumeMetrics(ctx, md)
	r.obs.EndMetricsOp(ctx, format, md.DataPointCount(), err)
	if err != nil {
		resp.Benchmarks, resp.DataPoints = 0, 0
		if consumererror.IsPermanent(err) {
			resp.Message = "gobench: the pipeline refused these benchmarks permanently (a branch of it that took them before the refusal keeps them), do not retry: " + err.Error()
			return
		}
		status, resp.Status = http.StatusServiceUnavailable, "refused"
		resp.Message = "gobench: the pipeline cannot take these benchmarks now, retry the same upload (a branch of it may already have taken them: the benchstat connector reports each comparison once): " + err.Error()
		return
	}
	r.tb.ReceiverGobenchBenchmarks.Add(req.Context(), int64(d.results))
	status, resp.Status = http.StatusOK, "accepted"
	resp.Message = fmt.Sprintf("gobench: %d benchmark results ingested as %d data points", d.results, resp.DataPoints)
	if len(d.rejected) > 0 {
		resp.Status = "partial"
		resp.Message += fmt.Sprintf("; %d lines were left out (malformed or beyond a limit: see rejected_lines), the rest was ingested", len(d.rejected))
	}
}

func orText(f string) string {
	if f == "" {
		return formatText
	}
	return f
}

// runAttributes reads the run's parameters; run_id is generated when absent.
func runAttributes(req *http.Request) (map[string]string, error) {
	q := req.URL.Query()
	known := map[string]bool{"format": true}
	attrs := map[string]string{}
	for _, p := range runParams {
		known[p.query] = true
		v := q.Get(p.query)
		if v == "" {
			v = req.Header.Get(p.header)
		}
		if v == "" {
			continue
		}
		if !utf8.ValidString(v) || len(v) > maxParamBytes {
			return nil, fmt.Errorf("%s must be valid UTF-8 of at most %d bytes", p.query, maxParamBytes)
		}
		attrs[p.attr] = v
	}
	var unknown []string
	for k := range q {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		names := make([]string, 0, len(runParams)+1)
		for _, p := range runParams {
			names = append(names, p.query)
		}
		names = append(names, "format")
		return nil, fmt.Errorf("unknown query parameters %q (known: %s)", unknown, strings.Join(names, ", "))
	}
	if attrs[AttrRunID] == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		attrs[AttrRunID] = hex.EncodeToString(b[:])
	}
	return attrs, nil
}
