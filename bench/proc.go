package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clkTck is USER_HZ, the unit of utime and stime in /proc/<pid>/stat; 100
// on every Linux architecture Go supports.
const clkTck = 100

// procSample is one reading of a process's CPU time and RSS.
type procSample struct {
	At  time.Duration // since the sampler started
	CPU float64       // user + system seconds, since the process started
	RSS int64         // bytes
}

func readProc(pid int) (cpu float64, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name (which may hold spaces), from field 3.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	return (utime + stime) / clkTck, pages * int64(os.Getpagesize()), nil
}

// systemCPU returns the busy and total CPU seconds of the machine from
// /proc/stat, all cores.
func systemCPU() (busy, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line := strings.SplitN(string(b), "\n", 2)[0]
	f := strings.Fields(line)[1:]
	for i, s := range f {
		v, _ := strconv.ParseFloat(s, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy / clkTck, total / clkTck
}

// selfCPU is this harness's own CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// collector is a running bin/otelcol-fabric.
type collector struct {
	cmd     *exec.Cmd
	out     *bytes.Buffer
	outMu   sync.Mutex
	done    chan struct{}
	exitErr error

	mu      sync.Mutex
	samples []procSample
	stopS   chan struct{}
	t0      time.Time
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// startCollectorRetry is startCollector, tried again (up to 5 times, 2 s
// apart) when the collector could not bind one of its ports: the ports
// 41000-41999 this harness must use lie inside Linux's ephemeral range
// (32768-60999), so an outgoing connection of any process on the machine
// can hold one of them for a while.
func startCollectorRetry(logf func(string, ...any), bin, dir string, args, env []string, health string, interval time.Duration) (*collector, error) {
	for attempt := 1; ; attempt++ {
		c, err := startCollector(bin, dir, args, env, health, interval)
		if err == nil || attempt == 5 || !strings.Contains(err.Error(), "address already in use") {
			return c, err
		}
		logf("collector could not bind a port (attempt %d): %s; starting again in 2 s", attempt, firstLine(tailLine(err.Error())))
		time.Sleep(2 * time.Second)
	}
}

func tailLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "address already in use") {
			return l
		}
	}
	return s
}

// startCollector runs bin with args and env, waits for health_check on
// health, and samples its CPU and RSS every interval.
func startCollector(bin, dir string, args, env []string, health string, interval time.Duration) (*collector, error) {
	c := &collector{out: &bytes.Buffer{}, done: make(chan struct{}), stopS: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Dir = dir
	// The Go runtime's settings come from the config under test only
	// (benchConfig.Env, the overload's GOMEMLIMIT), never from the
	// harness's own environment.
	var inherited []string
	for _, e := range os.Environ() {
		if k, _, _ := strings.Cut(e, "="); k != "GOGC" && k != "GOMEMLIMIT" && k != "GODEBUG" && k != "GOMAXPROCS" {
			inherited = append(inherited, e)
		}
	}
	c.cmd.Env = append(inherited, env...)
	w := lockedWriter{&c.outMu, c.out}
	c.cmd.Stdout, c.cmd.Stderr = w, w
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { c.exitErr = c.cmd.Wait(); close(c.done) }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-c.done:
			return nil, fmt.Errorf("collector exited before becoming healthy: %w\n%s", c.exitErr, c.output())
		default:
		}
		if resp, err := client.Get("http://" + health + "/"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			c.kill()
			return nil, fmt.Errorf("collector not healthy on %s after 60s\n%s", health, c.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t0 = time.Now()
	go c.sample(interval)
	return c, nil
}

func (c *collector) pid() int { return c.cmd.Process.Pid }

func (c *collector) sample(interval time.Duration) {
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		if cpu, rss, err := readProc(c.pid()); err == nil {
			c.mu.Lock()
			c.samples = append(c.samples, procSample{At: time.Since(c.t0), CPU: cpu, RSS: rss})
			c.mu.Unlock()
		}
		select {
		case <-tk.C:
		case <-c.stopS:
			return
		case <-c.done:
			return
		}
	}
}

// now reads CPU and RSS at once (outside the sampling tick).
func (c *collector) now() procSample {
	cpu, rss, _ := readProc(c.pid())
	return procSample{At: time.Since(c.t0), CPU: cpu, RSS: rss}
}

// series returns the samples taken between from and to.
func (c *collector) series(from, to time.Duration) []procSample {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []procSample
	for _, s := range c.samples {
		if s.At >= from && s.At <= to {
			out = append(out, s)
		}
	}
	return out
}

func (c *collector) output() string {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	return c.out.String()
}

func (c *collector) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits (SIGKILL after 30 s).
func (c *collector) stop() {
	close(c.stopS)
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.kill()
	}
}

func (c *collector) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// otherLoad lists the processes outside this harness and its collector that
// used CPU between two snapshots, largest first: what else ran.
type procCPU struct {
	Pid  int
	Comm string
	CPU  float64
}

func snapshotProcs() map[int]procCPU {
	out := map[int]procCPU{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(string(b[j+2:]))
		if len(f) < 15 {
			continue
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		cu, _ := strconv.ParseFloat(f[13], 64) // children waited for
		cs, _ := strconv.ParseFloat(f[14], 64)
		out[pid] = procCPU{Pid: pid, Comm: string(b[i+1 : j]), CPU: (u + s + cu + cs) / clkTck}
	}
	return out
}
