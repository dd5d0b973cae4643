package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// benchConfig is one collector configuration under test.
type benchConfig struct {
	Name         string
	Title        string
	Args         []string // --config ... relative to the repository root
	KeepAll      bool     // every acknowledged span must arrive exactly once
	Agent        bool     // configs/agent.yaml: needs the agent's environment
	TailSampling bool     // holds spans for decision_wait before exporting
	// SendCompression: the gRPC compressor the harness's sender uses
	// ("" none, as for every other config; "gzip", "zstd": what an agent
	// sends the gateway).
	SendCompression string
	// Env: added to the collector's environment (the GC experiment's
	// GOGC and GOMEMLIMIT).
	Env []string
}

func harnessConfigs() []benchConfig {
	return []benchConfig{
		{Name: "baseline", Title: "baseline: otlp -> batch -> otlp", Args: []string{"--config", "bench/configs/baseline.yaml"}, KeepAll: true},
		{Name: "gateway-keepall", Title: "fabric gateway chain, keep-all policy", Args: []string{"--config", "bench/configs/gateway-keepall.yaml"}, KeepAll: true, TailSampling: true},
		{Name: "gateway-keepall-nobatch", Title: "fabric gateway chain, keep-all policy, without the batch after tail_sampling (the chain before it shipped)", Args: []string{"--config", "bench/configs/gateway-keepall-nobatch.yaml"}, KeepAll: true, TailSampling: true},
		{Name: "upstream-keepall", Title: "upstream-equivalent chain, keep-all policy", Args: []string{"--config", "bench/configs/upstream-keepall.yaml"}, KeepAll: true, TailSampling: true},
		{Name: "gateway-shipped", Title: "fabric gateway chain, shipped policies", Args: []string{"--config", "bench/configs/gateway-shipped.yaml"}, TailSampling: true},
		{Name: "agent", Title: "agent (configs/agent.yaml) trace path", Args: []string{"--config", "configs/agent.yaml", "--config", "bench/configs/agent-overlay.yaml"}, KeepAll: true, Agent: true},
	}
}

// ablationConfigs: from the baseline to gateway-keepall one part of the
// gateway at a time (-experiments ablation), each step a config that adds
// one part to the previous one.
func ablationConfigs() []benchConfig {
	ts := func(name, title string, tail bool) benchConfig {
		return benchConfig{Name: name, Title: title, Args: []string{"--config", "bench/configs/" + name + ".yaml"}, KeepAll: true, TailSampling: tail}
	}
	return []benchConfig{
		ts("ablate-1-receive", "the gateway's receiver (bearer token, protoguard), memory_limiter, batch/after_sampling and Tempo exporter (queue batcher, in memory)", false),
		ts("ablate-2-processors", "+ versionstamp, tagguard, transform/profile_id, backpressure (queuewatch)", false),
		ts("ablate-3-persistent", "+ the persistent sending queue (file_storage)", false),
		ts("ablate-4-tailsampling", "+ tail_sampling (keep-all), and the gateway's other extensions (zpages, file_storage/benchstat, adaptive_sampling; unused by the keep-all policy): gateway-keepall without its traces/profilelink pipeline", true),
	}
}

// compressionConfigs: the hop between agent and gateway with each gRPC
// compressor (-experiments compression). The agent compresses what it
// sends (its loadbalancing exporter's compression, gzip by default); the
// gateway decompresses it (the harness's sender compresses as an agent
// would).
func compressionConfigs() []benchConfig {
	var out []benchConfig
	for _, c := range []string{"gzip", "zstd", "snappy", "none"} {
		out = append(out, benchConfig{Name: "agent-" + c, Title: "agent trace path, its loadbalancing exporter's compression set to " + c,
			Args:    []string{"--config", "configs/agent.yaml", "--config", "bench/configs/agent-overlay.yaml", "--set", "exporters::loadbalancing::protocol::otlp::compression=" + c},
			KeepAll: true, Agent: true})
	}
	for _, c := range []string{"gzip", "zstd"} {
		out = append(out, benchConfig{Name: "gateway-keepall-" + c + "-in", Title: "gateway-keepall receiving " + c + "-compressed requests (as an agent sends them)",
			Args: []string{"--config", "bench/configs/gateway-keepall.yaml"}, KeepAll: true, TailSampling: true, SendCompression: c})
	}
	return out
}

