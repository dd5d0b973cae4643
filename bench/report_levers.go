package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// agentShips is the compression the measured commit's agent config set:
// recorded by the run, or read from the tree (the smoke test).
func agentShips(res *results) string {
	if res.AgentCompression != "" {
		return res.AgentCompression
	}
	b, err := os.ReadFile(filepath.Join(res.Options.Root, "configs", "agent.yaml"))
	if err != nil {
		return "?"
	}
	return agentCompression(b)
}

// perRound is one config's runs of an experiment, by round.
func perRound(runs []runResult, name string) map[int]runResult {
	m := map[int]runResult{}
	for _, r := range runs {
		if r.Config == name {
			m[r.Round] = r
		}
	}
	return m
}

// roundRatios: for every round both configs ran, f(a) / f(b).
func roundRatios(a, b map[int]runResult, f func(runResult) float64) []float64 {
	var out []float64
	for round, ra := range a {
		if rb, ok := b[round]; ok && f(rb) != 0 {
			out = append(out, f(ra)/f(rb))
		}
	}
	return out
}

func cpuPerSpan(r runResult) float64    { return float64(r.CPUPerSpan()) }
func steadyPerSpan(r runResult) float64 { return float64(r.CPUPerSpanSteady()) }
func rssMax(r runResult) float64        { return float64(r.RSSMax) }

// sumRuns adds up the span counts of a config's runs.
func sumRuns(m map[int]runResult) (acked, delivered, lost, dup, refused int64) {
	for _, r := range m {
		acked += r.V.SpansAcked
		delivered += r.V.Delivered
		lost += r.V.Lost
		dup += r.V.Duplicates
		refused += r.V.SpansRefused
	}
	return
}

func medianOfRuns(m map[int]runResult, f func(runResult) float64) float64 {
	var xs []float64
	for _, r := range m {
		xs = append(xs, f(r))
	}
	return median(xs)
}

