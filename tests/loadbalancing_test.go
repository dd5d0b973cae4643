package tests

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/otelcol-fabric/otelcol-fabric/internal/pyroscopetest"
)

const lbSpansPerTrace = 5

// lbGateway is one gateway (configs/gateway.yaml) behind the agent, with a
// counting Tempo stand-in of its own.
type lbGateway struct {
	name  string
	col   *collector
	tempo *seqCounter
}

func startLBGateway(t *testing.T, name, certFile, keyFile string) *lbGateway {
	t.Helper()
	g := &lbGateway{name: name, tempo: &seqCounter{}}
	l := listen(t)
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, &countingTempo{c: g.tempo})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	vendorURL, _ := otlpHTTPStandIn(t, "/v1/")
	lokiURL, _ := otlpHTTPStandIn(t, "/otlp/v1/")
	esURL, _ := elasticsearchStandIn(t)
	remoteWrite := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	pyroscope := serveHTTP(t, pyroscopetest.New().Handler())
	g.col = startCollectorEnv(t, []string{
		"FABRIC_INGEST_TOKEN=" + gwToken,
		"FABRIC_QUEUE_DIR=" + t.TempDir(),
		"FABRIC_TEMPO_ENDPOINT=" + l.Addr().String(),
		"FABRIC_VENDOR_OTLP_ENDPOINT=" + vendorURL,
		"FABRIC_LOKI_OTLP_ENDPOINT=" + lokiURL + "/otlp",
		"FABRIC_ELASTICSEARCH_ENDPOINT=" + esURL,
		"FABRIC_PROMETHEUS_RW_ENDPOINT=http://" + remoteWrite + "/api/v1/write",
		"FABRIC_PYROSCOPE_URL=http://" + pyroscope,
		"FABRIC_QUEUEWATCH_ENDPOINT=127.0.0.1:0",
		"FABRIC_FLUENTFORWARD_ENDPOINT=127.0.0.1:0",
		"FABRIC_PPROF_ENDPOINT=127.0.0.1:0",
		"FABRIC_ZPAGES_ENDPOINT=127.0.0.1:0",
		"FABRIC_TAIL_DECISION_WAIT=1s",
		"FABRIC_TRACES_HELD_FOR=6s",
		"FABRIC_SAMPLE_INITIAL_RATE=1", "FABRIC_SAMPLE_SPANS_PER_SEC=100000000",
		"FABRIC_TEST_TLS_CERT=" + certFile,
		"FABRIC_TEST_TLS_KEY=" + keyFile,
	}, "--config", gatewayConfig(), "--config", "tests/testdata/loadbalancing-gateway-tls.yaml")
	return g
}

// kill is a crash: SIGKILL, then wait for the process to be gone. The
// gateways are the parent test's and are killed from a subtest, so kill
// and relaunch return their errors instead of failing c.t.
func (c *collector) kill() error {
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-c.done
	fmt.Fprintf(c.output, "\n>>> killed (SIGKILL)\n")
	return nil
}

