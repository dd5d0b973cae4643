// Command bench is otelcol-fabric's load harness: it drives the built
// binary (bin/otelcol-fabric) as a child process with pre-encoded OTLP
// trace requests over gRPC, counts every span at a stand-in OTLP store,
// samples the collector's CPU and RSS from /proc, and writes
// docs/BENCHMARKS.md with plots under docs/benchmarks/. `make loadtest`
// runs it; see docs/BENCHMARKS.md for what it measures.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	others   = map[string]float64{}
	othersMu sync.Mutex
)

type options struct {
	Root, Bin, Report, PlotDir, RawDir string
	BasePort                           int
	Streams                            int
	Duration                           time.Duration
	Rounds                             int
	Rate                               float64
	StepStart, StepFactor              float64
	StepMax                            int
	DecisionWait                       time.Duration
	MemTraces                          []int
	MemRate                            float64
	AgentIdle, AgentLoaded             time.Duration
	Physical                           time.Duration
	Idle                               time.Duration
	ProfileDuration                    time.Duration
	Experiments                        map[string]bool
	Configs                            []string
	Requests                           int
	SinkDelay                          time.Duration
	SlowDelays                         []time.Duration
	LongDuration                       time.Duration
	LongRounds                         int
	OverloadFactor                     float64
	OverloadDuration                   time.Duration
	OverloadLimit                      int64
}

func main() {
	var o options
	var render string
	var exps, cfgs, mem, slow string
	flag.StringVar(&o.Root, "root", "..", "repository root")
	flag.StringVar(&o.Bin, "bin", "", "collector binary (default <root>/bin/otelcol-fabric)")
	flag.StringVar(&o.Report, "report", "", "Markdown report to write (default <root>/docs/BENCHMARKS.md)")
	flag.StringVar(&o.PlotDir, "plots", "", "directory of the plots (default <root>/docs/benchmarks)")
	flag.StringVar(&o.RawDir, "raw", "", "raw results, profiles (default <root>/bench/out)")
	flag.IntVar(&o.BasePort, "base-port", 41000, "first of the 20 loopback ports the harness uses")
	flag.IntVar(&o.Streams, "streams", 8, "concurrent gRPC streams (connections)")
	flag.DurationVar(&o.Duration, "duration", 10*time.Second, "send window of each run")
	flag.IntVar(&o.Rounds, "rounds", 3, "rounds of the fixed-rate comparison")
	flag.Float64Var(&o.Rate, "rate", 4000, "offered spans/s of the fixed-rate comparison")
	flag.Float64Var(&o.StepStart, "step-start", 3000, "first offered spans/s of the step search")
	flag.Float64Var(&o.StepFactor, "step-factor", 1.6, "step search: rate factor while sustainable")
	flag.IntVar(&o.StepMax, "step-max", 7, "step search: runs per config at most")
	flag.DurationVar(&o.DecisionWait, "decision-wait", 10*time.Second, "tail_sampling decision_wait of the gateway configs (shipped: 10s)")
	flag.StringVar(&mem, "mem-traces", "10000,100000", "tail sampling memory: traces buffered at each point")
	flag.Float64Var(&o.MemRate, "mem-rate", 20000, "tail sampling memory: spans/s while filling")
	flag.DurationVar(&o.AgentIdle, "agent-idle", 20*time.Second, "agent footprint: idle phase")
	flag.DurationVar(&o.AgentLoaded, "agent-loaded", 20*time.Second, "agent footprint: loaded phase")
	flag.DurationVar(&o.Idle, "idle", 3*time.Second, "idle CPU measured before each run's send (steady-state CPU per span)")
	flag.DurationVar(&o.Physical, "physical", 5*time.Second, "physical limit: decode+encode time")
	flag.DurationVar(&o.ProfileDuration, "profile-duration", 20*time.Second, "profile run length")
	flag.IntVar(&o.Requests, "requests", 64, "distinct pre-encoded requests")
	flag.DurationVar(&o.SinkDelay, "sink-delay", 0, "added to every traces export the sink answers: a slow store")
	flag.DurationVar(&o.LongDuration, "long-duration", 60*time.Second, "long runs: send window")
	flag.IntVar(&o.LongRounds, "long-rounds", 2, "long runs: rounds")
	flag.StringVar(&slow, "slow-delays", "0s,1s,6s", "slow store: the sink's delays before answering each traces export, one run of each config at each")
	flag.Float64Var(&o.OverloadFactor, "overload-factor", 3, "overload: offered rate as a multiple of gateway-keepall's maximum sustainable rate (of -rate without the step search)")
	flag.DurationVar(&o.OverloadDuration, "overload-duration", 30*time.Second, "overload: send window")
	flag.Int64Var(&o.OverloadLimit, "overload-limit", 2<<30, "overload: memory cgroup limit in bytes (the gateway pod's)")
	flag.StringVar(&render, "render", "", "render the report again from a raw results file of an earlier run (bench/out/results-*.json); measures nothing")
	flag.StringVar(&exps, "experiments", "physical,compare,long,ablation,compression,gc,slowstore,steps,memory,agent,overload,profile", "experiments to run")
	flag.StringVar(&cfgs, "configs", "baseline,gateway-keepall,gateway-keepall-nobatch,upstream-keepall,gateway-shipped,agent", "configs of compare and steps")
	flag.Parse()
	o.Experiments = map[string]bool{}
	for _, e := range strings.Split(exps, ",") {
		o.Experiments[strings.TrimSpace(e)] = true
	}
	o.Configs = strings.Split(cfgs, ",")
	for _, s := range strings.Split(mem, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n > 0 {
			o.MemTraces = append(o.MemTraces, n)
		}
	}
	for _, s := range strings.Split(slow, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d < 0 {
			log.Fatalf("-slow-delays: %q is not a duration >= 0", s)
		}
		o.SlowDelays = append(o.SlowDelays, d)
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		log.Fatal(err)
	}
	o.Root = root
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&o.Bin, filepath.Join(root, "bin", "otelcol-fabric"))
	def(&o.Report, filepath.Join(root, "docs", "BENCHMARKS.md"))
	def(&o.PlotDir, filepath.Join(root, "docs", "benchmarks"))
	def(&o.RawDir, filepath.Join(root, "bench", "out"))
	if render != "" {
		if err := renderAgain(render, o); err != nil {
			log.Fatal(err)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Args[1:]); err != nil {
		log.Fatal(err)
	}
}

