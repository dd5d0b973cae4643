package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// maxSpansPerTrace bounds a trace's spans: a span's sequence id is its
// trace's sequence number times maxSpansPerTrace plus its index in the trace.
const maxSpansPerTrace = 32

// seqKey is the span attribute that carries the span's sequence id, 16
// lower-case hex digits, rewritten in the encoded bytes on every send.
const seqKey = "bench.seq"

// service is one emitting service of the workload: its resource.
type service struct {
	name, tier, version, commit string
}

var services = []service{
	{"checkout", "gold", "2.7.1", "3f2c9a1b7d"},
	{"payments", "gold", "1.12.0", "9ab44e01c2"},
	{"cart", "silver", "3.0.4", "77c1d0e5aa"},
	{"catalog", "silver", "5.2.0", "0b9e13f4d8"},
	{"search", "bronze", "0.9.3", "c4d5e6f708"},
	{"recommendations", "bronze", "4.1.1", "18a2b3c4d5"},
	{"shipping", "silver", "2.0.0", "e1f2a3b4c5"},
	{"frontend", "silver", "10.3.2", "5566778899"},
}

// template is one pre-encoded ExportTraceServiceRequest and where, in its
// bytes, each span's trace id and sequence id are, so that a sender can
// stamp a fresh trace sequence on a copy without encoding anything.
type template struct {
	data   []byte
	spans  int
	traces []traceSlots
}

// traceSlots: the byte offsets of one trace's trace_id fields (one per span)
// and of its spans' bench.seq values, index = span index in the trace.
type traceSlots struct {
	traceID []int
	seq     []int
	spanIdx []int
	errored bool
	slow    bool
}

// workload is the set of pre-encoded requests every config is sent.
type workload struct {
	templates     []template
	spans, traces int // over all templates
	errorTraces   int
	slowTraces    int
}

// workloadSpec describes the shape of the generated traffic.
type workloadSpec struct {
	Requests        int     // distinct pre-encoded requests
	TracesPerReq    int     // traces per request
	ErrorShare      float64 // traces with an ERROR span
	SlowShare       float64 // traces whose root lasts longer than slowRoot
	Seed            uint64
	SlowRootLatency time.Duration
}

func defaultWorkloadSpec() workloadSpec {
	return workloadSpec{Requests: 64, TracesPerReq: 8, ErrorShare: 0.05, SlowShare: 0.05, Seed: 1, SlowRootLatency: 1500 * time.Millisecond}
}

var spanNames = []string{"GET /cart", "POST /checkout", "SELECT orders", "redis GET", "grpc Pay.Charge", "render", "kafka publish", "GET /search"}

