package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/otelcol-fabric/otelcol-fabric/internal/pyroscopetest"
)

// A store outage through the binary: the shipped gateway.yaml in front of
// every store, a stream of items with unique ids on every signal, every
// store down (its port refusing connections) for FABRIC_OUTAGE_SECONDS in
// the middle of the stream, then back. Every item the gateway acknowledged
// must reach every store that takes its signal, and the duplicates are
// counted. `make test` runs a 15 s outage; `make reliability` a 60 s one.

// restartable serves on one loopback address that can be closed (the port
// then refuses connections, as a store that is down) and opened again.
type restartable struct {
	t     *testing.T
	addr  string
	serve func(net.Listener) (stop func())
	mu    sync.Mutex
	stop  func()
}

func newRestartable(t *testing.T, serve func(net.Listener) (stop func())) *restartable {
	r := &restartable{t: t, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), serve: serve}
	require.NoError(t, r.up())
	t.Cleanup(r.down)
	return r
}

// up listens again; it may run outside the test goroutine, so it returns
// its error instead of failing the test.
func (r *restartable) up() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop != nil {
		return nil
	}
	var l net.Listener
	var err error
	for range 50 { // the port may linger for a moment after close
		if l, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	r.stop = r.serve(l)
	return nil
}

func (r *restartable) down() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
}

func httpServe(h http.Handler) func(net.Listener) func() {
	return func(l net.Listener) func() {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(l) }()
		return func() { _ = srv.Close() }
	}
}

// prometheusProcess is Debian's Prometheus on a fixed port and data
// directory, so that it can be stopped and started again with its data.
type prometheusProcess struct {
	t    *testing.T
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

func newPrometheusProcess(t *testing.T) *prometheusProcess {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus is not installed: `make test` installs it (apt-get install -y prometheus)")
	}
	p := &prometheusProcess{t: t, bin: bin, dir: t.TempDir(), addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), out: &syncBuffer{}}
	require.NoError(t, os.WriteFile(filepath.Join(p.dir, "prometheus.yml"), []byte("global:\n  scrape_interval: 1m\n"), 0o600))
	require.NoError(t, p.start())
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", p.out.String())
		}
	})
	return p
}

func (p *prometheusProcess) url() string { return "http://" + p.addr }

// start runs Prometheus and waits until it is ready; it may run outside
// the test goroutine, so it returns its error instead of failing the test.
func (p *prometheusProcess) start() error {
	p.cmd = exec.Command(p.bin, "--config.file="+filepath.Join(p.dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(p.dir, "data"), "--web.listen-address="+p.addr,
		"--web.enable-remote-write-receiver", "--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return err
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(p.url() + "/-/ready")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
	}
	return fmt.Errorf("prometheus not ready after a minute:\n%s", p.out.String())
}

func (p *prometheusProcess) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// seqCounter counts deliveries per sequence number.
type seqCounter struct {
	mu sync.Mutex
	n  map[int]int
}

func (c *seqCounter) add(seq int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[int]int{}
	}
	c.n[seq]++
}

// count returns how many of the acknowledged sequence numbers arrived, and
// how many extra copies arrived in all.
func (c *seqCounter) count(acked []int) (delivered, duplicates int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range acked {
		if n := c.n[s]; n > 0 {
			delivered++
			duplicates += n - 1
		}
	}
	return delivered, duplicates
}

func seqOf(attrs pcommon.Map) (int, bool) {
	v, ok := attrs.Get("outage.seq")
	if !ok {
		return 0, false
	}
	return int(v.Int()), true
}

// outageStores are counting stand-ins for every store of the gateway.
type outageStores struct {
	tempo, vendorTraces, esTraces seqCounter
	loki, vendorLogs, esLogs      seqCounter
	vendorMetrics                 seqCounter
	pyroscope                     *pyroscopetest.Server
}

func countTraces(c *seqCounter, td ptrace.Traces) {
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				if seq, ok := seqOf(s.Attributes()); ok {
					c.add(seq)
				}
			}
		}
	}
}