// gcPodLimit is the gateway pod's memory limit (deploy/kubernetes), and
// gcMemLimit the GOMEMLIMIT the deployment gives it: 80% of the limit, in
// MiB, as deploy/kustomize_test.go checks and the overload run computes.
const (
	gcPodLimit = 2 << 30
	gcMemLimit = "1638MiB"
)

// gcConfigs: the Go garbage collector's target (GOGC) with the
// deployment's GOMEMLIMIT (-experiments gc). The GC is the largest single
// cost centre of a tail sampling gateway: tail_sampling holds decision_wait
// of spans as pdata, pointer-dense, which every GC cycle marks; a higher
// GOGC marks it less often for more heap. The baseline runs at both ends,
// so that the ratio to it is taken at the same setting.
func gcConfigs() []benchConfig {
	var out []benchConfig
	for _, g := range []string{"100", "400"} {
		out = append(out, benchConfig{Name: "gateway-keepall-gogc" + g, Title: "gateway-keepall, GOGC=" + g + ", GOMEMLIMIT=" + gcMemLimit,
			Args: []string{"--config", "bench/configs/gateway-keepall.yaml"}, KeepAll: true, TailSampling: true,
			Env: []string{"GOGC=" + g, "GOMEMLIMIT=" + gcMemLimit}})
	}
	for _, g := range []string{"100", "400"} {
		out = append(out, benchConfig{Name: "baseline-gogc" + g, Title: "baseline, GOGC=" + g + ", GOMEMLIMIT=" + gcMemLimit,
			Args: []string{"--config", "bench/configs/baseline.yaml"}, KeepAll: true,
			Env: []string{"GOGC=" + g, "GOMEMLIMIT=" + gcMemLimit}})
	}
	return out
}

// allConfigs is every config the harness knows, by name.
func allConfigs() map[string]benchConfig {
	m := map[string]benchConfig{}
	for _, l := range [][]benchConfig{harnessConfigs(), ablationConfigs(), compressionConfigs(), gcConfigs()} {
		for _, c := range l {
			m[c.Name] = c
		}
	}
	return m
}

// harness holds what every run shares.
type harness struct {
	root         string // repository root
	bin          string
	basePort     int
	sink         *sink
	work         *workload
	token        string
	streams      int
	decisionWait time.Duration
	tmp          string
	idle         time.Duration // how long the idle CPU is measured before each send (0: not)
	logf         func(format string, args ...any)
	extraArgs    map[string][]string // per config name, e.g. --set for the memory runs
	// Set by the overload run only: the collector starts inside this cgroup
	// v1 memory controller with extraEnv, and drains for drainExtra longer.
	cgroup     string
	extraEnv   []string
	drainExtra time.Duration
	// Set by the slow store runs: the exporters' queue sizes are read
	// from the collector's metrics every 500 ms (QueueMax).
	pollQueue bool
}

func (h *harness) port(off int) string { return fmt.Sprintf("127.0.0.1:%d", h.basePort+off) }

func (h *harness) env(cfg benchConfig, queueDir string) []string {
	_, metricsPort, _ := strings.Cut(h.port(13), ":")
	env := []string{
		"BENCH_SINK_ENDPOINT=" + h.sink.addr,
		"FABRIC_INGEST_TOKEN=" + h.token,
		"FABRIC_OTLP_GRPC_ENDPOINT=" + h.port(10),
		"FABRIC_OTLP_HTTP_ENDPOINT=" + h.port(11),
		"FABRIC_HEALTH_ENDPOINT=" + h.port(12),
		"FABRIC_METRICS_HOST=127.0.0.1",
		"FABRIC_METRICS_PORT=" + metricsPort,
		"FABRIC_PPROF_ENDPOINT=" + h.port(14),
		"FABRIC_ZPAGES_ENDPOINT=" + h.port(15),
		"FABRIC_QUEUEWATCH_ENDPOINT=" + h.port(16),
		"FABRIC_PYROSCOPE_ENDPOINT=" + h.port(17),
		"FABRIC_FLUENTFORWARD_ENDPOINT=" + h.port(18),
		"FABRIC_PYROSCOPE_URL=http://" + h.port(19),
		"FABRIC_QUEUE_DIR=" + queueDir,
		"FABRIC_TAIL_DECISION_WAIT=" + h.decisionWait.String(),
		// backpressure's held_for: decision_wait + 5 s, as shipped.
		"FABRIC_TRACES_HELD_FOR=" + (h.decisionWait + 5*time.Second).String(),
	}
	if cfg.Agent {
		env = append(env,
			"K8S_NODE_NAME=node-1",
			"FABRIC_KUBE_AUTH=kubeConfig",
			"KUBECONFIG="+filepath.Join(h.root, "tests", "testdata", "kubeconfig"),
			"FABRIC_LOG_GLOB="+filepath.Join(queueDir, "pods", "*", "*", "*.log"),
			"FABRIC_GATEWAY_ENDPOINT="+h.sink.addr,
			"FABRIC_HOSTFS=/",
		)
	}
	return env
}

