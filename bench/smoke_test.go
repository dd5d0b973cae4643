package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// TestTrackerCountsExactly: the tracker's verdict, without a collector: a
// span that does not arrive is lost, one that arrives twice is a duplicate,
// a span of another run or with a sequence id that is not its trace's is
// not counted as delivered.
func TestTrackerCountsExactly(t *testing.T) {
	spec := defaultWorkloadSpec()
	spec.Requests = 2
	w, err := buildWorkload(spec)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTracker(42)
	tm := &w.templates[0]
	buf := append([]byte{}, tm.data...)
	first := tr.reserve(len(tm.traces))
	tm.stamp(buf, tr.nonce, first)
	tr.sent(first, tm, tr.now())
	tr.answered(first, len(tm.traces), true)

	// Decode what the sender would send and deliver it span by span, as
	// the sink does, minus the first span, and the last span twice.
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(buf); err != nil {
		t.Fatal(err)
	}
	var all []ptrace.Span
	rss := req.Traces().ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		for j := 0; j < rss.At(i).ScopeSpans().Len(); j++ {
			sp := rss.At(i).ScopeSpans().At(j).Spans()
			for k := 0; k < sp.Len(); k++ {
				all = append(all, sp.At(k))
			}
		}
	}
	if len(all) != tm.spans {
		t.Fatalf("decoded %d spans, template has %d", len(all), tm.spans)
	}
	arrive := func(sp ptrace.Span) {
		v, _ := sp.Attributes().Get(seqKey)
		tr.spanArrived([16]byte(sp.TraceID()), []byte(v.Str()), tr.now())
	}
	for _, sp := range all[1:] {
		arrive(sp)
	}
	arrive(all[len(all)-1])
	v := tr.verdict()
	if v.SpansAcked != int64(tm.spans) {
		t.Fatalf("acked %d spans, want %d", v.SpansAcked, tm.spans)
	}
	if v.Lost != 1 || v.Duplicates != 1 || v.Delivered != int64(tm.spans)-1 {
		t.Fatalf("verdict: delivered %d lost %d dup %d, want %d, 1, 1", v.Delivered, v.Lost, v.Duplicates, tm.spans-1)
	}
	if v.TracesPartial != 1 {
		t.Fatalf("partial traces %d, want 1", v.TracesPartial)
	}
	// Another run's spans and a forged sequence id are not counted.
	var id [16]byte
	tr.spanArrived(id, []byte("0000000000000000"), 1)
	copy(id[:8], []byte{0, 0, 0, 0, 0, 0, 0, 42})
	id[15] = 9
	tr.spanArrived(id, []byte("0000000000000000"), 1) // seq 0 belongs to trace 0, not 9
	if tr.foreign.Load() != 1 || tr.mismatch.Load() != 1 {
		t.Fatalf("foreign %d mismatch %d, want 1 and 1", tr.foreign.Load(), tr.mismatch.Load())
	}
	if v2 := tr.verdict(); v2.Delivered != v.Delivered {
		t.Fatalf("forged spans counted: delivered %d, was %d", v2.Delivered, v.Delivered)
	}
}