// results is everything one invocation measured; the report is drawn from it.
type results struct {
	Started, Finished  time.Time
	Args               []string
	Options            options
	Workload           workloadSummary
	Physical           *physical
	Compare            []runResult
	Ablation           []runResult
	Compression        []runResult
	Long               []runResult
	GC                 []runResult
	GCCgroup           string // why the GC runs had no pod-sized memory cgroup, "" when they had
	SlowStore          []runResult
	SlowStoreErr       string
	Steps              []*stepState
	Memory             []memPoint
	MemoryErr          string
	Agent              []agentPoint
	AgentErr           string
	Profiles           []profileResult
	Overload           *overloadPoint
	OverloadErr        string
	Others             []procCPU
	LoadStart, LoadEnd string
	Commit             string // of the working tree when the run started
	// BinaryVersion is the binary's --version output, AgentCompression the
	// compression configs/agent.yaml's loadbalancing exporter ships, both
	// recorded when the run started (a report rendered again later says
	// what was measured, not what the tree holds then).
	BinaryVersion    string
	AgentCompression string
	// RenderedFrom: the raw results file this report was rendered from
	// again (-render), empty when written by the run itself.
	RenderedFrom string `json:"-"`
}

type workloadSummary struct {
	Requests, Traces, Spans, ErrorTraces, SlowTraces int
	Bytes                                            int
}

type profileResult struct {
	Run               runResult
	CPUTop, CPUCum    string
	HeapTop           string
	CPUPath, HeapPath string
	Centres           []centre
}