// runResult is one run of one config at one offered load.
type runResult struct {
	Config                          string
	Round                           int
	Offered                         float64 // spans/s asked of the sender, 0 = as fast as accepted
	Duration                        time.Duration
	Achieved                        float64 // spans/s acknowledged over the send window
	Load                            loadStats
	V                               verdict
	CPU                             float64 // collector CPU seconds from send start to drain end
	CPUSend                         float64 // collector CPU seconds during the send window only
	IdleCores                       float64 // collector CPU seconds per second before the send, idle (-idle)
	Window                          time.Duration
	HarnessCPU                      float64
	OtherCPU                        float64 // machine busy CPU seconds not the collector's nor the harness's, same window
	MachineCPU                      float64 // machine CPU seconds available in the window (cores x wall)
	RSSMax                          int64
	RSSEnd                          int64
	RSSSeries                       []procSample
	P50, P99                        time.Duration
	Drained                         bool
	Sustainable                     bool
	Why                             string // why not sustainable
	Crashed                         bool
	SinkRequests, Foreign, Mismatch int64
	// Traces export bytes: as they crossed the wire (compressed) and
	// decompressed, at the sink and at the sender.
	SinkWireBytes, SinkBytes int64
	SentWireBytes, SentBytes int64
	SinkEncodings            map[string]int64   // grpc-encoding of the traces exports at the sink, by name ("" none)
	Contended                bool               // failed while other processes used > 40% of the machine: run again
	Retry                    bool               // the second run of a contended step
	Own                      map[string]float64 // the collector's own counters at the end (ownCounters)
	// The slow store runs: the sink's delay before it answers each traces
	// export, and the largest traces exporter queue (items, or requests
	// where the queue counts requests) the collector reported while the run
	// lasted.
	SinkDelay time.Duration
	SinkHeld  int64 // traces exports the sink answered only after SinkDelay
	QueueMax  float64
	// RuntimeEnv: GOGC and GOMEMLIMIT as the collector process was started
	// with (/proc/<pid>/environ), "" when unset.
	RuntimeEnv string
}

func (r runResult) CPUPerSpan() time.Duration {
	if r.V.SpansAcked == 0 {
		return 0
	}
	return time.Duration(r.CPU / float64(r.V.SpansAcked) * 1e9)
}

// CPUPerSpanSteady is CPU per span without the idle CPU the collector
// used after the send window (the drain, a tail sampling config's
// decision_wait): what a span costs when the load goes on. The idle rate is
// measured before the send (IdleCores).
func (r runResult) CPUPerSpanSteady() time.Duration {
	if r.V.SpansAcked == 0 {
		return 0
	}
	extra := (r.Window - r.Load.Elapsed).Seconds()
	cpu := r.CPU - r.IdleCores*max(extra, 0)
	return time.Duration(max(cpu, 0) / float64(r.V.SpansAcked) * 1e9)
}

func (r runResult) SpansPerCPUSecond() float64 {
	if r.CPU == 0 {
		return 0
	}
	return float64(r.V.SpansAcked) / r.CPU
}