// writeAblation: from the baseline to gateway-keepall one part at a time.
func writeAblation(res *results, pf func(string, ...any)) {
	o := res.Options
	cfgs := append([]benchConfig{{Name: "baseline", Title: "otlp -> batch -> otlp"}}, ablationConfigs()...)
	cfgs = append(cfgs, benchConfig{Name: "gateway-keepall", Title: "+ the traces/profilelink pipeline (the receiver fans every request out to it: profilelink's span index)"})
	pf("## Where the gateway's CPU goes: from the baseline to the gateway chain, one part at a time\n\n")
	pf("The same load as above (%.0f spans/s for %v, %d rounds, the order rotated each round, a fresh collector per run), through configs that each add one part of the gateway to the previous one. CPU per span is *steady* (as defined above: without the idle CPU after the send window, which a tail sampling config spends waiting decision_wait); the whole-run figure is given too. *Step* is the median over rounds of (this config's steady CPU per span - the previous config's, same round); *share of the gap* is that step over the whole gap between baseline and gateway-keepall (medians of the same rounds). Each config is under `bench/configs/` and checked against gateway-keepall by `bench/configs_test.go`.\n\n", o.Rate, o.Duration, o.Rounds)
	pf("| config | adds | spans acked | delivered | lost | dup | refused | steady CPU µs/span (median) | steady ratio to baseline | step µs/span | share of the gap | whole-run CPU µs/span (median) | idle cores | RSS max MiB | per-round steady CPU µs/span |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	base := perRound(res.Ablation, "baseline")
	full := perRound(res.Ablation, "gateway-keepall")
	var gaps []float64
	for round, rf := range full {
		if rb, ok := base[round]; ok {
			gaps = append(gaps, steadyPerSpan(rf)-steadyPerSpan(rb))
		}
	}
	gap := median(gaps)
	var prev map[int]runResult
	for _, c := range cfgs {
		m := perRound(res.Ablation, c.Name)
		if len(m) == 0 {
			continue
		}
		acked, deliv, lost, dup, refused := sumRuns(m)
		step, share := "-", "-"
		if prev != nil {
			var d []float64
			for round, r := range m {
				if p, ok := prev[round]; ok {
					d = append(d, steadyPerSpan(r)-steadyPerSpan(p))
				}
			}
			if len(d) > 0 {
				step = us(time.Duration(median(d)))
				if gap > 0 {
					share = fmt.Sprintf("%.0f%%", 100*median(d)/gap)
				}
			}
		}
		var rss int64
		var rounds []string
		for i := 0; i < o.Rounds; i++ {
			if r, ok := m[i]; ok {
				rss = max(rss, r.RSSMax)
				rounds = append(rounds, us(r.CPUPerSpanSteady()))
			}
		}
		pf("| %s | %s | %d | %d | %d | %d | %d | %s | %.2fx | %s | %s | %s | %.3f | %s | %s |\n", c.Name, c.Title, acked, deliv, lost, dup, refused,
			us(time.Duration(medianOfRuns(m, steadyPerSpan))), median(roundRatios(m, base, steadyPerSpan)), step, share,
			us(time.Duration(medianOfRuns(m, cpuPerSpan))), medianOfRuns(m, func(r runResult) float64 { return r.IdleCores }), mib(rss), strings.Join(rounds, ", "))
		prev = m
	}
	pf("\nThe steps are medians of differences of noisy runs: they need not add up to the gap exactly, and a small step can come out negative. They also depend on their order: without tail_sampling, batch/after_sampling gathers 200 ms of incoming requests; with it, what one 1 s decision tick releases, so the persistent queue's step was measured at other batch sizes than the queue sees in gateway-keepall.\n\n")
}

// writeCompression: the agent -> gateway hop with each gRPC compressor.
func writeCompression(res *results, pf func(string, ...any)) {
	o := res.Options
	pf("## Compression between agent and gateway\n\n")
	pf("The agent compresses what its loadbalancing exporter sends the gateway (gRPC `compression`; configgrpc's default is gzip; configs/agent.yaml shipped %s in the measured commit); the gateway decompresses it. Both sides at %.0f spans/s for %v, %d rounds, alternating. **Agent side**: configs/agent.yaml as in *Agent footprint*, the exporter's compression set with `--set`; the sink counts the bytes of the traces exports it receives: each gRPC message as it crossed the wire (`WireLength`: compressed, with its 5-byte prefix) and decompressed. RSS max is the collector's peak RSS over the run. **Gateway side**: gateway-keepall with the harness's sender compressing its requests as an agent would (uncompressed as in every other table, gzip, zstd); bytes counted at the sender.\n\n", agentShips(res), o.Rate, o.Duration, o.Rounds)
	pf("| agent's compression | spans acked | delivered | lost | agent steady CPU µs/span (median) | ratio to gzip | gRPC message bytes per span (on the wire) | compression ratio | agent RSS max MiB (median) | per-round steady CPU µs/span |\n|---|---|---|---|---|---|---|---|---|---|\n")
	gz := perRound(res.Compression, "agent-gzip")
	for _, c := range compressionConfigs() {
		if !c.Agent {
			continue
		}
		m := perRound(res.Compression, c.Name)
		if len(m) == 0 {
			continue
		}
		acked, deliv, lost, _, _ := sumRuns(m)
		var wire, data int64
		var rounds []string
		for i := 0; i < o.Rounds; i++ {
			if r, ok := m[i]; ok {
				wire += r.SinkWireBytes
				data += r.SinkBytes
				rounds = append(rounds, us(r.CPUPerSpanSteady()))
			}
		}
		perSpan, ratio := "-", "-"
		if deliv > 0 {
			perSpan = fmt.Sprintf("%.0f", float64(wire)/float64(deliv))
		}
		if wire > 0 {
			ratio = fmt.Sprintf("%.2f", float64(data)/float64(wire))
		}
		pf("| %s | %d | %d | %d | %s | %.2fx | %s | %s | %s | %s |\n", c.Name[len("agent-"):], acked, deliv, lost,
			us(time.Duration(medianOfRuns(m, steadyPerSpan))), median(roundRatios(m, gz, steadyPerSpan)), perSpan, ratio, mib(int64(medianOfRuns(m, rssMax))), strings.Join(rounds, ", "))
	}
	pf("\n| gateway receives | spans acked | delivered | lost | gateway steady CPU µs/span (median) | ratio to uncompressed | gRPC message bytes per span sent | gateway RSS max MiB (median) | RSS ratio to uncompressed | per-round steady CPU µs/span | per-round RSS max MiB |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	plain := perRound(res.Compression, "gateway-keepall")
	for _, name := range []string{"gateway-keepall", "gateway-keepall-gzip-in", "gateway-keepall-zstd-in"} {
		m := perRound(res.Compression, name)
		if len(m) == 0 {
			continue
		}
		acked, deliv, lost, _, _ := sumRuns(m)
		var wire, sent int64
		var rounds, rssRounds []string
		for i := 0; i < o.Rounds; i++ {
			if r, ok := m[i]; ok {
				wire += r.SentWireBytes
				sent += r.Load.SpansSent
				rounds = append(rounds, us(r.CPUPerSpanSteady()))
				rssRounds = append(rssRounds, mib(r.RSSMax))
			}
		}
		label := "uncompressed"
		for _, c := range compressionConfigs() {
			if c.Name == name {
				label = c.SendCompression
			}
		}
		perSpan := "-"
		if sent > 0 {
			perSpan = fmt.Sprintf("%.0f", float64(wire)/float64(sent))
		}
		pf("| %s | %d | %d | %d | %s | %.2fx | %s | %s | %.2fx | %s | %s |\n", label, acked, deliv, lost, us(time.Duration(medianOfRuns(m, steadyPerSpan))), median(roundRatios(m, plain, steadyPerSpan)), perSpan,
			mib(int64(medianOfRuns(m, rssMax))), median(roundRatios(m, plain, rssMax)), strings.Join(rounds, ", "), strings.Join(rssRounds, ", "))
	}
	pf("\n")
}

// agentCompression is the compression an agent config's loadbalancing
// exporter sets, "gzip" when it sets none (configgrpc's default).
func agentCompression(config []byte) string {
	var c struct {
		Exporters map[string]struct {
			Protocol struct {
				OTLP struct {
					Compression *string `yaml:"compression"`
				} `yaml:"otlp"`
			} `yaml:"protocol"`
		} `yaml:"exporters"`
	}
	if err := yaml.Unmarshal(config, &c); err != nil {
		return "?"
	}
	lb, ok := c.Exporters["loadbalancing"]
	if !ok {
		return "?"
	}
	if v := lb.Protocol.OTLP.Compression; v != nil && *v != "" {
		return *v
	}
	return "gzip"
}

// writeGC: GOGC with the deployment's GOMEMLIMIT.
func writeGC(res *results, pf func(string, ...any)) {
	o := res.Options
	pf("## The garbage collector's target (GOGC)\n\n")
	where := fmt.Sprintf("in a cgroup v1 memory controller limited to %d MiB, the gateway pod's limit, so that memory_limiter (limit_percentage 80, spike 20) refuses data from %d MiB of heap as it does in the pod", gcPodLimit>>20, gcPodLimit*6/10>>20)
	if res.GCCgroup != "" {
		where = "with the machine's memory (" + res.GCCgroup + "): memory_limiter's limits are the machine's, not the pod's, so a heap a larger GOGC lets grow is not refused here as it could be in the pod"
	}
	pf("gateway-keepall and the baseline with `GOMEMLIMIT=%s` (80%% of the pod's limit, as deploy/kubernetes sets it) and GOGC at 100 (Go's default, what the deployment runs) and 400, %s; %.0f spans/s for %v, %d rounds, the order rotated each round. The other tables run without GOMEMLIMIT or GOGC (the harness does not pass its own on). A higher GOGC lets the heap grow to (1 + GOGC/100) times what is live before the next collection, so the collector marks what tail_sampling holds less often; GOMEMLIMIT still caps the heap, so under memory pressure the GC runs as often as at GOGC=100. Ratios are medians of same-round ratios. *As started*: GOGC and GOMEMLIMIT in the collector process's environment (`/proc/<pid>/environ`).\n\n", gcMemLimit, where, o.Rate, o.Duration, o.Rounds)
	pf("| config | as started | spans acked | delivered | lost | steady CPU µs/span (median) | ratio to the same chain at GOGC=100 | ratio to baseline at GOGC=100 | ratio to baseline at the same GOGC | RSS max MiB (median) | RSS ratio to GOGC=100 | per-round steady CPU µs/span |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	b100 := perRound(res.GC, "baseline-gogc100")
	for _, c := range gcConfigs() {
		m := perRound(res.GC, c.Name)
		if len(m) == 0 {
			continue
		}
		chain, gogc, _ := strings.Cut(c.Name, "-gogc")
		ref := perRound(res.GC, chain+"-gogc100")
		acked, deliv, lost, _, _ := sumRuns(m)
		var rounds []string
		started := ""
		for i := 0; i < o.Rounds; i++ {
			if r, ok := m[i]; ok {
				rounds = append(rounds, us(r.CPUPerSpanSteady()))
				started = r.RuntimeEnv
			}
		}
		pf("| %s | %s | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", c.Name, started, acked, deliv, lost,
			us(time.Duration(medianOfRuns(m, steadyPerSpan))), ratioOrDash(roundRatios(m, ref, steadyPerSpan)), ratioOrDash(roundRatios(m, b100, steadyPerSpan)),
			ratioOrDash(roundRatios(m, perRound(res.GC, "baseline-gogc"+gogc), steadyPerSpan)),
			mib(int64(medianOfRuns(m, rssMax))), ratioOrDash(roundRatios(m, ref, rssMax)), strings.Join(rounds, ", "))
	}
	pf("\n")
}

// writeSlowStore: the store answers every traces export after a delay.
func writeSlowStore(res *results, pf func(string, ...any)) {
	o := res.Options
	pf("## A slow store\n\n")
	pf("The sink answers every traces export only after a delay (a slow Tempo distributor), one run per config and delay at %.0f spans/s for %v. An export whose caller gives up before the answer (its timeout, a stop) is not stored, as a store built on the collector's OTLP receiver abandons a request whose context ends; the exporter retries it. gateway-keepall's exporter waits up to 30 s for an answer; the baseline's, the OTLP exporter's default, 5 s. Keep-all configs: every acknowledged span must arrive. The queue peak is the largest `otelcol_exporter_queue_size` of the config's traces exporter, read from the collector's metrics every 500 ms over the run (gateway-keepall: spans in its persistent queue; the baseline's in-memory queue counts requests); serving those reads is in the collector's CPU here, not in the other tables'. *Sustainable* is the step search's test: nothing refused, lost or duplicated, the offered rate achieved, end-to-end latency not growing by more than 500 ms from the first to the last quarter of the send, drained. While the store answers within the exporter's timeout, it keeps up as long as the exporter's consumers (10, both configs) x its request size / the delay exceed the rate: gateway-keepall's exporter batches 1 to 3.5 MiB from its queue, the baseline sends what its batch processor made.\n\n", o.Rate, o.Duration)
	if res.SlowStoreErr != "" {
		pf("The experiment stopped early: %s\n\n", res.SlowStoreErr)
	}
	pf("| store delay | config | spans acked | delivered | lost | dup | requests refused | sink requests | sustainable | p50 / p99 latency | queue peak | steady CPU µs/span | RSS max MiB | why not sustainable |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range res.SlowStore {
		pf("| %v | %s | %d | %d | %d | %d | %d | %d | %v | %v / %v | %.0f | %s | %s | %s |\n", r.SinkDelay, r.Config, r.V.SpansAcked, r.V.Delivered, r.V.Lost, r.V.Duplicates,
			r.Load.Failed, r.SinkRequests, r.Sustainable, r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.QueueMax,
			us(r.CPUPerSpanSteady()), mib(r.RSSMax), r.Why)
	}
	pf("\n")
}

// netCPU is a run's CPU seconds above the collector's idle rate over the
// whole run (IdleCores x Window): what the load cost, background
// (metrics, timers) left out.
func netCPU(r runResult) float64 {
	return r.CPU - r.IdleCores*r.Window.Seconds()
}

// longPair is one config's short and long run of one round.
type longPair struct{ short, long runResult }

// longPairs: a config's short and long runs of the long experiment, by
// round (rounds that have both).
func longPairs(runs []runResult, name string, short, long time.Duration) map[int]longPair {
	s, l := map[int]runResult{}, map[int]runResult{}
	for _, r := range runs {
		if r.Config != name {
			continue
		}
		switch r.Duration {
		case short:
			s[r.Round] = r
		case long:
			l[r.Round] = r
		}
	}
	out := map[int]longPair{}
	for round, rs := range s {
		if rl, ok := l[round]; ok {
			out[round] = longPair{rs, rl}
		}
	}
	return out
}

// marginal is the slope of CPU above idle over spans acknowledged between
// a round's short and long run (seconds per span), and the intercept: CPU
// seconds a run costs whatever its length. ok is false when the two runs
// acknowledged the same number of spans.
func (p longPair) marginal() (slope, fixed float64, ok bool) {
	ds := float64(p.long.V.SpansAcked - p.short.V.SpansAcked)
	if ds <= 0 {
		return 0, 0, false
	}
	slope = (netCPU(p.long) - netCPU(p.short)) / ds
	return slope, netCPU(p.short) - slope*float64(p.short.V.SpansAcked), true
}

// writeLong: the comparison's load for longer, and the cost per span of
// a load that goes on (the slope between the two lengths).
func writeLong(res *results, pf func(string, ...any)) {
	o := res.Options
	pf("## Longer runs: the cost of a load that goes on\n\n")
	pf("The comparison's load (%.0f spans/s) sent for %v and, right after it, for %v, for each config in each of %d rounds (the config order rotated). A tail sampling config's run has costs that do not grow with its length: its heap grows to hold decision_wait of spans, its last spans are exported after the send. A %v run charges them to few spans. *Marginal*: per round, (CPU above idle of the %v run - the same of the %v run) / (spans acknowledged, long - short), where CPU above idle is the run's CPU less its idle rate (measured before the send) times the whole run: what each further span costs a warm pipeline, background (the collector's own metrics, timers) left out; the table gives the median over rounds, and the marginal ratio is the median of same-round ratios to the baseline's. *Fixed*: the short run's CPU above idle less marginal x its spans, CPU seconds a run costs whatever its length. The steady columns are as in the comparison.\n\n", o.Rate, o.Duration, o.LongDuration, o.LongRounds, o.Duration, o.LongDuration, o.Duration)
	pf("| config | spans acked, %v runs | delivered | lost | steady CPU µs/span, %v runs (median) | ratio to baseline | steady CPU µs/span, %v runs (median) | marginal µs/span (median) | marginal ratio to baseline | fixed CPU-s per run (median) | RSS max MiB, %v runs (median) | per-round marginal µs/span |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n", o.LongDuration, o.LongDuration, o.Duration, o.LongDuration)
	base := longPairs(res.Long, "baseline", o.Duration, o.LongDuration)
	for _, name := range []string{"baseline", "gateway-keepall", "upstream-keepall"} {
		pairs := longPairs(res.Long, name, o.Duration, o.LongDuration)
		if len(pairs) == 0 {
			continue
		}
		longs, shorts := map[int]runResult{}, map[int]runResult{}
		var slopes, fixeds, ratios []float64
		var rounds []string
		for i := 0; i < o.LongRounds; i++ {
			p, ok := pairs[i]
			if !ok {
				continue
			}
			longs[i], shorts[i] = p.long, p.short
			sl, fx, ok := p.marginal()
			if !ok {
				rounds = append(rounds, "-")
				continue
			}
			slopes, fixeds = append(slopes, sl), append(fixeds, fx)
			rounds = append(rounds, us(time.Duration(sl*1e9)))
			if bp, ok := base[i]; ok {
				if bs, _, ok := bp.marginal(); ok && bs > 0 {
					ratios = append(ratios, sl/bs)
				}
			}
		}
		baseLongs := map[int]runResult{}
		for i, p := range base {
			baseLongs[i] = p.long
		}
		a, deliv, lost, _, _ := sumRuns(longs)
		mg, mr, fx := "-", "-", "-"
		if len(slopes) > 0 {
			mg, fx = us(time.Duration(median(slopes)*1e9)), fmt.Sprintf("%.2f", median(fixeds))
		}
		if len(ratios) > 0 {
			mr = fmt.Sprintf("%.2fx", median(ratios))
		}
		pf("| %s | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, a, deliv, lost,
			us(time.Duration(medianOfRuns(longs, steadyPerSpan))), ratioOrDash(roundRatios(longs, baseLongs, steadyPerSpan)), us(time.Duration(medianOfRuns(shorts, steadyPerSpan))),
			mg, mr, fx, mib(int64(medianOfRuns(longs, rssMax))), strings.Join(rounds, ", "))
	}
	pf("\n")
}

// ratioOrDash is the median of ratios, "-" when there are none (the
// reference config did not run).
func ratioOrDash(r []float64) string {
	if len(r) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", median(r))
}
