// Package tests runs the built distribution (bin/otelcol-fabric) the way a user
// does: validate and components subcommands, and a collector process that is
// sent real OTLP data and stopped with SIGTERM. `make test` builds the binary
// first and passes its path in FABRIC_BIN.
package tests

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testingT is what the helpers that read the collector's outputs need: a
// *testing.T, or the *assert.CollectT of an EventuallyWithT condition, which
// runs on a goroutine of its own where require must not fail the test.
type testingT interface {
	require.TestingT
	Helper()
}

// repoRoot is the repository root: `go test` runs a package's tests in the
// package's directory, tests/. (runtime.Caller would not do: the Makefile
// builds with -trimpath.)
func repoRoot(t testing.TB) string {
	wd, err := os.Getwd()
	require.NoError(t, err)
	return filepath.Dir(wd)
}

// fabricBin returns the binary under test. Outside `make test` (FABRIC_BIN
// unset) the tests that need it are skipped; when FABRIC_BIN is set it must
// exist, so `make test` can never pass without running them.
func fabricBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("FABRIC_BIN")
	if bin == "" {
		t.Skip("FABRIC_BIN is not set: run `make test` to build bin/otelcol-fabric and run the tests against it")
	}
	_, err := os.Stat(bin)
	require.NoError(t, err, "FABRIC_BIN=%s", bin)
	return bin
}

// runBin runs a short subcommand of the binary to completion.
func runBin(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(fabricBin(t), args...)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runBinEnv is runBin with extra environment variables.
func runBinEnv(t testing.TB, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(fabricBin(t), args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l := listenLoopback(t)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Test ports. freePort hands out a port that the collector binds a moment
// later, after the test closed its own listener; a port the kernel picked
// for a listen on :0 is in the ephemeral range, where every outgoing
// connection on the machine (the tests' HTTP clients, the collector's
// exporters, the other test binaries `go test ./...` runs beside this one)
// also takes its local port, and in CI one did in that moment ("bind:
// address already in use"). So the tests' ports come from a range the kernel
// never hands out by itself: FABRIC_TEST_PORTS (e.g. 40000-40999) when set,
// otherwise the 10,000 ports below net.ipv4.ip_local_port_range. One mutex
// walks the range from a random start, so one test binary never hands out a
// port twice until it wraps around.
var (
	testPortsOnce          sync.Once
	testPortLo, testPortHi int
	testPortNext           int
	testPortMu             sync.Mutex
)

// testPortRange is FABRIC_TEST_PORTS, or the ports below the kernel's
// ephemeral range; 0, 0 when neither is usable (then the kernel picks).
func testPortRange() (lo, hi int) {
	if v := os.Getenv("FABRIC_TEST_PORTS"); v != "" {
		l, h, ok := strings.Cut(v, "-")
		lo, err1 := strconv.Atoi(l)
		hi, err2 := strconv.Atoi(h)
		if !ok || err1 != nil || err2 != nil || lo <= 0 || hi < lo || hi > 65535 {
			panic(fmt.Sprintf("FABRIC_TEST_PORTS=%q: want LOW-HIGH, e.g. 40000-40999", v))
		}
		return lo, hi
	}
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	ephemeralLo, err := strconv.Atoi(f[0])
	if err != nil || ephemeralLo-1 < 1024+1000 {
		return 0, 0
	}
	return max(1024, ephemeralLo-10000), ephemeralLo - 1
}

// listenLoopback listens on a free loopback port in the tests' range.
func listenLoopback(t testing.TB) net.Listener {
	t.Helper()
	testPortsOnce.Do(func() {
		testPortLo, testPortHi = testPortRange()
		if testPortHi > 0 {
			testPortNext = testPortLo + int((time.Now().UnixNano()+int64(os.Getpid())*7919)%int64(testPortHi-testPortLo+1))
		}
	})
	if testPortHi == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		return l
	}
	testPortMu.Lock()
	defer testPortMu.Unlock()
	for range testPortHi - testPortLo + 1 {
		p := testPortNext
		testPortNext++
		if testPortNext > testPortHi {
			testPortNext = testPortLo
		}
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			return l
		}
	}
	t.Fatalf("no free loopback port in %d-%d", testPortLo, testPortHi)
	return nil
}

// collector is a running otelcol-fabric process on free loopback ports.
type collector struct {
	t          testing.TB
	cmd        *exec.Cmd
	output     *syncBuffer
	done       chan struct{}
	exitErr    error
	GRPC       string // OTLP/gRPC host:port
	HTTP       string // OTLP/HTTP host:port
	Health     string // health_check host:port
	Metrics    string // the collector's own Prometheus metrics host:port
	Pyroscope  string // the pyroscope receiver's host:port (local config)
	Gobench    string // the gobench receiver's host:port
	DataDir    string // where the file exporters write
	Cgroup     string // the memory cgroup it runs in (FABRIC_TEST_CGROUP_MEMORY), or ""
	terminated bool
}

// startCollector starts the binary with args (nil: the embedded default
// configuration) and the FABRIC_* environment pointing every listener at a
// free port and the data directory at a temporary one; it returns once
// health_check reports the collector ready.
func startCollector(t testing.TB, args ...string) *collector {
	t.Helper()
	return startCollectorEnv(t, nil, args...)
}

// startCollectorEnv is startCollector with extra environment variables.
// A collector that exits at start because one of its ports was taken in the
// moment between freePort and its bind is started again on fresh ports (the
// ports in env are the test's own and stay as they are).
func startCollectorEnv(t testing.TB, env []string, args ...string) *collector {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c := launchCollector(t, env, args...)
		err := c.awaitHealthy()
		if err == nil {
			return c
		}
		if errors.Is(err, errExitedAtStart) && attempt < 3 && strings.Contains(c.output.String(), "bind: address already in use") {
			t.Logf("attempt %d: a port was taken before the collector bound it; starting it again on other ports", attempt)
			continue
		}
		t.Fatalf("%v\n%s", err, c.output.String())
	}
}

