package tagguardprocessor // import "github.com/otelcol-fabric/otelcol-fabric/processors/tagguardprocessor"

import (
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap"
)

// valueCap bounds the distinct values of one attribute key. A value counts
// against the cap until it has not been seen for the window.
type valueCap struct {
	mu        sync.Mutex
	max       int
	window    int64
	values    map[string]int64 // value -> last seen (Unix ns)
	lastSweep int64
}

func newValueCap(limit int, window time.Duration) *valueCap {
	return &valueCap{max: limit, window: int64(window), values: make(map[string]int64, limit)}
}

// admit reports whether the value may stay; it registers new values while
// there is room.
func (c *valueCap) admit(v pcommon.Value, now int64) bool {
	var s string
	if v.Type() == pcommon.ValueTypeStr {
		s = v.Str()
	} else {
		s = v.AsString()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.values[s]; ok {
		c.values[s] = now
		return true
	}
	if len(c.values) >= c.max && now-c.lastSweep > c.window/8 {
		c.lastSweep = now
		for val, seen := range c.values {
			if now-seen > c.window {
				delete(c.values, val)
			}
		}
	}
	if len(c.values) < c.max {
		c.values[strings.Clone(s)] = now
		return true
	}
	return false
}

// sampleEvery is the sampling rate of the offenders report: one dropped or
// capped attribute in sampleEvery is attributed to its key and service. The
// report ranks offenders; exact totals are in the telemetry counters.
const sampleEvery = 8

// offenders collects, within one batch and without allocating, a sample of
// which keys were dropped or capped and for which service.
type offenders struct {
	seen     uint64
	res      pcommon.Map // the resource being processed
	resolved bool        // service holds res's service.name
	service  string
	n        int
	next     int // where the next offense is likely: items repeat their keys in order
	keys     [16]offense
	other    int64
}

type offense struct {
	key, service string
	count        int64
}

// resource sets the resource whose items follow; its service.name is read
// only if one of its offenses is sampled.
func (o *offenders) resource(res pcommon.Map) {
	o.res, o.resolved = res, false
}

func (o *offenders) key(k string) {
	o.seen++
	if o.seen%sampleEvery == 1 {
		o.record(k)
	}
}

// keyFunc is key for a key that costs something to look up.
func (o *offenders) keyFunc(k func() string) {
	o.seen++
	if o.seen%sampleEvery == 1 {
		o.record(k())
	}
}

func (o *offenders) record(k string) {
	if !o.resolved {
		o.resolved, o.service = true, ""
		if v, ok := o.res.Get("service.name"); ok {
			o.service = v.Str()
		}
	}
	if o.next < o.n {
		if e := &o.keys[o.next]; e.key == k && e.service == o.service {
			e.count += sampleEvery
			o.next = (o.next + 1) % o.n
			return
		}
	}
	for i := 0; i < o.n; i++ {
		if e := &o.keys[i]; e.key == k && e.service == o.service {
			e.count += sampleEvery
			o.next = (i + 1) % o.n
			return
		}
	}
	if o.n < len(o.keys) {
		o.keys[o.n] = offense{key: k, service: o.service, count: sampleEvery}
		o.n++
		o.next = 0
		return
	}
	o.other += sampleEvery
}

// maxReportEntries bounds the reporter's memory between two log lines.
const maxReportEntries = 1000

type offenseKey struct{ key, service string }

// reporter logs, at most once per interval, the keys and services behind
// dropped and capped attributes, so an operator finds the culprit from the
// collector's log.
type reporter struct {
	logger   *zap.Logger
	interval time.Duration
	top      int
	mode     string

	mu     sync.Mutex
	counts map[offenseKey]int64
	other  int64

	stopCh chan struct{}
	done   sync.WaitGroup
}

func newReporter(logger *zap.Logger, cfg ReportConfig, mode string) *reporter {
	return &reporter{logger: logger, interval: cfg.Interval, top: cfg.Top, mode: mode, counts: map[offenseKey]int64{}}
}

func (r *reporter) merge(o *offenders) {
	if r.interval <= 0 || (o.n == 0 && o.other == 0) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.other += o.other
	for i := 0; i < o.n; i++ {
		e := &o.keys[i]
		k := offenseKey{e.key, e.service}
		if _, ok := r.counts[k]; !ok {
			if len(r.counts) >= maxReportEntries {
				r.other += e.count
				continue
			}
			k = offenseKey{strings.Clone(e.key), strings.Clone(e.service)}
		}
		r.counts[k] += e.count
	}
}

func (r *reporter) start() {
	if r.interval <= 0 {
		return
	}
	r.stopCh = make(chan struct{})
	stop := r.stopCh
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		t := time.NewTicker(r.interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				r.flush()
			}
		}
	}()
}

func (r *reporter) stop() {
	if r.stopCh != nil {
		close(r.stopCh)
		r.done.Wait()
		r.stopCh = nil
	}
}

// ranked is one line of a top list.
type ranked struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

// flush logs the top keys and services since the last line and resets.
func (r *reporter) flush() {
	r.mu.Lock()
	counts, other := r.counts, r.other
	r.counts, r.other = map[offenseKey]int64{}, 0
	r.mu.Unlock()
	if len(counts) == 0 && other == 0 {
		return
	}
	byKey, bySvc := map[string]int64{}, map[string]int64{}
	var total int64
	for k, n := range counts {
		byKey[k.key] += n
		svc := k.service
		if svc == "" {
			svc = "(no service.name)"
		}
		bySvc[svc] += n
		total += n
	}
	r.logger.Warn("tagguard: attributes dropped or capped; top offending keys and services",
		zap.String("mode", r.mode),
		zap.Int64("sampled_total", total+other),
		zap.Int("sampled_one_in", sampleEvery),
		zap.Duration("interval", r.interval),
		zap.Any("top_keys", topN(byKey, r.top)),
		zap.Any("top_services", topN(bySvc, r.top)))
}

func topN(m map[string]int64, n int) []ranked {
	out := make([]ranked, 0, len(m))
	for k, v := range m {
		out = append(out, ranked{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