// buildWorkload builds spec.Requests requests with pdata, encodes each once
// and records the offsets of the fields a send rewrites.
func buildWorkload(spec workloadSpec) (*workload, error) {
	rng := rand.New(rand.NewPCG(spec.Seed, 0x5eed))
	w := &workload{}
	now := time.Now()
	placeholder := uint64(0)
	for r := 0; r < spec.Requests; r++ {
		td := ptrace.NewTraces()
		byService := map[string]ptrace.ScopeSpans{}
		scopeOf := func(svc service) ptrace.ScopeSpans {
			if ss, ok := byService[svc.name]; ok {
				return ss
			}
			rs := td.ResourceSpans().AppendEmpty()
			a := rs.Resource().Attributes()
			a.PutStr("service.name", svc.name)
			a.PutStr("service.namespace", "shop")
			a.PutStr("service.instance.id", fmt.Sprintf("%s-%04x", svc.name, rng.Uint32()&0xffff))
			a.PutStr("service.version", svc.version)
			a.PutStr("git.commit.sha", svc.commit) // legacy key: versionstamp normalises it
			a.PutStr("deployment.environment", "prod")
			a.PutStr("service.tier", svc.tier)
			a.PutStr("host.name", fmt.Sprintf("node-%d", rng.IntN(20)))
			a.PutStr("os.type", "linux")
			a.PutStr("k8s.namespace.name", "shop")
			a.PutStr("k8s.pod.name", fmt.Sprintf("%s-7d9f8b6c5-%05d", svc.name, rng.IntN(100000)))
			a.PutStr("telemetry.sdk.name", "opentelemetry")
			a.PutStr("telemetry.sdk.language", "go")
			a.PutStr("telemetry.sdk.version", "1.39.0")
			a.PutStr("process.command_line", "/app --config /etc/app.yaml") // not in the gateway's allow list
			a.PutInt("process.pid", int64(rng.IntN(60000)))
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
			ss.Scope().SetVersion("0.63.0")
			byService[svc.name] = ss
			return ss
		}
		var reqTraces []traceSlots
		var traceIDs [][16]byte
		var seqPlace [][]string
		for t := 0; t < spec.TracesPerReq; t++ {
			n := 5 + rng.IntN(16) // 5..20 spans
			errored := rng.Float64() < spec.ErrorShare
			slow := !errored && rng.Float64() < spec.SlowShare
			var tid [16]byte
			for i := range tid {
				tid[i] = byte(rng.UintN(256))
			}
			tid[0] = 0xfe // never all zero, and not a valid run nonce prefix
			// Spans of the trace across 1-3 services.
			nsvc := 1 + rng.IntN(3)
			first := rng.IntN(len(services))
			rootDur := time.Duration(20+rng.IntN(200)) * time.Millisecond
			if slow {
				rootDur = spec.SlowRootLatency
			}
			start := now.Add(-rootDur)
			var places []string
			errAt := -1
			if errored {
				errAt = rng.IntN(n)
			}
			for s := 0; s < n; s++ {
				svc := services[(first+s*nsvc/n)%len(services)]
				sp := scopeOf(svc).Spans().AppendEmpty()
				sp.SetTraceID(pcommon.TraceID(tid))
				sp.SetSpanID(spanID(s))
				if s > 0 {
					sp.SetParentSpanID(spanID(rng.IntN(s)))
					sp.SetKind(ptrace.SpanKindInternal)
				} else {
					sp.SetKind(ptrace.SpanKindServer)
				}
				sp.SetName(spanNames[rng.IntN(len(spanNames))])
				off := time.Duration(0)
				dur := rootDur
				if s > 0 {
					off = time.Duration(rng.Int64N(int64(rootDur) / 2))
					dur = time.Duration(rng.Int64N(int64(rootDur-off))) + time.Microsecond
				}
				sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(off)))
				sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(off + dur)))
				if s == errAt {
					sp.Status().SetCode(ptrace.StatusCodeError)
					sp.Status().SetMessage("upstream returned 503")
				}
				a := sp.Attributes()
				p := fmt.Sprintf("%016x", 0xa5a5_0000_0000_0000|placeholder)
				placeholder++
				places = append(places, p)
				a.PutStr(seqKey, p)
				addSpanAttributes(rng, a, 10+rng.IntN(11)-1) // 10..20 with bench.seq
			}
			reqTraces = append(reqTraces, traceSlots{errored: errored, slow: slow})
			traceIDs = append(traceIDs, tid)
			seqPlace = append(seqPlace, places)
			w.traces++
			w.spans += n
			if errored {
				w.errorTraces++
			}
			if slow {
				w.slowTraces++
			}
		}
		data, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
		if err != nil {
			return nil, err
		}
		tm := template{data: data, spans: td.SpanCount()}
		for t := range reqTraces {
			ts := reqTraces[t]
			ts.traceID = indexAll(data, traceIDs[t][:])
			for i, p := range seqPlace[t] {
				offs := indexAll(data, []byte(p))
				if len(offs) != 1 {
					return nil, fmt.Errorf("placeholder %s found %d times", p, len(offs))
				}
				ts.seq = append(ts.seq, offs[0])
				ts.spanIdx = append(ts.spanIdx, i)
			}
			if len(ts.traceID) != len(ts.seq) {
				return nil, fmt.Errorf("trace %d: %d trace ids for %d spans", t, len(ts.traceID), len(ts.seq))
			}
			tm.traces = append(tm.traces, ts)
		}
		w.templates = append(w.templates, tm)
	}
	return w, nil
}