// relaunch starts a killed collector again with its arguments and
// environment (the same ports and queue directory) and waits for it to be
// healthy; collector.restart does the kill and the start in one step, this
// test needs the gateway down for a while in between.
func (c *collector) relaunch() error {
	cmd := exec.Command(c.cmd.Path, c.cmd.Args[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = c.cmd.Dir, c.cmd.Env, c.output, c.output
	if err := cmd.Start(); err != nil {
		return err
	}
	fmt.Fprintf(c.output, "\n>>> relaunched\n")
	done := make(chan struct{})
	c.cmd, c.done = cmd, done
	go func() {
		c.exitErr = cmd.Wait()
		close(done)
	}()
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-done:
			return fmt.Errorf("exited before becoming healthy: %w", c.exitErr)
		default:
		}
		resp, err := client.Get("http://" + c.Health + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("not healthy on %s 60s after the relaunch", c.Health)
}

// loopbackCert writes a self-signed certificate for 127.0.0.1 and its key.
func loopbackCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "otelcol-fabric-gateway"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}

// lbRing is the loadbalancing exporter's consistent hash ring
// (consistent_hashing.go of loadbalancingexporter v0.145.0): 100 positions
// per endpoint at crc32(endpoint, i) mod 36000, collisions probed forward,
// and a trace goes to the first position at or after crc32(trace ID) mod
// 36000. The test predicts each trace's gateway with it, so that it can tell
// the dead gateway's share from the survivors' without asking the agent.
type lbRing struct {
	pos []uint32
	ep  []string
}

func newLBRing(endpoints []string) lbRing {
	const maxPositions, weight, probeLimit = 36000, 100, 10
	type item struct {
		pos uint32
		ep  string
	}
	var items []item
	used := map[uint32]bool{}
	for _, ep := range slices.Sorted(slices.Values(endpoints)) { // the static resolver sorts
		for i := range weight {
			h := crc32.NewIEEE()
			h.Write([]byte(ep))
			h.Write(binary.LittleEndian.AppendUint32(nil, uint32(i)))
			p, probes := h.Sum32()%maxPositions, 0
			for used[p] && probes < probeLimit {
				p, probes = (p+1)%maxPositions, probes+1
			}
			if probes >= probeLimit {
				continue
			}
			used[p] = true
			items = append(items, item{p, ep})
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].pos < items[j].pos })
	var r lbRing
	for _, it := range items {
		r.pos, r.ep = append(r.pos, it.pos), append(r.ep, it.ep)
	}
	return r
}

func (r lbRing) owner(id pcommon.TraceID) string {
	p := crc32.ChecksumIEEE(id[:]) % 36000
	i := sort.Search(len(r.pos), func(i int) bool { return r.pos[i] >= p })
	if i == len(r.pos) {
		i = 0
	}
	return r.ep[i]
}

func lbTraceID(run string, n int) pcommon.TraceID {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", run, n))
	return pcommon.TraceID(sum[:16])
}

// lbTrace is trace n: lbSpansPerTrace spans, span k carrying outage.seq
// n*lbSpansPerTrace+k. A gold-tier service: tail sampling keeps every trace.
func lbTrace(run string, n int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	gwResource(rs.Resource(), "checkout", "gold", run)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	id, now := lbTraceID(run, n), time.Now()
	root := pcommon.SpanID{0: 0x1b, 4: byte(n >> 24), 5: byte(n >> 16), 6: byte(n >> 8), 7: byte(n)}
	for k := range lbSpansPerTrace {
		s := spans.AppendEmpty()
		s.SetName(fmt.Sprintf("step %d", k))
		s.SetTraceID(id)
		sid := root
		sid[1] = byte(k)
		s.SetSpanID(sid)
		if k > 0 {
			s.SetParentSpanID(root)
		}
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-5 * time.Millisecond)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		s.Attributes().PutInt("outage.seq", int64(n*lbSpansPerTrace+k))
	}
	body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	return body
}

// lbDelivery is where one trace's spans arrived.
type lbDelivery struct {
	spans  map[string]int // gateway name -> distinct spans of the trace in its Tempo
	copies int            // span copies beyond the first, all gateways
}

func lbDeliveries(gws []*lbGateway, traces []int) map[int]lbDelivery {
	out := make(map[int]lbDelivery, len(traces))
	for _, n := range traces {
		out[n] = lbDelivery{spans: map[string]int{}}
	}
	for _, g := range gws {
		g.tempo.mu.Lock()
		for _, n := range traces {
			d := out[n]
			for k := range lbSpansPerTrace {
				if c := g.tempo.n[n*lbSpansPerTrace+k]; c > 0 {
					d.spans[g.name]++
					d.copies += c - 1
				}
			}
			out[n] = d
		}
		g.tempo.mu.Unlock()
	}
	return out
}