// bodySeq reads the sequence number of a log body "... #<seq>" (the
// gateway's tagguard keeps no custom log attribute).
func bodySeq(body string) (int, bool) {
	i := strings.LastIndexByte(body, '#')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(body[i+1:])
	return n, err == nil
}

func countLogs(c *seqCounter, ld plog.Logs) {
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if seq, ok := bodySeq(lr.Body().AsString()); ok {
					c.add(seq)
				}
			}
		}
	}
}

func countMetrics(c *seqCounter, md pmetric.Metrics) {
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Type() != pmetric.MetricTypeGauge {
					continue
				}
				for _, dp := range m.Gauge().DataPoints().All() {
					if seq, ok := seqOf(dp.Attributes()); ok {
						c.add(seq)
					}
				}
			}
		}
	}
}

// otlpHTTPCounting serves OTLP/HTTP under prefix and counts sequence numbers.
func otlpHTTPCounting(prefix string, traces, logs, metrics *seqCounter) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+prefix+"traces", func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r)
		req := ptraceotlp.NewExportRequest()
		if err == nil {
			err = req.UnmarshalProto(body)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		countTraces(traces, req.Traces())
	})
	mux.HandleFunc("POST "+prefix+"logs", func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r)
		req := plogotlp.NewExportRequest()
		if err == nil {
			err = req.UnmarshalProto(body)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		countLogs(logs, req.Logs())
	})
	mux.HandleFunc("POST "+prefix+"metrics", func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r)
		req := pmetricotlp.NewExportRequest()
		if err == nil {
			err = req.UnmarshalProto(body)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if metrics != nil {
			countMetrics(metrics, req.Metrics())
		}
	})
	return mux
}

type countingTempo struct {
	ptraceotlp.UnimplementedGRPCServer
	c *seqCounter
}

func (s *countingTempo) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	countTraces(s.c, req.Traces())
	return ptraceotlp.NewExportResponse(), nil
}

// countingElasticsearch answers the product check and _bulk, counting the
// documents of logs and traces by their outage.seq attribute.
func countingElasticsearch(logs, traces *seqCounter) http.Handler {
	es := &esStandIn{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/_bulk") {
			fmt.Fprint(w, `{"name":"stand-in","cluster_name":"fabric","version":{"number":"8.17.0","build_flavor":"default"},"tagline":"You Know, for Search"}`)
			return
		}
		body, err := readBody(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		es.mu.Lock()
		first := len(es.docs)
		es.mu.Unlock()
		items, err := es.bulk(body, r.URL.Path)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":{"type":"parse_exception","reason":%q},"status":400}`, err.Error())
			return
		}
		docs, _ := es.snapshot()
		for _, d := range docs[first:] {
			if strings.HasPrefix(d.Index, "logs-") {
				body, _ := d.Doc["body"].(map[string]any)
				text, _ := body["text"].(string)
				if seq, ok := bodySeq(text); ok {
					logs.add(seq)
				}
			} else if strings.HasPrefix(d.Index, "traces-") {
				attrs, _ := d.Doc["attributes"].(map[string]any)
				if seq, ok := attrs["outage.seq"].(float64); ok {
					traces.add(int(seq))
				}
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"took": 1, "errors": false, "items": items})
	})
}

// outageItems builds request bodies for one sequence number.
func outageTraces(run string, seq int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	gwResource(rs.Resource(), "checkout", "gold", run)
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName("GET /cart")
	s.SetTraceID(pcommon.TraceID{0: 0xfa, 12: byte(seq >> 24), 13: byte(seq >> 16), 14: byte(seq >> 8), 15: byte(seq)})
	s.SetSpanID(pcommon.SpanID{0: 0xfa, 4: byte(seq >> 24), 5: byte(seq >> 16), 6: byte(seq >> 8), 7: byte(seq)})
	now := time.Now()
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-5 * time.Millisecond)))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	s.Status().SetCode(ptrace.StatusCodeError) // kept by tail sampling
	s.Attributes().PutInt("outage.seq", int64(seq))
	body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	return body
}