func run(ctx context.Context, o options, args []string) error {
	logf := func(format string, a ...any) { log.Printf(format, a...) }
	if err := os.MkdirAll(o.RawDir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "fabric-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	spec := defaultWorkloadSpec()
	spec.Requests = o.Requests
	w, err := buildWorkload(spec)
	if err != nil {
		return err
	}
	sk, err := startSink(fmt.Sprintf("127.0.0.1:%d", o.BasePort))
	if err != nil {
		return err
	}
	defer sk.stop()
	sk.delay.Store(int64(o.SinkDelay))
	h := &harness{root: o.Root, bin: o.Bin, basePort: o.BasePort, sink: sk, work: w, token: "bench-token",
		streams: o.Streams, decisionWait: o.DecisionWait, tmp: tmp, idle: o.Idle, logf: logf}
	res := &results{Started: time.Now().UTC(), Args: args, Options: o, LoadStart: loadavg(), Commit: gitCommit(o.Root),
		BinaryVersion: cmdOut(o.Root, o.Bin, "--version")}
	if b, err := os.ReadFile(filepath.Join(o.Root, "configs", "agent.yaml")); err == nil {
		res.AgentCompression = agentCompression(b)
	}
	res.Workload = summarize(w)
	logf("workload: %d requests, %d traces, %d spans (%d error, %d slow traces), %d bytes",
		res.Workload.Requests, res.Workload.Traces, res.Workload.Spans, res.Workload.ErrorTraces, res.Workload.SlowTraces, res.Workload.Bytes)
	var cfgs []benchConfig
	byName := allConfigs()
	for _, n := range o.Configs {
		c, ok := byName[strings.TrimSpace(n)]
		if !ok {
			return fmt.Errorf("unknown config %q", n)
		}
		cfgs = append(cfgs, c)
	}
	if o.Experiments["physical"] {
		p, err := measurePhysical(w, o.Physical)
		if err != nil {
			return err
		}
		res.Physical = &p
		logf("physical limit: %.0f spans per CPU-second (decode + encode in-process)", p.SpansPerCPUs)
	}
	if o.Experiments["compare"] {
		if res.Compare, err = h.compare(ctx, cfgs, o.Rate, o.Duration, o.Rounds); err != nil {
			return err
		}
	}
	if o.Experiments["long"] {
		// The same load for longer: a tail sampling config's run has costs
		// that do not grow with its length (its heap grows to hold
		// decision_wait of spans, its last spans leave after the send),
		// which a short run charges to few spans. A short and a long run of
		// each config back to back in every round give the cost per span
		// of a load that goes on (the slope between them).
		var long []benchConfig
		for _, n := range []string{"baseline", "gateway-keepall", "upstream-keepall"} {
			long = append(long, byName[n])
		}
		for r := 0; r < o.LongRounds; r++ {
			for i := range long {
				cfg := long[(i+r)%len(long)]
				for _, d := range []time.Duration{o.Duration, o.LongDuration} {
					h.logf("long round %d/%d: %s at %.0f spans/s for %v", r+1, o.LongRounds, cfg.Name, o.Rate, d)
					lr, err := h.runOnce(ctx, cfg, loadSpec{Rate: o.Rate, Duration: d}, r, nil)
					if err != nil {
						return err
					}
					h.logRun(lr)
					res.Long = append(res.Long, lr)
				}
			}
		}
	}
	if o.Experiments["ablation"] {
		// From the baseline to the gateway chain one part at a time, same
		// load, alternating: where the gateway's CPU per span goes.
		abl := append([]benchConfig{byName["baseline"]}, ablationConfigs()...)
		abl = append(abl, byName["gateway-keepall"])
		if res.Ablation, err = h.compare(ctx, abl, o.Rate, o.Duration, o.Rounds); err != nil {
			return err
		}
	}
	if o.Experiments["compression"] {
		// The agent -> gateway hop with each compressor: the agent's cost
		// to compress, the bytes on the wire, the gateway's cost to
		// decompress.
		var ag []benchConfig
		gw := []benchConfig{byName["gateway-keepall"]}
		for _, c := range compressionConfigs() {
			if c.Agent {
				ag = append(ag, c)
			} else {
				gw = append(gw, c)
			}
		}
		for _, group := range [][]benchConfig{ag, gw} {
			rs, err := h.compare(ctx, group, o.Rate, o.Duration, o.Rounds)
			res.Compression = append(res.Compression, rs...)
			if err != nil {
				return err
			}
		}
	}
	if o.Experiments["gc"] {
		// GOGC with the deployment's GOMEMLIMIT: what the garbage
		// collector costs the gateway chain, and what more heap buys back.
		// In a memory cgroup of the pod's size where one can be made, so
		// that memory_limiter's limits are the pod's too.
		dir, cleanup, cgErr := newMemCgroup(gcPodLimit)
		if cgErr != nil {
			res.GCCgroup = cgErr.Error()
			logf("gc: %v; the runs have the machine's memory", cgErr)
		} else {
			h.cgroup, res.GCCgroup = dir, ""
		}
		res.GC, err = h.compare(ctx, gcConfigs(), o.Rate, o.Duration, o.Rounds)
		h.cgroup = ""
		if cleanup != nil {
			cleanup()
		}
		if err != nil {
			return err
		}
	}
	if o.Experiments["slowstore"] {
		// The store answers each traces export after a delay: does the
		// chain keep up at the comparison rate, what does its queue hold,
		// what does it cost. One run per config and delay. A failed run is
		// reported and the invocation goes on.
		if err := h.slowStore(ctx, res, []benchConfig{byName["baseline"], byName["gateway-keepall"]}, o); err != nil {
			res.SlowStoreErr = err.Error()
			logf("slow store: %v", err)
		}
	}
	if o.Experiments["steps"] {
		if res.Steps, err = h.stepSearch(ctx, cfgs, o.StepStart, o.StepFactor, o.Duration, o.StepMax); err != nil {
			return err
		}
	}
	if o.Experiments["memory"] {
		for _, n := range o.MemTraces {
			mp, err := h.tsMemory(ctx, byName["gateway-keepall"], n, o.MemRate)
			if err != nil {
				res.MemoryErr = err.Error()
				logf("tail sampling memory at %d traces: %v", n, err)
				break
			}
			res.Memory = append(res.Memory, mp)
		}
	}
	if o.Experiments["agent"] {
		res.Agent, err = h.agentFootprint(ctx, byName["agent"], o.AgentIdle, o.AgentLoaded, 1000, 1000)
		if err != nil {
			res.AgentErr = err.Error()
			logf("agent footprint: %v", err)
		}
	}
	if o.Experiments["overload"] {
		// The gateway chain (keep-all: every acknowledged span must arrive)
		// at OverloadFactor times its maximum sustainable rate.
		base := o.Rate
		for _, s := range res.Steps {
			if s.Cfg.Name == "gateway-keepall" && s.LastGood > 0 {
				base = s.LastGood
			}
		}
		op, err := h.overload(ctx, byName["gateway-keepall"], base*o.OverloadFactor, base, o.OverloadDuration, o.OverloadLimit)
		if err != nil {
			res.OverloadErr = err.Error()
			logf("overload: %v", err)
		}
		if op.Run.Load.Requests > 0 {
			res.Overload = &op
		}
	}
	if o.Experiments["profile"] {
		// The slower chain's saturation point (the chain before the lever),
		// so that neither is profiled past its own.
		rate := o.Rate
		for _, s := range res.Steps {
			if s.Cfg.Name == "gateway-keepall-nobatch" && s.LastGood > 0 {
				rate = s.LastGood
			}
		}
		// The gateway chain at its saturation point, before the lever (batch
		// after tail_sampling) and after it, at the same rate.
		for _, name := range []string{"gateway-keepall-nobatch", "gateway-keepall"} {
			r, cpuP, heapP, err := h.profileAt(ctx, byName[name], rate, o.ProfileDuration, o.RawDir, "saturation")
			if err != nil {
				return err
			}
			res.Profiles = append(res.Profiles, profileResult{Run: r, CPUPath: cpuP, HeapPath: heapP,
				CPUTop: pprofTop(cpuP, 25), CPUCum: pprofTop(cpuP, 40, "-cum"), HeapTop: pprofTop(heapP, 15, "-sample_index=inuse_space"),
				Centres: costCentres(pprofTop(cpuP, 1000, "-cum"))})
		}
	}
	res.Finished = time.Now().UTC()
	res.LoadEnd = loadavg()
	res.Others = topOthers(8)
	raw, _ := json.MarshalIndent(res, "", "  ")
	rawPath := filepath.Join(o.RawDir, "results-"+res.Started.Format("20060102T150405")+".json")
	if err := os.WriteFile(rawPath, raw, 0o644); err != nil {
		return err
	}
	logf("raw results: %s", rawPath)
	return writeReport(res, h)
}

func summarize(w *workload) workloadSummary {
	s := workloadSummary{Requests: len(w.templates), Traces: w.traces, Spans: w.spans, ErrorTraces: w.errorTraces, SlowTraces: w.slowTraces}
	for _, t := range w.templates {
		s.Bytes += len(t.data)
	}
	return s
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// renderAgain writes the report from the raw results of an earlier run,
// into the report and plot paths of o: for a report that gained a column
// or a corrected sentence after the run. Nothing is measured again.
func renderAgain(path string, o options) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var res results
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	res.Options.Root, res.Options.Bin, res.Options.Report, res.Options.PlotDir = o.Root, o.Bin, o.Report, o.PlotDir
	res.RenderedFrom = filepath.Base(path)
	if res.AgentCompression == "" && res.Commit != "" {
		// Recorded by runs since; for an older run, from the commit it measured.
		if b, err := exec.Command("git", "-C", o.Root, "show", res.Commit+":configs/agent.yaml").Output(); err == nil {
			res.AgentCompression = agentCompression(b)
		}
	}
	if res.BinaryVersion == "" {
		// Runs before BinaryVersion was recorded wrote it into their own
		// report: take it from there when that report is this run's.
		if b, err := os.ReadFile(o.Report); err == nil && strings.Contains(string(b), "on "+res.Started.Format(time.RFC3339)+";") {
			if m := regexp.MustCompile("(?m)^\\| binary \\| `([^`]*)` \\|$").FindSubmatch(b); m != nil {
				res.BinaryVersion = strings.ReplaceAll(string(m[1]), "; ", "\n")
			}
		}
	}
	return writeReport(&res, nil)
}
