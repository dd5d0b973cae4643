package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// overloadPoint is the gateway chain offered a multiple of its maximum
// sustainable rate, in a memory cgroup of the gateway pod's size with the
// deployment's GOMEMLIMIT: memory_limiter reads the cgroup's limit, as in a
// pod, so whether RSS stays bounded, and what the senders see instead of
// loss, is measured, not assumed.
type overloadPoint struct {
	Run          runResult
	Factor       float64 // offered / maximum sustainable
	Sustainable  float64 // the maximum sustainable rate it is a multiple of
	Limit        int64   // the cgroup's memory limit, bytes
	GoMemLimit   string
	CgroupMax    int64 // memory.max_usage_in_bytes at the end
	CgroupFails  int64 // memory.failcnt: charges that hit the limit (page cache reclaim included)
	OOMKills     int64 // memory.oom_control oom_kill
	Streams      int
	RequestLimit time.Duration
}

// overload runs cfg at rate for d inside a fresh cgroup v1 memory controller
// limited to limit bytes (the gateway pod's 2 GiB), GOMEMLIMIT at 80% of it
// as deploy/kubernetes sets it.
func (h *harness) overload(ctx context.Context, cfg benchConfig, rate, sustainableRate float64, d time.Duration, limit int64) (overloadPoint, error) {
	op := overloadPoint{Limit: limit, Sustainable: sustainableRate, Factor: rate / sustainableRate, Streams: 4 * h.streams, RequestLimit: 10 * time.Second}
	dir, cleanup, err := newMemCgroup(limit)
	if err != nil {
		return op, fmt.Errorf("%w: the overload run needs it", err)
	}
	defer cleanup()
	op.GoMemLimit = fmt.Sprintf("%dMiB", limit*8/10>>20)
	h.cgroup, h.extraEnv, h.drainExtra = dir, []string{"GOMEMLIMIT=" + op.GoMemLimit}, 90*time.Second
	defer func() { h.cgroup, h.extraEnv, h.drainExtra = "", nil, 0 }()
	h.logf("overload: %s at %.0f spans/s (%.1fx its maximum sustainable %.0f) for %v, in a %d MiB memory cgroup, GOMEMLIMIT=%s, %d streams",
		cfg.Name, rate, op.Factor, sustainableRate, d, limit>>20, op.GoMemLimit, op.Streams)
	r, err := h.runOnce(ctx, cfg, loadSpec{Rate: rate, Duration: d, Streams: op.Streams, Timeout: op.RequestLimit}, 1, nil)
	op.Run = r
	op.CgroupMax = readInt(filepath.Join(dir, "memory.max_usage_in_bytes"))
	op.CgroupFails = readInt(filepath.Join(dir, "memory.failcnt"))
	if b, err := os.ReadFile(filepath.Join(dir, "memory.oom_control")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "oom_kill "); ok {
				op.OOMKills, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
	}
	h.logf("  acked %d, delivered %d, lost %d, dup %d, refused requests %d %v; RSS max %.0f MiB, cgroup max %.0f MiB, failcnt %d, oom kills %d",
		r.V.SpansAcked, r.V.Delivered, r.V.Lost, r.V.Duplicates, r.Load.Failed, r.Load.Errors, float64(r.RSSMax)/(1<<20), float64(op.CgroupMax)/(1<<20), op.CgroupFails, op.OOMKills)
	return op, err
}

// newMemCgroup makes a cgroup v1 memory controller limited to limit bytes
// without swap above it, as a pod's; cleanup removes it once its processes
// have left.
func newMemCgroup(limit int64) (dir string, cleanup func(), err error) {
	dir = filepath.Join("/sys/fs/cgroup/memory", fmt.Sprintf("fabric-bench-%d", time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("no memory cgroup here (%w): a writable cgroup v1 memory controller is needed", err)
	}
	cleanup = func() {
		for range 50 { // the process may still be leaving
			if os.Remove(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		cleanup()
		return "", nil, err
	}
	// No swap above the limit, as in a pod (absent without swap accounting).
	_ = os.WriteFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0o644)
	return dir, cleanup, nil
}

func readInt(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v
}