// startLBAgent runs configs/agent.yaml outside Kubernetes (agentEnv) in
// front of the gateways, with the given overlays. The agent reaches the
// gateways over TLS (FABRIC_GATEWAY_INSECURE=false, the test CA through
// SSL_CERT_FILE).
func startLBAgent(t *testing.T, gws []*lbGateway, certFile string, overlays ...string) *collector {
	t.Helper()
	args := []string{"--config", "configs/agent.yaml"}
	for _, o := range overlays {
		args = append(args, "--config", o)
	}
	env := agentEnv(t, gws[0].col.GRPC, [3]string{gws[0].col.GRPC, gws[1].col.GRPC, gws[2].col.GRPC})
	return startCollectorEnv(t, append(env, "FABRIC_GATEWAY_INSECURE=false", "SSL_CERT_FILE="+certFile), args...)
}

// agentEnv is the environment that runs configs/agent.yaml outside
// Kubernetes: a kubeconfig to nowhere for k8sattributes and kubeletstats,
// container logs from an empty directory, metrics, logs and profiles to
// gateway, and the three gateways that tests/testdata/loadbalancing-overlay.yaml
// gives the loadbalancing exporter's static resolver for traces.
func agentEnv(t *testing.T, gateway string, lb [3]string) []string {
	t.Helper()
	return []string{
		"FABRIC_INGEST_TOKEN=" + gwToken,
		"K8S_NODE_NAME=node-1",
		"FABRIC_KUBE_AUTH=kubeConfig",
		"KUBECONFIG=" + filepath.Join(repoRoot(t), "tests", "testdata", "kubeconfig"),
		"FABRIC_QUEUE_DIR=" + t.TempDir(),
		"FABRIC_LOG_GLOB=" + filepath.Join(t.TempDir(), "*.log"),
		"FABRIC_GATEWAY_ENDPOINT=" + gateway,
		"FABRIC_TEST_GATEWAY_A=" + lb[0],
		"FABRIC_TEST_GATEWAY_B=" + lb[1],
		"FABRIC_TEST_GATEWAY_C=" + lb[2],
	}
}

// lbSender posts one trace per request to the agent's OTLP/HTTP receiver at
// a steady rate and records when each acknowledged trace was sent.
type lbSender struct {
	mu      sync.Mutex
	sentAt  map[int]time.Time
	refused int
}

func (s *lbSender) run(ctx context.Context, agent *collector, run string, first, rate int, d time.Duration) {
	client := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	for i := 0; time.Since(start) < d && ctx.Err() == nil; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		n, at := first+i, time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+agent.HTTP+"/v1/traces", bytes.NewReader(lbTrace(run, n)))
		req.Header.Set("Content-Type", "application/x-protobuf")
		resp, err := client.Do(req)
		ok := err == nil && resp.StatusCode == http.StatusOK
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		s.mu.Lock()
		if s.sentAt == nil {
			s.sentAt = map[int]time.Time{}
		}
		if ok {
			s.sentAt[n] = at
		} else {
			s.refused++
		}
		s.mu.Unlock()
	}
}

func (s *lbSender) acked() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.sentAt))
}