func outageLogs(run string, seq int) []byte {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	gwResource(rl.Resource(), "checkout", "gold", run)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	lr.SetSeverityNumber(plog.SeverityNumberError)
	lr.Body().SetStr(fmt.Sprintf("payment declined #%d", seq))
	body, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	return body
}

func outageMetrics(run string, seq int) []byte {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	gwResource(rm.Resource(), "checkout", "gold", run)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("outage.probe")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	dp.SetIntValue(int64(seq))
	dp.Attributes().PutInt("outage.seq", int64(seq)) // one series per item
	body, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	return body
}

// outageProfile is a pprof CPU profile whose only function is named after
// the sequence number.
func outageProfile(seq int) []byte {
	fn := &profile.Function{ID: 1, Name: fmt.Sprintf("outage.fn%d", seq)}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:        10_000_000,
		TimeNanos:     time.Now().UnixNano(),
		DurationNanos: int64(time.Second),
		Function:      []*profile.Function{fn},
		Location:      []*profile.Location{loc},
		Sample:        []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{10_000_000}}},
	}
	var buf bytes.Buffer
	_ = p.Write(&buf) // a well-formed profile: cannot fail
	return buf.Bytes()
}

func profileSeq(p *pyroscopetest.Profile) (int, bool) {
	for _, f := range p.Profile.Function {
		name := p.Profile.StringTable[f.Name]
		if s, ok := strings.CutPrefix(name, "outage.fn"); ok {
			n, err := strconv.Atoi(s)
			return n, err == nil
		}
	}
	return 0, false
}

// promProbeSeqs are the sequence numbers of the run's outage.probe series in Prometheus.
func promProbeSeqs(t *testing.T, base, run string) map[int]bool {
	t.Helper()
	q := fmt.Sprintf(`last_over_time(outage_probe{service_instance_id=%q}[1h])`, run)
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	b, _ := io.ReadAll(resp.Body)
	if json.Unmarshal(b, &out) != nil {
		return nil
	}
	seqs := map[int]bool{}
	for _, r := range out.Data.Result {
		if n, err := strconv.Atoi(r.Metric["outage_seq"]); err == nil {
			seqs[n] = true
		}
	}
	return seqs
}

func outageSeconds(t *testing.T) time.Duration {
	s := os.Getenv("FABRIC_OUTAGE_SECONDS")
	if s == "" {
		return 15 * time.Second
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, "FABRIC_OUTAGE_SECONDS")
	return time.Duration(n) * time.Second
}

// TestStoreOutages: every store down for FABRIC_OUTAGE_SECONDS mid-stream;
// nothing acknowledged may be lost.
func TestStoreOutages(t *testing.T) {
	outageRun(t, "stores")
}

// TestGatewayRestart: the gateway stopped mid-stream and started again on
// the same queue directory, gracefully (SIGTERM: nothing acknowledged may be
// lost) and by SIGKILL (a crash: only what tail_sampling's decision_wait
// holds in memory is lost, and what remote write was sending; the test
// bounds and reports it), and
// killed while every store is down (what waits in the persistent queues
// survives; Prometheus's in-memory queue does not).
func TestGatewayRestart(t *testing.T) {
	for _, kind := range []string{"SIGTERM", "SIGKILL", "SIGKILL during store outage"} {
		t.Run(kind, func(t *testing.T) { outageRun(t, kind) })
	}
}