// TestSmokeThroughBinary runs the harness for a few seconds against the
// built binary (FABRIC_BIN, set by `make test`): baseline, the fabric
// gateway chain with a keep-all policy and the agent, each must deliver
// every acknowledged span exactly once, and the report must render.
func TestSmokeThroughBinary(t *testing.T) {
	if got := fmt.Sprintf("%dMiB", gcPodLimit*8/10>>20); got != gcMemLimit {
		t.Fatalf("gcMemLimit %s is not 80%% of gcPodLimit (%s)", gcMemLimit, got)
	}
	bin := os.Getenv("FABRIC_BIN")
	if bin == "" {
		t.Skip("FABRIC_BIN is not set: `make test` builds bin/otelcol-fabric and runs this against it")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("FABRIC_BIN=%s: %v", bin, err)
	}
	base := 41500
	if p := os.Getenv("FABRIC_BENCH_BASE_PORT"); p != "" {
		base, _ = strconv.Atoi(p)
	}
	root, _ := filepath.Abs("..")
	// The collector's Go runtime settings come from the config under test
	// only: this one must not reach any run.
	t.Setenv("GOGC", "50")
	spec := defaultWorkloadSpec()
	spec.Requests = 8
	w, err := buildWorkload(spec)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := startSink("127.0.0.1:" + strconv.Itoa(base))
	if err != nil {
		t.Fatal(err)
	}
	defer sk.stop()
	h := &harness{root: root, bin: bin, basePort: base, sink: sk, work: w, token: "smoke-token", streams: 2,
		decisionWait: time.Second, tmp: t.TempDir(), idle: 500 * time.Millisecond, logf: t.Logf}
	cfgs := allConfigs()
	ctx := context.Background()
	var runs, levers, gcRuns, slowRuns []runResult
	// The ablation's steps and a compressed hop each way run too, so that
	// their configs keep starting.
	// So do a GC experiment's config (its environment) and a slow store
	// run (the sink's delay, the queue poll).
	for _, name := range []string{"baseline", "gateway-keepall", "agent", "ablate-1-receive", "ablate-2-processors", "ablate-3-persistent", "ablate-4-tailsampling", "agent-zstd", "gateway-keepall-zstd-in", "gateway-keepall-gogc400", "slow:gateway-keepall"} {
		name, slow := strings.CutPrefix(name, "slow:")
		if slow {
			h.sink.delay.Store(int64(300 * time.Millisecond))
			h.pollQueue = true
		}
		wantEncoding := ""
		switch name {
		case "agent":
			b, _ := os.ReadFile(filepath.Join(root, "configs", "agent.yaml"))
			wantEncoding = agentCompression(b)
		case "agent-zstd":
			wantEncoding = "zstd" // the --set override, not what the agent ships
		}
		r, err := h.runOnce(ctx, cfgs[name], loadSpec{Rate: 1000, Duration: 2 * time.Second}, 0, nil)
		h.sink.delay.Store(0)
		h.pollQueue = false
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The delay reached the pipeline: every export this run's
		// collector sent was answered only after it. (Not checked by
		// latency: gateway-keepall's, decision_wait plus the phases of
		// the 1 s decision tick and the exporter's 1 s flush timer,
		// varies between runs by more than the 300 ms.)
		if slow && (r.SinkDelay != 300*time.Millisecond || r.QueueMax <= 0 || r.SinkHeld == 0 || r.SinkHeld != r.SinkRequests) {
			t.Errorf("slow store %s: sink delay %v, queue peak %.0f, %d of %d exports held back: want 300ms, the persistent queue's items read from the collector's metrics, and every export answered after the delay",
				name, r.SinkDelay, r.QueueMax, r.SinkHeld, r.SinkRequests)
		}
		if !slow && r.SinkHeld != 0 {
			t.Errorf("%s: %d exports held back without a delay", name, r.SinkHeld)
		}
		if !slow && r.QueueMax != 0 {
			t.Errorf("%s: queue peak %.0f without the queue poll", name, r.QueueMax)
		}
		wantEnv := strings.Join(cfgs[name].Env, " ")
		if r.RuntimeEnv != wantEnv {
			t.Errorf("%s: the collector started with %q, want %q (its config's, nothing inherited)", name, r.RuntimeEnv, wantEnv)
		}
		h.logRun(r)
		if r.V.SpansAcked == 0 || r.V.Delivered != r.V.SpansAcked || r.V.Lost != 0 || r.V.Duplicates != 0 || r.V.SpansRefused != 0 {
			t.Errorf("%s: acked %d, delivered %d, lost %d, duplicated %d, refused %d: want every acknowledged span exactly once",
				name, r.V.SpansAcked, r.V.Delivered, r.V.Lost, r.V.Duplicates, r.V.SpansRefused)
		}
		if r.Foreign != 0 || r.Mismatch != 0 {
			t.Errorf("%s: %d foreign and %d mismatched spans at the sink", name, r.Foreign, r.Mismatch)
		}
		if r.CPU <= 0 || r.RSSMax <= 0 {
			t.Errorf("%s: CPU %.3f s, RSS %d: /proc sampling read nothing", name, r.CPU, r.RSSMax)
		}
		if len(r.V.Latencies) == 0 || r.P99 <= 0 {
			t.Errorf("%s: no latency measured", name)
		}
		if cfgs[name].Agent && r.SinkWireBytes == 0 || cfgs[name].SendCompression != "" && r.SentWireBytes == 0 {
			t.Errorf("%s: no traces export bytes counted (sink %d, sender %d)", name, r.SinkWireBytes, r.SentWireBytes)
		}
		if strings.HasSuffix(name, "zstd") && r.SinkWireBytes >= r.SinkBytes || strings.HasSuffix(name, "zstd-in") && r.SentWireBytes >= r.SentBytes {
			t.Errorf("%s: zstd did not shrink the payload: sink %d of %d bytes, sender %d of %d", name, r.SinkWireBytes, r.SinkBytes, r.SentWireBytes, r.SentBytes)
		}
		if wantEncoding != "" && (len(r.SinkEncodings) != 1 || r.SinkEncodings[wantEncoding] == 0) {
			t.Errorf("%s: the sink saw grpc-encodings %v, want only %q", name, r.SinkEncodings, wantEncoding)
		}
		switch {
		case slow:
			slowRuns = append(slowRuns, r)
		case strings.Contains(name, "gogc"):
			gcRuns = append(gcRuns, r)
		case strings.HasPrefix(name, "ablate-") || strings.Contains(name, "zstd"):
			levers = append(levers, r)
		default:
			runs = append(runs, r)
		}
	}
	// The overload run's machinery: the collector inside a memory cgroup,
	// GOMEMLIMIT, the cgroup's counters (where cgroups can be created).
	var over *overloadPoint
	op, err := h.overload(ctx, cfgs["gateway-keepall"], 2000, 1000, 2*time.Second, 1<<30)
	switch {
	case err != nil && strings.Contains(err.Error(), "no memory cgroup"):
		t.Logf("overload run not checked: %v", err)
	case err != nil:
		t.Fatalf("overload: %v", err)
	default:
		if op.Run.V.SpansAcked == 0 || op.Run.V.Lost != 0 || op.CgroupMax <= 0 || op.Run.RSSMax <= 0 || op.GoMemLimit != "819MiB" {
			t.Errorf("overload: acked %d, lost %d, cgroup max usage %d, RSS %d, GOMEMLIMIT %s: want spans acknowledged, none lost, and the cgroup's and /proc's readings",
				op.Run.V.SpansAcked, op.Run.V.Lost, op.CgroupMax, op.Run.RSSMax, op.GoMemLimit)
		}
		over = &op
	}
	p, err := measurePhysical(w, 200*time.Millisecond)
	if err != nil || p.SpansPerCPUs <= 0 {
		t.Fatalf("physical limit: %+v %v", p, err)
	}
	dir := t.TempDir()
	res := &results{Started: time.Now(), Finished: time.Now(), Options: options{Root: root, Bin: bin, Report: filepath.Join(dir, "BENCHMARKS.md"), PlotDir: filepath.Join(dir, "plots"), Rate: 1000, Duration: 2 * time.Second, Rounds: 1},
		Workload: summarize(w), Physical: &p, Compare: runs, Overload: over}
	for _, r := range levers {
		if strings.HasPrefix(r.Config, "ablate-") {
			res.Ablation = append(res.Ablation, r)
		} else {
			res.Compression = append(res.Compression, r)
		}
	}
	res.Ablation = append(res.Ablation, runs[:2]...) // baseline, gateway-keepall
	res.Long = runs[:2]                              // rendered against themselves: marginal undefined, shown as -
	res.GC, res.SlowStore = gcRuns, slowRuns
	res.Options.LongDuration, res.Options.LongRounds = 2*time.Second, 1
	res.Options.OverloadFactor = 2
	if err := writeReport(res, h); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"BENCHMARKS.md", "plots/cpu-per-span.svg", "plots/rss-over-time.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("report file %s: %v", f, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "BENCHMARKS.md"))
	for _, want := range []string{"| ablate-4-tailsampling |", "| gateway-keepall | + the traces/profilelink", "| zstd |", "| gateway-keepall-gogc400 |", "| 300ms | gateway-keepall |", "## Longer runs"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the report has no row %q", want)
		}
	}
}

