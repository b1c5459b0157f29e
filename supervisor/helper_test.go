package supervisor

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestMain lets the test binary act as a child program, like os/exec's
// tests: HOSTCTL_HELPER selects what it does.
func TestMain(m *testing.M) {
	if mode := os.Getenv("HOSTCTL_HELPER"); mode != "" {
		os.Exit(helperMain(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// hog keeps the "alloc" helper's memory reachable.
var hog []byte

func helperMain(mode string, args []string) int {
	switch mode {
	case "exit": // exit CODE
		n, _ := strconv.Atoi(args[0])
		return n
	case "sleep":
		select {}
	case "alloc": // alloc MB [ONCEFILE]: holds MB megabytes of touched memory; with ONCEFILE only if it did not exist
		if len(args) > 1 {
			if _, err := os.Stat(args[1]); err == nil {
				select {}
			}
			os.WriteFile(args[1], []byte("allocated"), 0o644)
		}
		n, _ := strconv.Atoi(args[0])
		hog = make([]byte, n<<20)
		for i := 0; i < len(hog); i += 4096 {
			hog[i] = 1
		}
		select {}
	case "ignore-term": // ignore-term [READYFILE]
		signal.Ignore(syscall.SIGTERM)
		if len(args) > 0 {
			os.WriteFile(args[0], []byte("ready"), 0o644)
		}
		select {}
	case "graceful": // graceful READYFILE: exits 0 on SIGTERM, like a server that finishes its work first
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		os.WriteFile(args[0], []byte("ready"), 0o644)
		<-term
		return 0
	case "child-sigign": // started with SIGHUP and SIGINT ignored
		return childSigIgn()
	case "listen": // listen ADDR DELAY
		d, _ := time.ParseDuration(args[1])
		time.Sleep(d)
		ln, err := net.Listen("tcp", args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				return 1
			}
			c.Close()
		}
	case "healthz": // healthz ADDR SICKFILE: /healthz answers 500 while SICKFILE exists, else 200
		// It ignores SIGTERM, so that STOPPING lasts stop_timeout and a
		// test can see it. An ADDR that starts with / is a unix socket.
		signal.Ignore(syscall.SIGTERM)
		network := "tcp"
		if strings.HasPrefix(args[0], "/") {
			network = "unix"
			os.Remove(args[0]) // left by a predecessor that was killed
		}
		ln, err := net.Listen(network, args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := os.Stat(args[1]); err == nil {
				http.Error(w, "sick", http.StatusInternalServerError)
			}
		}))
		return 1
	case "require-tcp": // require-tcp ADDR RESULTFILE: records whether ADDR accepted at once
		res := "OK"
		if c, err := net.Dial("tcp", args[0]); err != nil {
			res = "FAIL " + err.Error()
		} else {
			c.Close()
		}
		os.WriteFile(args[1], []byte(res), 0o644)
		select {}
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// helper returns a program config that runs the test binary in mode.
func helper(t testing.TB, name, mode string, args ...string) *ProgramConfig {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultProgramConfig(name)
	p.Command = append(Command{exe}, args...)
	p.Environment = map[string]string{"HOSTCTL_HELPER": mode}
	p.StartSecs = 0
	p.StopTimeout = 2 * time.Second
	p.Backoff = BackoffConfig{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	return &p
}

func shProg(name, script string) *ProgramConfig {
	p := DefaultProgramConfig(name)
	p.Command = Command{"/bin/sh", "-c", script}
	p.StartSecs = 0
	p.StopTimeout = 2 * time.Second
	p.Backoff = BackoffConfig{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	return &p
}

// newSup starts a supervisor on progs and shuts it down at the end of the
// test. It returns the supervisor and an observer of its log.
func newSup(t *testing.T, progs ...*ProgramConfig) (*Supervisor, *observer.ObservedLogs) {
	t.Helper()
	return newSupWith(t, Options{}, progs...)
}

// newSupWith is newSup with opts (its Logger and StateDir are the test's).
func newSupWith(t *testing.T, opts Options, progs ...*ProgramConfig) (*Supervisor, *observer.ObservedLogs) {
	t.Helper()
	for _, p := range progs {
		if errs := p.Validate("program." + p.Name); len(errs) > 0 {
			t.Fatalf("invalid test config: %v", errs)
		}
	}
	core, logs := observer.New(zap.DebugLevel)
	opts.Logger, opts.StateDir = zap.New(core), t.TempDir()
	s, err := New(progs, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s, logs
}

func waitState(t *testing.T, s *Supervisor, name string, want State, timeout time.Duration) Status {
	t.Helper()
	return waitCond(t, s, name, timeout, "state "+want.String(), func(st Status) bool { return st.State == want })
}

func waitCond(t *testing.T, s *Supervisor, name string, timeout time.Duration, what string, cond func(Status) bool) Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := s.WaitFor(ctx, name, cond)
	if err != nil {
		t.Fatalf("%s: waiting for %s: %v (last: %s pid=%d info=%q err=%q exit=%v)", name, what, err, st.State, st.PID, st.Info, st.SpawnErr, st.LastExit)
	}
	return st
}

// waitGone waits until no process is left in process group pgid.
func waitGone(t *testing.T, pgid int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for pgroupAlive(pgid) {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still has processes after %s", pgid, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func nopLogger() *zap.Logger { return zap.NewNop() }

// startDetached starts a process in its own process group (as a program
// would be) and reaps it at the end of the test.
func startDetached(t *testing.T, name string, args ...string) int {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	go cmd.Wait()
	return cmd.Process.Pid
}

// waitFile waits until path exists and is not empty, and returns it.
func waitFile(t *testing.T, path string, timeout time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still empty after %s", path, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// childSigIgn runs, through the spawner, a shell that prints the SigIgn
// line of its /proc status, and then sends SIGHUP to itself: the caller
// started it with SIGHUP and SIGINT ignored, and it must keep ignoring them.
func childSigIgn() int {
	if !signal.Ignored(syscall.SIGHUP) || !signal.Ignored(syscall.SIGINT) {
		fmt.Fprintln(os.Stderr, "helper: SIGHUP and SIGINT are not ignored; start it through trap '' HUP INT")
		return 2
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	exited := make(chan exitInfo, 1)
	argv := []string{"/bin/sh", "-c", "grep ^SigIgn: /proc/$$/status"}
	attr := &syscall.ProcAttr{Files: []uintptr{0, w.Fd(), 2}, Sys: &syscall.SysProcAttr{Setpgid: true}}
	if _, err := theSpawner().start(argv[0], argv, attr, func(ei exitInfo) { exited <- ei }); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w.Close()
	out, _ := io.ReadAll(r)
	<-exited
	os.Stdout.Write(out)
	// Still ignored by this process: it survives the signal.
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	fmt.Println("survived")
	return 0
}