// TestLoadBalancing: three gateways (configs/gateway.yaml, each with its own
// counting Tempo stand-in, tail sampling keeping every trace) behind one
// agent (configs/agent.yaml, its loadbalancing exporter's DNS resolver
// replaced by a static list of the three: tests/testdata/loadbalancing-overlay.yaml).
// Traces of 5 spans, every span with a unique sequence number, one trace
// per request at 50/s.
//
// "shipped agent.yaml": every per-endpoint exporter starts and every
// acknowledged span is delivered. (At contrib v0.145.0 the loadbalancing
// exporter gives all its per-endpoint OTLP exporters one component ID, so
// with a persistent per-endpoint queue they all opened one file; only the
// first got it, the other two failed to start, and every batch holding a
// trace for either of them was rejected whole: 0 of 755 acknowledged spans
// delivered. agent.yaml now keeps that queue in memory.)
//
// "one gateway killed": with the shipped in-memory per-endpoint queue. 10 s of traffic, gateway b
// SIGKILLed, 10 s more, then b started again on its queue directory. What
// the loadbalancing exporter does (loadbalancer.go, resolver_static.go,
// trace_exporter.go): the static resolver reports its list once and never
// again, so the hash ring never changes and nothing notices that b is gone.
// A trace's spans all go to the ring's owner of its trace ID, before and
// after the kill: b's share does not move to a and c. Each batch is split by
// owner and handed to that owner's exporter, whose sending queue takes it at
// once (so the agent and its loadbalancer metrics report success) and
// retries it without end (retry_on_failure.max_elapsed_time 0) while b is
// down; the per-endpoint exporters' own queue metrics are not published
// (their meter provider is a no-op). So b's share waits in the agent's
// memory and reaches b when it is back, and what is lost is what b had
// acknowledged and still held in memory when it died: the traces in
// tail_sampling's decision_wait. The case asserts: no trace split across
// gateways; every delivered trace at its ring owner; all three gateways
// with a share before the kill; a and c receive everything they own and
// keep growing after it; nothing of b's share reaches a or c; after b is
// back, every acknowledged trace is delivered except b's traces sent in the
// few seconds before the kill (agent batch, decision_wait, decision tick),
// and the loss is counted by id. Of b's traces sent before the kill, some
// arrive only after its return: the agent retries what b had not
// acknowledged, and b replays its persistent Tempo queue; the log splits
// the two from b's own metrics.
//
// Measured in six runs (with the queue in memory): 13, 15, 13, 33, 32 and 33 of 1,001 acknowledged traces were lost,
// all b's, sent 0.22 to 2.2 s before the kill; no trace split, no
// duplicate; every one of b's 154 to 187 traces sent while it was down
// (13.3 to 14.4 s) arrived after its return.
//
// The agent reaches the gateways over TLS here (FABRIC_GATEWAY_INSECURE=false);
// TestAgentStartsWithShippedDefaults covers the plaintext default.
func TestLoadBalancing(t *testing.T) {
	fabricBin(t)
	certFile, keyFile := loopbackCert(t)
	gws := []*lbGateway{
		startLBGateway(t, "a", certFile, keyFile),
		startLBGateway(t, "b", certFile, keyFile),
		startLBGateway(t, "c", certFile, keyFile),
	}
	byEndpoint := map[string]*lbGateway{}
	var endpoints []string
	for _, g := range gws {
		byEndpoint[g.col.GRPC] = g
		endpoints = append(endpoints, g.col.GRPC)
	}
	ring := newLBRing(endpoints)
	run := fmt.Sprintf("lb-%d", time.Now().UnixNano())
	ownerOf := func(n int) string { return byEndpoint[ring.owner(lbTraceID(run, n))].name }
	const rate = 50 // traces per second

	t.Run("shipped agent.yaml", func(t *testing.T) {
		agent := startLBAgent(t, gws, certFile, "tests/testdata/loadbalancing-overlay.yaml")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s := &lbSender{}
		s.run(ctx, agent, run, 0, rate, 3*time.Second)
		acked := s.acked()
		var delivered, failed int
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			delivered = 0
			for _, d := range lbDeliveries(gws, acked) {
				for _, c := range d.spans {
					delivered += c
				}
			}
			failed = int(metricSum(scrape(t, agent), "otelcol_exporter_send_failed_spans_total", `exporter="loadbalancing"`))
			if delivered+failed >= len(acked)*lbSpansPerTrace {
				break
			}
		}
		out := agent.output.String()
		startFailures := strings.Count(out, "failed to start new exporter for endpoint")
		t.Logf("shipped agent.yaml: %d traces (%d spans) acknowledged, %d refused; %d spans delivered, %d counted as failed (send_failed_spans); %d of %d per-endpoint exporters failed to start",
			len(acked), len(acked)*lbSpansPerTrace, s.refused, delivered, failed, startFailures, len(gws))
		assert.Zero(t, startFailures, "every per-endpoint exporter starts (agent.yaml keeps their queue in memory: at v0.145.0 persistent ones share one file)")
		assert.NotContains(t, out, "couldn't find the exporter for the endpoint")
		assert.Equal(t, len(acked)*lbSpansPerTrace, delivered, "every acknowledged span delivered")
		reliability.record("Three gateways behind the agent's loadbalancing exporter: shipped agent.yaml",
			"FABRIC_BIN=bin/otelcol-fabric go test -count=1 -run 'TestLoadBalancing/shipped' ./tests/",
			fmt.Sprintf("configs/agent.yaml with a static resolver listing three gateways on 127.0.0.1 (TLS, token), %d traces/s of %d spans for 3 s. "+
				"%d of %d per-endpoint exporters failed to start. Acknowledged by the agent: %d spans; delivered: %d; lost: %d. "+
				"(Before the agent kept this queue in memory, 2 of 3 failed to start and 755 of 755 acknowledged spans were lost.)",
				rate, lbSpansPerTrace, startFailures, len(gws), len(acked)*lbSpansPerTrace, delivered, len(acked)*lbSpansPerTrace-delivered))
		assert.Equal(t, 0, agent.terminate())
	})

	t.Run("one gateway killed", func(t *testing.T) {
		agent := startLBAgent(t, gws, certFile, "tests/testdata/loadbalancing-overlay.yaml")
		const first = 1_000_000 // after the first case's traces
		phase := 10 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 2*phase+30*time.Second)
		defer cancel()
		s := &lbSender{}
		start := time.Now()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx, agent, run, first, rate, 2*phase)
		}()
		victim := gws[1]
		time.Sleep(time.Until(start.Add(phase)))
		killAt := time.Now()
		require.NoError(t, victim.col.kill())
		wg.Wait()
		acked := s.acked()
		t.Logf("%d traces acknowledged by the agent, %d refused; %s killed at +%s",
			len(acked), s.refused, victim.name, killAt.Sub(start).Round(time.Millisecond))

		// lossWindow bounds how long before the kill b can have held an
		// acknowledged trace in memory only: the agent's batch (timeout 1s)
		// is still in the agent and is retried; after it, b's tail_sampling
		// holds the spans for decision_wait (1s) until its next decision
		// tick (1s), after which they are in b's persistent Tempo queue. One
		// second of slack.
		const lossWindow = 4 * time.Second

		// With b down: wait until a and c have everything they own.
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			tl := lbTally(gws, acked, s, killAt, ownerOf)
			if tl.rows["a"].complete() && tl.rows["c"].complete() {
				break
			}
		}
		metrics := scrape(t, agent)
		down := lbTally(gws, acked, s, killAt, ownerOf)
		t.Logf("with %s down:\n%s", victim.name, down.table(gws))
		t.Logf("the agent's view of it: sent_spans %v, send_failed_spans %v, backend outcome for %s: success %v, failure %v; \"Exporting failed. Will retry\" log lines for %s: %d",
			metricSum(metrics, "otelcol_exporter_sent_spans_total", `exporter="loadbalancing"`),
			metricSum(metrics, "otelcol_exporter_send_failed_spans_total", `exporter="loadbalancing"`),
			victim.name,
			metricSum(metrics, "otelcol_loadbalancer_backend_outcome_total", `endpoint="`+victim.col.GRPC+`".*success="true"`),
			metricSum(metrics, "otelcol_loadbalancer_backend_outcome_total", `endpoint="`+victim.col.GRPC+`".*success="false"`),
			victim.name, retryLines(agent.output.String(), victim.col.GRPC))
		assert.Zero(t, down.split, "no trace split across gateways")
		assert.Zero(t, down.misrouted, "every trace at its ring owner: the dead gateway's share does not move")
		for _, g := range gws {
			assert.Positive(t, down.rows[g.name].deliveredBefore, "%s got a share before the kill", g.name)
		}
		for _, name := range []string{"a", "c"} {
			r := down.rows[name]
			assert.True(t, r.complete(), "%s: every trace it owns delivered: %+v", name, *r)
			assert.Positive(t, r.deliveredAfter, "%s keeps receiving after the kill", name)
		}

		// b back on its queue directory: the agent's retries deliver what
		// waited for it. Wait until everything sent after the kill is in and
		// nothing new has arrived for 3 s (the crash loss never will).
		require.NoError(t, victim.col.relaunch(), "%s relaunched", victim.name)
		relaunchedAt := time.Now()
		var back lbTallies
		last, lastChange := -1, time.Now()
		for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			back = lbTally(gws, acked, s, killAt, ownerOf)
			if n := back.delivered(); n != last {
				last, lastChange = n, time.Now()
			}
			if back.rows[victim.name].deliveredAfter == back.rows[victim.name].after && time.Since(lastChange) > 5*time.Second {
				break
			}
		}
		// What the relaunched b took in from the agent, against what it sent
		// to Tempo: the difference came from its persistent Tempo queue.
		bm := scrape(t, victim.col)
		fromAgent := int(metricSum(bm, "otelcol_receiver_accepted_spans_total", `receiver="otlp"`))
		toTempo := int(metricSum(bm, "otelcol_exporter_sent_spans_total", `exporter="otlp_grpc/tempo"`))
		b := back.rows[victim.name]
		t.Logf("%s back at +%s (down %s), counted at +%s:\n%s", victim.name, relaunchedAt.Sub(start).Round(time.Millisecond),
			relaunchedAt.Sub(killAt).Round(time.Millisecond), time.Since(start).Round(time.Millisecond), back.table(gws))
		lost := len(b.lostBefore)
		var earliest, latest time.Duration
		if lost > 0 {
			earliest, latest = slices.Max(b.lostBefore), slices.Min(b.lostBefore)
		}
		t.Logf("acknowledged by the agent: %d traces (%d spans); delivered: %d traces; lost: %d traces (%d spans), all %s's, sent between %s and %s before the kill; duplicate span copies: %d",
			len(acked), len(acked)*lbSpansPerTrace, back.delivered(), lost, lost*lbSpansPerTrace, victim.name,
			earliest.Round(time.Millisecond), latest.Round(time.Millisecond), back.copies)
		t.Logf("%s's %d traces sent before the kill: %d delivered before it died, %d after its return (%d spans replayed from its persistent Tempo queue, %d retried by the agent), %d lost; of its %d traces sent while it was down, %d waited in the agent and arrived after its return",
			victim.name, b.before, down.rows[victim.name].deliveredBefore, b.deliveredBefore-down.rows[victim.name].deliveredBefore,
			toTempo-fromAgent, fromAgent-b.after*lbSpansPerTrace, lost, b.after, b.deliveredAfter)
		reliability.record("Three gateways behind the agent's loadbalancing exporter: one killed with SIGKILL",
			"FABRIC_BIN=bin/otelcol-fabric go test -count=1 -run 'TestLoadBalancing/one_gateway_killed' ./tests/",
			fmt.Sprintf("configs/agent.yaml (static resolver on 127.0.0.1, per-endpoint queue in memory) in front of three configs/gateway.yaml "+
				"(decision_wait 1 s); %d traces/s of %d spans, gateway %s SIGKILLed after 10 s, 10 s more, then started again on its queue directory "+
				"(down %s). Rows are the traces the hash ring gives each gateway.\n\n%s\n\n"+
				"Acknowledged by the agent: %d traces (%d spans); delivered: %d; lost: %d traces (%d spans), all %s's, sent %s to %s before the kill "+
				"(what %s held in tail_sampling); duplicates: %d spans. %s's traces sent while it was down: %d, delivered after its return: %d (they waited in the agent; none went to another gateway).",
				rate, lbSpansPerTrace, victim.name, relaunchedAt.Sub(killAt).Round(time.Second), back.table(gws),
				len(acked), len(acked)*lbSpansPerTrace, back.delivered(), lost, lost*lbSpansPerTrace, victim.name,
				earliest.Round(10*time.Millisecond), latest.Round(10*time.Millisecond), victim.name, back.copies, victim.name, b.after, b.deliveredAfter))
		assert.Zero(t, back.split, "no trace split across gateways")
		assert.Zero(t, back.misrouted, "every trace at its ring owner")
		assert.Equal(t, b.after, b.deliveredAfter, "everything for %s sent while it was down waited in the agent and was delivered", victim.name)
		for _, name := range []string{"a", "c"} {
			assert.True(t, back.rows[name].complete(), "%s: every trace it owns delivered", name)
		}
		assert.LessOrEqual(t, earliest, lossWindow, "only what %s held in memory when it died is lost: traces sent in the %s before the kill", victim.name, lossWindow)
		assert.Equal(t, len(acked)-lost, back.delivered(), "every acknowledged trace delivered or lost in the crash window")
		assert.Equal(t, 0, agent.terminate())
	})
}