// TestLongMarginal: the long runs' marginal CPU per span is the slope of
// CPU above idle between a round's short and long run, the fixed part its
// intercept, and the ratio is taken against the baseline's slope of the
// same round.
func TestLongMarginal(t *testing.T) {
	short, long := 10*time.Second, 60*time.Second
	run := func(cfg string, round int, d time.Duration, acked int64, cpu, idle float64, window time.Duration) runResult {
		r := runResult{Config: cfg, Round: round, Duration: d, CPU: cpu, IdleCores: idle, Window: window}
		r.V.SpansAcked, r.V.Delivered = acked, acked
		r.Load.Elapsed = d
		return r
	}
	// baseline: 30 us/span, no fixed cost, idle 0. gateway: 60 us/span
	// plus 0.7 CPU-s per run, idle 0.01 cores over windows of 25 s and 75 s.
	res := &results{Options: options{Duration: short, LongDuration: long, LongRounds: 1, Rate: 4000}}
	res.Long = []runResult{
		run("baseline", 0, short, 40000, 40000*30e-6, 0, 12*time.Second),
		run("baseline", 0, long, 240000, 240000*30e-6, 0, 62*time.Second),
		run("gateway-keepall", 0, short, 40000, 40000*60e-6+0.7+0.01*25, 0.01, 25*time.Second),
		run("gateway-keepall", 0, long, 240000, 240000*60e-6+0.7+0.01*75, 0.01, 75*time.Second),
	}
	var b strings.Builder
	writeLong(res, func(f string, a ...any) { fmt.Fprintf(&b, f, a...) })
	var row string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, "| gateway-keepall |") {
			row = l
		}
	}
	cells := strings.Split(row, " | ")
	if len(cells) < 11 {
		t.Fatalf("no gateway-keepall row in:\n%s", b.String())
	}
	// config, acked, delivered, lost, steady long, ratio, steady short, marginal, marginal ratio, fixed
	if cells[7] != "60.00" || cells[8] != "2.00x" || cells[9] != "0.70" {
		t.Errorf("marginal %s, marginal ratio %s, fixed %s: want 60.00, 2.00x, 0.70 (row %s)", cells[7], cells[8], cells[9], row)
	}
}