func outageRun(t *testing.T, kind string) {
	outage := outageSeconds(t)
	if kind == "SIGTERM" || kind == "SIGKILL" {
		outage = 0 // the gateway comes back as soon as it has stopped
	}
	st := &outageStores{pyroscope: pyroscopetest.New()}
	tempo := newRestartable(t, func(l net.Listener) func() {
		srv := grpc.NewServer()
		ptraceotlp.RegisterGRPCServer(srv, &countingTempo{c: &st.tempo})
		go func() { _ = srv.Serve(l) }()
		return srv.Stop
	})
	vendor := newRestartable(t, httpServe(otlpHTTPCounting("/v1/", &st.vendorTraces, &st.vendorLogs, &st.vendorMetrics)))
	loki := newRestartable(t, httpServe(otlpHTTPCounting("/otlp/v1/", nil, &st.loki, nil)))
	es := newRestartable(t, httpServe(countingElasticsearch(&st.esLogs, &st.esTraces)))
	pyro := newRestartable(t, httpServe(st.pyroscope.Handler()))
	prom := newPrometheusProcess(t)

	pyroscopeAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	col := startCollectorEnv(t, []string{
		"FABRIC_INGEST_TOKEN=" + gwToken,
		"FABRIC_QUEUE_DIR=" + t.TempDir(),
		"FABRIC_TEMPO_ENDPOINT=" + tempo.addr,
		"FABRIC_VENDOR_OTLP_ENDPOINT=http://" + vendor.addr,
		"FABRIC_LOKI_OTLP_ENDPOINT=http://" + loki.addr + "/otlp",
		"FABRIC_ELASTICSEARCH_ENDPOINT=http://" + es.addr,
		"FABRIC_PROMETHEUS_RW_ENDPOINT=" + prom.url() + "/api/v1/write",
		"FABRIC_PYROSCOPE_URL=http://" + pyro.addr,
		"FABRIC_PYROSCOPE_ENDPOINT=" + pyroscopeAddr,
		"FABRIC_QUEUEWATCH_ENDPOINT=127.0.0.1:0",
		"FABRIC_FLUENTFORWARD_ENDPOINT=127.0.0.1:0",
		"FABRIC_PPROF_ENDPOINT=127.0.0.1:0",
		"FABRIC_ZPAGES_ENDPOINT=127.0.0.1:0",
		"FABRIC_TAIL_DECISION_WAIT=1s",
		"FABRIC_TRACES_HELD_FOR=6s",
	}, "--config", "configs/gateway.yaml")
	run := fmt.Sprintf("outage-%d", time.Now().UnixNano())

	// post sends one request until the gateway acknowledges it (a refusal
	// under pressure is retried, as an SDK does); it reports acknowledgement.
	post := func(ctx context.Context, rawURL, contentType string, body []byte) bool {
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
			req.Header.Set("Content-Type", contentType)
			req.Header.Set("Authorization", "Bearer "+gwToken)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return true
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		return false
	}
	stores := []*restartable{tempo, vendor, loki, es, pyro}
	const rate = 10 // items per signal per second
	lead := 5 * time.Second
	total := lead + outage + lead
	ctx, cancel := context.WithTimeout(context.Background(), total+time.Minute)
	defer cancel()
	var acked struct {
		sync.Mutex
		traces, logs, metrics, profiles []int
		// during counts, per signal, the items acknowledged while the
		// stores were down: the outage must have been ridden through, not
		// waited out by the senders' retries.
		during       map[string]int
		downAt, upAt time.Time
	}
	acked.during = map[string]int{}
	ack := func(signal string, list *[]int, seq int) {
		acked.Lock()
		defer acked.Unlock()
		*list = append(*list, seq)
		if now := time.Now(); !acked.downAt.IsZero() && acked.upAt.IsZero() && now.After(acked.downAt) {
			acked.during[signal]++
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the senders: one goroutine per item, each retrying until acknowledged
		defer wg.Done()
		for seq := 0; time.Since(start) < total; seq++ {
			next := start.Add(time.Duration(seq) * time.Second / rate)
			time.Sleep(time.Until(next))
			wg.Add(1)
			go func(seq int) {
				defer wg.Done()
				base := "http://" + col.HTTP
				if post(ctx, base+"/v1/traces", "application/x-protobuf", outageTraces(run, seq)) {
					ack("traces", &acked.traces, seq)
				}
				if post(ctx, base+"/v1/logs", "application/x-protobuf", outageLogs(run, seq)) {
					ack("logs", &acked.logs, seq)
				}
				if post(ctx, base+"/v1/metrics", "application/x-protobuf", outageMetrics(run, seq)) {
					ack("metrics", &acked.metrics, seq)
				}
				q := url.Values{"name": {"checkout{service.instance.id=" + run + "}"}, "spyName": {"gospy"}}
				if post(ctx, "http://"+pyroscopeAddr+"/ingest?"+q.Encode(), "application/octet-stream", outageProfile(seq)) {
					ack("profiles", &acked.profiles, seq)
				}
			}(seq)
		}
	}()
	// The disruption, in the test goroutine.
	time.Sleep(lead)
	downAt := time.Now()
	acked.Lock()
	acked.downAt = downAt
	acked.Unlock()
	var restartErrs []error
	switch kind {
	case "stores":
		for _, s := range stores {
			s.down()
		}
		prom.stop()
		time.Sleep(outage)
		for _, s := range stores {
			restartErrs = append(restartErrs, s.up())
		}
		restartErrs = append(restartErrs, prom.start())
	case "SIGTERM":
		restartErrs = append(restartErrs, col.restart(syscall.SIGTERM))
	case "SIGKILL":
		restartErrs = append(restartErrs, col.restart(syscall.SIGKILL))
	case "SIGKILL during store outage":
		for _, s := range stores {
			s.down()
		}
		prom.stop()
		time.Sleep(outage / 2)
		restartErrs = append(restartErrs, col.restart(syscall.SIGKILL))
		time.Sleep(outage / 2)
		for _, s := range stores {
			restartErrs = append(restartErrs, s.up())
		}
		restartErrs = append(restartErrs, prom.start())
	}
	upAt := time.Now()
	acked.Lock()
	acked.upAt = upAt
	acked.Unlock()
	wg.Wait()
	for _, err := range restartErrs {
		require.NoError(t, err, "a store did not come back")
	}
	t.Logf("%s: down at +%s, back at +%s; %d items per signal acknowledged, while down: %v",
		kind, downAt.Sub(start).Round(time.Second), upAt.Sub(start).Round(time.Second), len(acked.traces), acked.during)
	if kind == "stores" {
		for _, sig := range []string{"traces", "logs", "metrics", "profiles"} {
			assert.Greater(t, acked.during[sig], rate*int(outage/time.Second)/2,
				"%s: the gateway kept acknowledging while the stores were down (queued, not refused)", sig)
		}
	}

	type row struct {
		store, signal string
		c             *seqCounter
		acked         []int
	}
	profilesSeen := &seqCounter{}
	rows := []row{
		{"Tempo (otlp_grpc)", "traces", &st.tempo, acked.traces},
		{"vendor traces (otlp_http)", "traces", &st.vendorTraces, acked.traces},
		{"Elasticsearch traces", "traces", &st.esTraces, acked.traces},
		{"Loki (otlp_http)", "logs", &st.loki, acked.logs},
		{"vendor logs (otlp_http)", "logs", &st.vendorLogs, acked.logs},
		{"Elasticsearch logs", "logs", &st.esLogs, acked.logs},
		{"vendor metrics (otlp_http)", "metrics", &st.vendorMetrics, acked.metrics},
		{"Pyroscope (profilelink)", "profiles", profilesSeen, acked.profiles},
	}
	countProfiles := func() {
		*profilesSeen = seqCounter{}
		for _, p := range st.pyroscope.Profiles() {
			if seq, ok := profileSeq(p); ok {
				profilesSeen.add(seq)
			}
		}
	}
	promSeen := map[int]bool{}
	complete := func() bool {
		countProfiles()
		for _, r := range rows {
			if d, _ := r.c.count(r.acked); d < len(r.acked) {
				return false
			}
		}
		promSeen = promProbeSeqs(t, prom.url(), run)
		for _, s := range acked.metrics {
			if !promSeen[s] {
				return false
			}
		}
		return true
	}

	deadline := time.Now().Add(3 * time.Minute)
	switch kind { // what is lost stays lost: wait long enough for the queues to drain
	case "SIGKILL":
		deadline = time.Now().Add(45 * time.Second)
	case "SIGKILL during store outage":
		deadline = time.Now().Add(2 * time.Minute)
	}
	for !complete() && time.Now().Before(deadline) {
		time.Sleep(time.Second)
	}
	recovered := time.Since(upAt).Round(time.Second)
	countProfiles() // complete stops at the first store still missing items
	promSeen = promProbeSeqs(t, prom.url(), run)

	var report strings.Builder
	lossless := !strings.HasPrefix(kind, "SIGKILL")
	// A crash loses what the gateway holds in memory only: traces for
	// tail_sampling's decision_wait (1 s here) and its decision tick (1 s).
	// Logs, metrics and profiles are on disk in the exporters' persistent
	// queues before they are acknowledged (batching happens in those
	// queues), so a crash loses none of them; Prometheus remote write's
	// queue is in memory: what it was sending is lost. At `rate` items per
	// second, with a second of slack:
	crashBound := map[string]int{"traces": rate * (1 + 1 + 1), "logs": 0, "metrics": 0, "profiles": 0}
	promCrashBound := rate * (1 + 1)
	fmt.Fprintf(&report, "\n| store | acknowledged | delivered | lost | duplicates |\n| --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		d, dup := r.c.count(r.acked)
		fmt.Fprintf(&report, "| %s | %d | %d | %d | %d |\n", r.store, len(r.acked), d, len(r.acked)-d, dup)
		if lossless {
			assert.Equal(t, len(r.acked), d, "%s: every acknowledged item delivered (%s)", r.store, kind)
		} else {
			assert.LessOrEqual(t, len(r.acked)-d, crashBound[r.signal], "%s: a crash loses at most the in-memory window", r.store)
		}
	}
	var promDelivered int
	for _, s := range acked.metrics {
		if promSeen[s] {
			promDelivered++
		}
	}
	fmt.Fprintf(&report, "| Prometheus (prometheusremotewrite) | %d | %d | %d | n/a (one series per item) |\n",
		len(acked.metrics), promDelivered, len(acked.metrics)-promDelivered)
	switch {
	case kind == "SIGKILL during store outage":
		// remote write's queue is in memory: what waited for Prometheus
		// when the gateway died is gone. Reported, not asserted.
	case !lossless:
		assert.LessOrEqual(t, len(acked.metrics)-promDelivered, promCrashBound, "Prometheus: a crash loses at most what remote write was sending")
	case !assert.Equal(t, len(acked.metrics), promDelivered, "Prometheus: every acknowledged point delivered (%s)", kind):
		series := promSeries(t, prom.url(), `{__name__=~"outage.*"}`)
		t.Logf("Prometheus has %d outage series; first: %v", len(series), series[:min(len(series), 1)])
	}
	t.Logf("%s (store outage %s); counted %s after recovery:%s", kind, outage, recovered, report.String())
	rss := peakRSS(t, col.cmd.Process.Pid)
	title := map[string]string{
		"stores":                      fmt.Sprintf("Every store down for %s", outage),
		"SIGTERM":                     "Gateway stopped with SIGTERM mid-stream, started again on its queue directory",
		"SIGKILL":                     "Gateway killed with SIGKILL mid-stream, started again on its queue directory",
		"SIGKILL during store outage": fmt.Sprintf("Gateway killed with SIGKILL %s into a %s outage of every store", outage/2, outage),
	}[kind]
	test := map[string]string{"stores": "TestStoreOutages", "SIGTERM": "TestGatewayRestart/SIGTERM", "SIGKILL": "TestGatewayRestart/SIGKILL$", "SIGKILL during store outage": "TestGatewayRestart/SIGKILL_during"}[kind]
	reliability.record(title, fmt.Sprintf("FABRIC_BIN=bin/otelcol-fabric FABRIC_OUTAGE_SECONDS=%d go test -count=1 -run '%s' ./tests/", int(outageSeconds(t).Seconds()), test),
		fmt.Sprintf("Shipped configs/gateway.yaml (tail sampling decision_wait 1 s), %d items per second on each signal, each with a unique id; "+
			"stores are real listeners closed for the outage (Prometheus is Debian's, killed and restarted). "+
			"Delivered counted %s after recovery. Peak RSS of the (last) gateway process: %d MiB.\n%s",
			rate, recovered, rss>>20, report.String()))
	if !t.Failed() {
		assert.Empty(t, st.pyroscope.Rejected())
	}
	require.Equal(t, 0, col.terminate())
}