// lbCount is one gateway's row: the traces the ring gives it, sent before
// and after the kill, and how many of them arrived whole.
type lbCount struct {
	before, deliveredBefore, after, deliveredAfter int
	lostBefore                                     []time.Duration // for each trace sent before the kill and not delivered: how long before
}

func (r *lbCount) complete() bool {
	return r.deliveredBefore == r.before && r.deliveredAfter == r.after
}

type lbTallies struct {
	rows      map[string]*lbCount
	split     int // traces whose spans reached more than one gateway
	misrouted int // traces with spans at a gateway that is not their ring owner
	copies    int // span copies beyond the first
}

func (tl lbTallies) delivered() int {
	n := 0
	for _, r := range tl.rows {
		n += r.deliveredBefore + r.deliveredAfter
	}
	return n
}

func (tl lbTallies) table(gws []*lbGateway) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| gateway | its traces sent before the kill | delivered | sent after | delivered |\n|---|---|---|---|---|\n")
	for _, g := range gws {
		r := tl.rows[g.name]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d |\n", g.name, r.before, r.deliveredBefore, r.after, r.deliveredAfter)
	}
	fmt.Fprintf(&b, "split across gateways: %d traces; at a gateway not their ring owner: %d; duplicate span copies: %d", tl.split, tl.misrouted, tl.copies)
	return b.String()
}