func spanID(i int) pcommon.SpanID {
	var id [8]byte
	id[0] = 0x5a
	binary.BigEndian.PutUint32(id[4:], uint32(i+1))
	return pcommon.SpanID(id)
}

var attrPool = []struct {
	key string
	gen func(*rand.Rand) any
}{
	{"http.request.method", func(r *rand.Rand) any { return []string{"GET", "POST", "PUT"}[r.IntN(3)] }},
	{"http.route", func(r *rand.Rand) any { return fmt.Sprintf("/api/v1/items/{id}/%d", r.IntN(40)) }},
	{"url.path", func(r *rand.Rand) any { return fmt.Sprintf("/api/v1/items/%d", r.IntN(100000)) }},
	{"http.response.status_code", func(r *rand.Rand) any { return int64([]int{200, 200, 200, 201, 404, 503}[r.IntN(6)]) }},
	{"server.address", func(r *rand.Rand) any { return "shop.internal" }},
	{"server.port", func(r *rand.Rand) any { return int64(8080) }},
	{"user_agent.original", func(r *rand.Rand) any {
		return "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
	}},
	{"client.address", func(r *rand.Rand) any { return fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256)) }},
	{"network.protocol.version", func(r *rand.Rand) any { return "1.1" }},
	{"thread.name", func(r *rand.Rand) any { return fmt.Sprintf("worker-%d", r.IntN(64)) }},
	{"db.system.name", func(r *rand.Rand) any { return "postgresql" }},
	{"db.query.text", func(r *rand.Rand) any { return "SELECT id, sku, qty FROM order_items WHERE order_id = $1" }},
	{"messaging.system", func(r *rand.Rand) any { return "kafka" }},
	{"rpc.system", func(r *rand.Rand) any { return "grpc" }},
	{"code.function.name", func(r *rand.Rand) any { return "main.(*handler).ServeHTTP" }},
	{"user.id", func(r *rand.Rand) any { return fmt.Sprintf("u-%08d", r.IntN(1e8)) }},  // denied by tagguard
	{"session.id", func(r *rand.Rand) any { return fmt.Sprintf("%016x", r.Uint64()) }}, // denied by tagguard
	{"app.cache.hit", func(r *rand.Rand) any { return r.IntN(2) == 0 }},
	{"app.items", func(r *rand.Rand) any { return int64(r.IntN(50)) }},
	{"app.latency_budget_ms", func(r *rand.Rand) any { return float64(r.IntN(1000)) / 3 }},
}

// addSpanAttributes adds n distinct attributes from attrPool.
func addSpanAttributes(rng *rand.Rand, a pcommon.Map, n int) {
	for _, i := range rng.Perm(len(attrPool))[:n] {
		switch v := attrPool[i].gen(rng).(type) {
		case string:
			a.PutStr(attrPool[i].key, v)
		case int64:
			a.PutInt(attrPool[i].key, v)
		case bool:
			a.PutBool(attrPool[i].key, v)
		case float64:
			a.PutDouble(attrPool[i].key, v)
		}
	}
}

func indexAll(data, sub []byte) []int {
	var out []int
	for off := 0; ; {
		i := bytes.Index(data[off:], sub)
		if i < 0 {
			return out
		}
		out = append(out, off+i)
		off += i + len(sub)
	}
}

// stamp writes trace sequence numbers first, first+1, ... into buf, a copy
// of tm.data: each trace gets the trace id nonce|seq and each span the
// sequence id seq*maxSpansPerTrace+index. It returns the next trace seq.
func (tm *template) stamp(buf []byte, nonce uint64, first uint64) uint64 {
	seq := first
	var hexbuf [16]byte
	var raw [8]byte
	for _, tr := range tm.traces {
		for _, off := range tr.traceID {
			binary.BigEndian.PutUint64(buf[off:], nonce)
			binary.BigEndian.PutUint64(buf[off+8:], seq)
		}
		for i, off := range tr.seq {
			binary.BigEndian.PutUint64(raw[:], seq*maxSpansPerTrace+uint64(tr.spanIdx[i]))
			hex.Encode(hexbuf[:], raw[:])
			copy(buf[off:], hexbuf[:])
		}
		seq++
	}
	return seq
}
