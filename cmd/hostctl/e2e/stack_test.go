package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// run runs a command in dir with env and returns its combined output.
func run(dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandConfig writes a copy of the config at src with ${NAME} replaced for
// the names in vars (hostctl's own syntax; $$ and other variables are left
// for hostctl), for a hostctl that expands variables only in command and
// environment.
func expandConfig(t *testing.T, src, dst string, vars map[string]string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	out := varRef.ReplaceAllFunc(b, func(m []byte) []byte {
		name := string(varRef.FindSubmatch(m)[1])
		if v, ok := vars[name]; ok {
			return []byte(v)
		}
		return m
	})
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// entry is one line of hostctl's JSON log.
type entry struct {
	Level   string    `json:"level"`
	TS      time.Time `json:"ts"`
	Msg     string    `json:"msg"`
	Program string    `json:"program"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	PID     int       `json:"pid"`
	raw     string
}

// daemon is a `hostctl run` of startConfigDaemon, with its JSON log read
// from stderr.
type daemon struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	cond *sync.Cond
	log  []entry // guarded by mu
	text bytes.Buffer
	done chan struct{}
}

// startConfigDaemon starts `hostctl run` on config (the caller's own, not
// startDaemon's), in root, with env, and reads its JSON log; it does not
// wait for READY=1 (the caller waits for the log lines it needs). wrap, if
// given, is a command line that runs hostctl's (a sandbox): it must exec
// hostctl in the same process, so that signals reach it.
func startConfigDaemon(t *testing.T, bin, root, config string, env []string, wrap ...string) *daemon {
	t.Helper()
	d := &daemon{done: make(chan struct{})}
	d.cond = sync.NewCond(&d.mu)
	argv := append(slices.Clip(wrap), bin, "run", "-c", config, "--log-format", "json")
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Dir, d.cmd.Env = root, env
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var e entry
			if json.Unmarshal([]byte(line), &e) != nil {
				e = entry{Msg: line}
			}
			e.raw = line
			d.mu.Lock()
			d.log = append(d.log, e)
			d.text.WriteString(line + "\n")
			d.cond.Broadcast()
			d.mu.Unlock()
		}
		io.Copy(io.Discard, stderr)
		d.cmd.Wait()
		close(d.done)
		d.mu.Lock()
		d.cond.Broadcast()
		d.mu.Unlock()
	}()
	return d
}

// mark is a position in the log: waits "since" a mark see only later lines.
func (d *daemon) mark() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.log)
}

func (d *daemon) logText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.text.String()
}

// wait returns the first entry at or after index since that matches, waiting
// up to timeout for it.
func (d *daemon) wait(since int, timeout time.Duration, what string, match func(entry) bool) (entry, error) {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() { d.mu.Lock(); d.cond.Broadcast(); d.mu.Unlock() })
	defer timer.Stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		for ; since < len(d.log); since++ {
			if match(d.log[since]) {
				return d.log[since], nil
			}
		}
		select {
		case <-d.done:
			return entry{}, fmt.Errorf("hostctl exited (%v) before logging %s", d.cmd.ProcessState, what)
		default:
		}
		if time.Now().After(deadline) {
			return entry{}, fmt.Errorf("no log line for %s within %s", what, timeout)
		}
		d.cond.Wait()
	}
}

// waitState waits for program's state change to state, logged at or after since.
func (d *daemon) waitState(since int, timeout time.Duration, program, state string) (entry, error) {
	return d.wait(since, timeout, program+" -> "+state, func(e entry) bool {
		return e.Msg == "state" && e.Program == program && e.To == state
	})
}

// lastSpawn is the pid of program's most recent spawn.
func (d *daemon) lastSpawn(program string) (entry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := len(d.log) - 1; i >= 0; i-- {
		if e := d.log[i]; e.Msg == "spawned" && e.Program == program {
			return e, true
		}
	}
	return entry{}, false
}

// stop sends SIGTERM and waits up to timeout for hostctl to exit.
func (d *daemon) stop(timeout time.Duration) error {
	select {
	case <-d.done:
		return nil
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("hostctl still running %s after SIGTERM", timeout)
	}
}

// proc is a process identified by pid and start time (against pid reuse).
type proc struct {
	pid   int
	start string // field 22 of /proc/PID/stat
	cmd   string
}

func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return nil
	}
	return strings.Fields(string(b[i+2:])) // [0] is state (field 3)
}

// alive reports whether p still runs (not a zombie, same start time).
func (p proc) alive() bool {
	f := statFields(p.pid)
	return len(f) > 19 && f[0] != "Z" && f[19] == p.start
}

// descendants returns every live process below pid.
func descendants(pid int) []proc {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(p); len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	var out []proc
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			f := statFields(c)
			if len(f) > 19 && f[0] != "Z" {
				cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(c) + "/cmdline")
				out = append(out, proc{pid: c, start: f[19], cmd: strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))})
			}
			walk(c)
		}
	}
	walk(pid)
	return out
}

func childrenOf(pid int) []int {
	var out []int
	for _, p := range descendants(pid) {
		if f := statFields(p.pid); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p.pid)
		}
	}
	return out
}

// eventually calls check until it returns nil or timeout passes; there is
// no event for "the site answers again", so this polls, 50 ms apart.
func eventually(timeout time.Duration, check func() error) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		err := check()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("still failing after %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// site is the example site through hostctl's proxy.
type site struct {
	base   string
	client *http.Client
}

func (s *site) get(path string) (int, string, error) {
	resp, err := s.client.Get(s.base + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// hello checks GET / says "Hello World!".
func (s *site) hello() error {
	code, body, err := s.get("/")
	if err != nil {
		return err
	}
	if code != 200 || !strings.Contains(body, "Hello World!") {
		return fmt.Errorf("GET /: %d %q", code, trim(body))
	}
	return nil
}

// cache checks the view that counts hits in memcached.
func (s *site) cache() error {
	code, body, err := s.get("/cache/")
	if err != nil {
		return err
	}
	if code != 200 || !strings.Contains(body, `"hits"`) {
		return fmt.Errorf("GET /cache/: %d %q", code, trim(body))
	}
	return nil
}

// task enqueues add(x, y) through the site and waits up to timeout for its
// result; it returns the first error of either step.
func (s *site) task(x, y int, timeout time.Duration) error {
	resp, err := s.client.Post(fmt.Sprintf("%s/tasks/add/?x=%d&y=%d", s.base, x, y), "text/plain", nil)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var enq struct{ ID string }
	if resp.StatusCode != 202 || json.Unmarshal(b, &enq) != nil || enq.ID == "" {
		return fmt.Errorf("enqueue: %d %q", resp.StatusCode, trim(string(b)))
	}
	var last string
	_, err = eventually(timeout, func() error {
		code, body, err := s.get("/tasks/" + enq.ID + "/")
		if err != nil {
			return err
		}
		last = body
		var r struct {
			State  string
			Result struct{ Sum int }
		}
		if code != 200 || json.Unmarshal([]byte(body), &r) != nil {
			return fmt.Errorf("result: %d %q", code, trim(body))
		}
		if r.State != "SUCCESS" {
			return fmt.Errorf("task %s is %s", enq.ID, r.State)
		}
		if r.Result.Sum != x+y {
			return fmt.Errorf("task %s: sum %d, want %d", enq.ID, r.Result.Sum, x+y)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w (last answer %q)", err, trim(last))
	}
	return nil
}

func trim(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// loadResult counts the outcome of a load run.
type loadResult struct {
	ok, failed int
	errs       map[string]int // failure kind -> count
	maxLatency time.Duration
}

func (r loadResult) String() string {
	return fmt.Sprintf("%d ok, %d failed %v, slowest %s", r.ok, r.failed, r.errs, r.maxLatency.Round(time.Millisecond))
}

// load sends GET / from conns connections for d; started is closed after the
// first 100 good answers, so the caller acts on a site under load.
func (s *site) load(d time.Duration, conns int, started chan<- struct{}) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var mu sync.Mutex
	res := loadResult{errs: map[string]int{}}
	var once sync.Once
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				t0 := time.Now()
				kind := ""
				resp, err := client.Get(s.base + "/")
				if err != nil {
					kind = "error: " + err.Error()
					if u := errors.Unwrap(err); u != nil {
						kind = "error: " + u.Error()
					}
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || !bytes.Contains(b, []byte("Hello World!")) {
						kind = "status " + strconv.Itoa(resp.StatusCode)
					}
				}
				lat := time.Since(t0)
				mu.Lock()
				if kind == "" {
					res.ok++
					if res.ok == 100 && started != nil {
						once.Do(func() { close(started) })
					}
				} else {
					res.failed++
					res.errs[kind]++
				}
				res.maxLatency = max(res.maxLatency, lat)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return res
}