// runOnce starts cfg, offers the load, waits for the pipeline to drain and
// reports exactly what arrived. hook, when set, runs concurrently with the
// send (profiles, log writers).
func (h *harness) runOnce(ctx context.Context, cfg benchConfig, spec loadSpec, round int, hook func(ctx context.Context, c *collector)) (runResult, error) {
	res := runResult{Config: cfg.Name, Round: round, Offered: spec.Rate, Duration: spec.Duration}
	dir, err := os.MkdirTemp(h.tmp, cfg.Name+"-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	if cfg.Agent {
		if _, err := prepareLogDir(dir); err != nil {
			return res, err
		}
	}
	tr := newTracker(rand.Uint64())
	h.sink.tracker.Store(tr)
	defer h.sink.tracker.Store(nil)
	args := append(append([]string{}, cfg.Args...), h.extraArgs[cfg.Name]...)
	bin, env := h.bin, append(append(h.env(cfg, dir), cfg.Env...), h.extraEnv...)
	if h.cgroup != "" {
		// The shell joins the cgroup and execs the collector: same pid.
		args = append([]string{"-c", `echo $$ > "$BENCH_CGROUP/cgroup.procs" && exec "$0" "$@"`, h.bin}, args...)
		bin, env = "/bin/sh", append(env, "BENCH_CGROUP="+h.cgroup)
	}
	col, err := startCollectorRetry(h.logf, bin, h.root, args, env, h.port(12), 250*time.Millisecond)
	if err != nil {
		return res, err
	}
	defer col.stop()
	res.RuntimeEnv = runtimeEnv(col.pid())
	time.Sleep(time.Second) // let start-up work settle
	if h.idle > 0 {
		// The collector's CPU with nothing to do (its own metrics,
		// queuewatch's scrape, timers): steady-state CPU per span leaves
		// out what it burns idle after the send window (a tail sampling
		// config waits decision_wait before it exports).
		i0, it0 := col.now(), time.Now()
		time.Sleep(h.idle)
		res.IdleCores = (col.now().CPU - i0.CPU) / time.Since(it0).Seconds()
	}
	before := snapshotProcs()
	c0, sys0, self0, t0 := col.now(), 0.0, selfCPU(), time.Now()
	sys0, _ = systemCPU()
	hctx, cancelHook := context.WithCancel(ctx)
	hookDone := make(chan struct{})
	if hook != nil {
		go func() { defer close(hookDone); hook(hctx, col) }()
	} else {
		close(hookDone)
	}
	pollDone := make(chan float64, 1)
	if h.pollQueue {
		go func() { pollDone <- h.pollQueueMax(hctx) }()
	} else {
		pollDone <- 0
	}
	spec.Token = h.token
	spec.Compression = cfg.SendCompression
	if spec.Streams == 0 {
		spec.Streams = h.streams
	}
	ls, err := sendLoad(ctx, h.port(10), h.work, tr, spec)
	if err != nil {
		cancelHook()
		return res, err
	}
	cSend := col.now()
	sendEnd := tr.now()
	res.Load = ls
	// Drain: keep-all configs until every acknowledged span arrived; the
	// others until nothing arrived for 2 s after their pipeline delay.
	delay := 2 * time.Second
	if cfg.TailSampling {
		delay += h.decisionWait + time.Second
	}
	deadline := time.Now().Add(delay + 20*time.Second + h.drainExtra)
	var lastCheck time.Time
	for time.Now().Before(deadline) && !col.exited() {
		since := time.Duration(tr.now() - sendEnd)
		quiet := time.Duration(tr.now() - tr.lastRecv.Load())
		// Keep-all: as many spans arrived as were acknowledged. Spans of a
		// request the sender saw fail may arrive too (delivered though
		// refused), so the count alone can be reached while acknowledged
		// spans are still on their way: every span is checked, at once and
		// then once a second, until none is missing or nothing arrived for
		// 5 s.
		if cfg.KeepAll && tr.received.Load() >= ls.SpansAcked {
			if time.Since(lastCheck) >= time.Second {
				lastCheck = time.Now()
				if tr.verdict().Lost == 0 || quiet > 5*time.Second {
					res.Drained = true
					break
				}
			}
		}
		if !cfg.KeepAll && since > delay && quiet > 2*time.Second {
			res.Drained = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // late duplicates
	cancelHook()
	<-hookDone
	res.QueueMax = <-pollDone
	res.SinkDelay = time.Duration(h.sink.delay.Load())
	res.Own = h.counters()
	c1 := col.now()
	sys1, _ := systemCPU()
	self1 := selfCPU()
	after := snapshotProcs()
	res.Window = time.Since(t0)
	res.CPU = c1.CPU - c0.CPU
	res.CPUSend = cSend.CPU - c0.CPU
	res.HarnessCPU = self1 - self0
	res.OtherCPU = (sys1 - sys0) - res.CPU - res.HarnessCPU
	res.MachineCPU = res.Window.Seconds() * float64(numCPU())
	h.noteOthers(before, after, col.pid())
	res.RSSSeries = col.series(0, time.Hour)
	for _, s := range res.RSSSeries {
		res.RSSMax = max(res.RSSMax, s.RSS)
	}
	res.RSSEnd = c1.RSS
	res.Crashed = col.exited()
	res.V = tr.verdict()
	res.SinkRequests, res.Foreign, res.Mismatch = tr.requests.Load(), tr.foreign.Load(), tr.mismatch.Load()
	res.SinkHeld = tr.held.Load()
	res.SinkWireBytes, res.SinkBytes = tr.wireBytes.Load(), tr.payloadBytes.Load()
	res.SentWireBytes, res.SentBytes = ls.WireBytes, ls.PayloadBytes
	tr.encodingsMu.Lock()
	res.SinkEncodings = maps.Clone(tr.encodings) // a late export may still count into the tracker's
	tr.encodingsMu.Unlock()
	if ls.Elapsed > 0 {
		res.Achieved = float64(res.V.SpansAcked) / ls.Elapsed.Seconds()
	}
	res.P50 = percentile(res.V.Latencies, 0.50)
	res.P99 = percentile(res.V.Latencies, 0.99)
	res.Sustainable, res.Why = sustainable(cfg, res)
	if !res.Drained {
		h.logf("%s did not drain; collector output:\n%s", cfg.Name, tail(col.output(), 3000))
	}
	if res.Crashed {
		return res, fmt.Errorf("%s: collector exited during the run: %w\n%s", cfg.Name, col.exitErr, tail(col.output(), 4000))
	}
	return res, nil
}

// sustainable: nothing refused, nothing lost or duplicated, the offered
// rate achieved, and no queue growth: the latency of the last quarter of
// the run no more than 500 ms above that of the first quarter (a growing
// backlog anywhere in the pipeline shows as growing latency).
func sustainable(cfg benchConfig, r runResult) (bool, string) {
	var why []string
	if r.Load.Failed > 0 {
		why = append(why, fmt.Sprintf("%d requests refused %v", r.Load.Failed, r.Load.Errors))
	}
	if cfg.KeepAll && r.V.Lost > 0 {
		why = append(why, fmt.Sprintf("%d spans lost", r.V.Lost))
	}
	if !cfg.KeepAll && r.V.TracesPartial > 0 {
		why = append(why, fmt.Sprintf("%d traces partly delivered", r.V.TracesPartial))
	}
	if !cfg.KeepAll && (r.V.ErrorKept < r.V.ErrorTraces || r.V.SlowKept < r.V.SlowTraces) {
		why = append(why, fmt.Sprintf("error traces kept %d/%d, slow %d/%d", r.V.ErrorKept, r.V.ErrorTraces, r.V.SlowKept, r.V.SlowTraces))
	}
	if r.V.Duplicates > 0 {
		why = append(why, fmt.Sprintf("%d duplicates", r.V.Duplicates))
	}
	if r.Offered > 0 && r.Achieved < 0.97*r.Offered {
		why = append(why, fmt.Sprintf("achieved %.0f of %.0f spans/s", r.Achieved, r.Offered))
	}
	if g := r.V.LatencyLastQ - r.V.LatencyFirstQ; g > 500*time.Millisecond {
		why = append(why, fmt.Sprintf("latency grew %v (queue growth)", g.Round(time.Millisecond)))
	}
	if !r.Drained {
		why = append(why, "did not drain")
	}
	return len(why) == 0, strings.Join(why, "; ")
}

// runtimeEnv is GOGC and GOMEMLIMIT of process pid's environment.
func runtimeEnv(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return "?"
	}
	var out []string
	for _, e := range strings.Split(string(b), "\x00") {
		if strings.HasPrefix(e, "GOGC=") || strings.HasPrefix(e, "GOMEMLIMIT=") {
			out = append(out, e)
		}
	}
	return strings.Join(out, " ")
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