var errExitedAtStart = errors.New("collector exited before becoming healthy")

func launchCollector(t testing.TB, env []string, args ...string) *collector {
	t.Helper()
	c := &collector{
		t:         t,
		output:    &syncBuffer{},
		done:      make(chan struct{}),
		GRPC:      fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		HTTP:      fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		Health:    fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		Metrics:   fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		Pyroscope: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		Gobench:   fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		DataDir:   t.TempDir(),
	}
	_, metricsPort, _ := net.SplitHostPort(c.Metrics)
	c.cmd = exec.Command(fabricBin(t), args...)
	if limit := envValue(env, "FABRIC_TEST_CGROUP_MEMORY"); limit != "" {
		// The process starts inside a memory cgroup with this limit, as in a
		// pod: memory_limiter reads it, and the kernel OOM-kills past it.
		c.Cgroup = memoryCgroup(t, limit)
		c.cmd = exec.Command("sh", append([]string{"-c", `echo $$ > "$FABRIC_TEST_CGROUP_DIR/cgroup.procs" && exec "$0" "$@"`, fabricBin(t)}, args...)...)
		env = append(env, "FABRIC_TEST_CGROUP_DIR="+c.Cgroup)
	}
	c.cmd.Dir = repoRoot(t)
	c.cmd.Env = append(os.Environ(),
		"FABRIC_OTLP_GRPC_ENDPOINT="+c.GRPC,
		"FABRIC_OTLP_HTTP_ENDPOINT="+c.HTTP,
		"FABRIC_HEALTH_ENDPOINT="+c.Health,
		"FABRIC_METRICS_HOST=127.0.0.1",
		"FABRIC_METRICS_PORT="+metricsPort,
		"FABRIC_DATA_DIR="+c.DataDir,
		"FABRIC_PYROSCOPE_ENDPOINT="+c.Pyroscope,
		"FABRIC_GOBENCH_ENDPOINT="+c.Gobench,
		"FABRIC_BENCHSTAT_DIR="+filepath.Join(c.DataDir, "benchstat"),
	)
	c.cmd.Env = append(c.cmd.Env, env...)
	c.cmd.Stdout = c.output
	c.cmd.Stderr = c.output
	require.NoError(t, c.cmd.Start())
	go func() {
		c.exitErr = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		if !c.terminated {
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("collector output:\n%s", c.output.String())
		}
	})
	return c
}

// awaitHealthy waits up to 60 s for health_check to report the collector
// ready; the error wraps errExitedAtStart when the process exited first.
func (c *collector) awaitHealthy() error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			return fmt.Errorf("%w: %v", errExitedAtStart, c.exitErr)
		default:
		}
		resp, err := client.Get("http://" + c.Health + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("collector not healthy on %s after 60s", c.Health)
}

// terminate sends SIGTERM and returns the exit code.
func (c *collector) terminate() int {
	c.t.Helper()
	c.terminated = true
	require.NoError(c.t, c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-c.done:
	case <-time.After(60 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		c.t.Fatalf("collector did not stop within 60s of SIGTERM\n%s", c.output.String())
	}
	if c.exitErr == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(c.exitErr, &ee) {
		return ee.ExitCode()
	}
	c.t.Fatalf("waiting for collector: %v", c.exitErr)
	return -1
}

// restart stops the process with sig (SIGTERM: graceful, SIGKILL: a crash)
// and starts it again with the same arguments and environment: the same
// ports and queue directory. It may run while other goroutines send data, so
// it returns an error instead of failing the test.
func (c *collector) restart(sig syscall.Signal) error {
	if err := c.cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-c.done:
	case <-time.After(60 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("collector did not stop within 60s of %s", sig)
	}
	fmt.Fprintf(c.output, "\n>>> restarted after %s\n", sig)
	cmd := exec.Command(c.cmd.Path, c.cmd.Args[1:]...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = c.cmd.Dir, c.cmd.Env, c.output, c.output
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	c.cmd, c.done = cmd, done
	go func() {
		c.exitErr = cmd.Wait()
		close(done)
	}()
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := client.Get("http://" + c.Health + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("collector not healthy 60s after the restart")
}

// syncBuffer collects a process's output from two pipes at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// memoryCgroup creates a cgroup (v1 memory controller) limited to `limit`
// bytes, removed when the test ends; the test is skipped where cgroups
// cannot be created.
func memoryCgroup(t testing.TB, limit string) string {
	t.Helper()
	dir := filepath.Join("/sys/fs/cgroup/memory", fmt.Sprintf("fabric-test-%d", time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("no memory cgroup here (%v): this test needs a writable cgroup v1 memory controller", err)
	}
	t.Cleanup(func() {
		for range 50 { // the process may still be leaving
			if os.Remove(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(limit), 0o644))
	_ = os.WriteFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), []byte(limit), 0o644) // no swap either, where accounted
	return dir
}

// cgroupPeak is the cgroup's peak memory use and how often it hit its limit.
func cgroupPeak(t testing.TB, dir string) (peak int64, failcnt int64) {
	t.Helper()
	read := func(name string) int64 {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		require.NoError(t, err)
		return v
	}
	return read("memory.max_usage_in_bytes"), read("memory.failcnt")
}