// lbTally classifies every acknowledged trace by its ring owner and where
// its spans arrived.
func lbTally(gws []*lbGateway, acked []int, s *lbSender, killAt time.Time, ownerOf func(int) string) lbTallies {
	d := lbDeliveries(gws, acked)
	tl := lbTallies{rows: map[string]*lbCount{}}
	for _, g := range gws {
		tl.rows[g.name] = &lbCount{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range acked {
		o := ownerOf(n)
		row, at := tl.rows[o], s.sentAt[n]
		whole := d[n].spans[o] == lbSpansPerTrace
		switch {
		case at.Before(killAt) && whole:
			row.before++
			row.deliveredBefore++
		case at.Before(killAt):
			row.before++
			row.lostBefore = append(row.lostBefore, killAt.Sub(at))
		case whole:
			row.after++
			row.deliveredAfter++
		default:
			row.after++
		}
		if len(d[n].spans) > 1 {
			tl.split++
		}
		for g := range d[n].spans {
			if g != o {
				tl.misrouted++
				break
			}
		}
		tl.copies += d[n].copies
	}
	return tl
}

// retryLines counts the agent's "will retry" log lines for one endpoint.
func retryLines(log, endpoint string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "Exporting failed. Will retry") && strings.Contains(line, `"endpoint": "`+endpoint+`"`) {
			n++
		}
	}
	return n
}

// TestAgentStartsWithShippedDefaults: configs/agent.yaml with its default
// FABRIC_GATEWAY_INSECURE=true (plaintext gRPC inside the cluster) starts
// and becomes healthy. It used not to start: its bearertokenauth client
// refuses to send a token without TLS ("grpc: the credentials require
// transport level security"); the token now goes as a header.
func TestAgentStartsWithShippedDefaults(t *testing.T) {
	port := func() string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }
	agent := startCollectorEnv(t, agentEnv(t, port(), [3]string{port(), port(), port()}),
		"--config", "configs/agent.yaml", "--config", "tests/testdata/loadbalancing-overlay.yaml")
	assert.NotContains(t, agent.output.String(), "require transport level security")
	require.Equal(t, 0, agent.terminate())
}
