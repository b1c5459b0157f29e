package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testbin"
)

// TestDjangoWebserver is issue 6's end-to-end test: the seed's webserver
// (configs/webserver.toml) under the real hostctl, started once (rabbitmq
// takes about 30 s), then checked, broken and healed step by step. Each
// step has its own deadline; times worth knowing are printed with t.Logf
// (go test -v).
func TestDjangoWebserver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts rabbitmq, memcached, gunicorn and celery: not with -short")
	}
	root := moduleRoot(t)
	if out, err := run(root, os.Environ(), "scripts/e2e-deps.sh"); err != nil {
		t.Fatalf("scripts/e2e-deps.sh: %v\n%s", err, out)
	}

	// A short temp dir: unix socket paths are limited to 108 bytes.
	tmp, err := os.MkdirTemp("", "hostctl-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept %s for a look", tmp)
			return
		}
		os.RemoveAll(tmp)
	})
	// The proxy reads static files as www-data (proxy.file_user), as
	// nginx's workers would: the static root must be reachable, as
	// /srv or /var/www are, not under a 0700 dir.
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	// Built with -race when the test runs with it: a data race in the
	// daemon fails the test (checked when it has exited, below).
	bin, err := testbin.Hostctl()
	if err != nil {
		t.Fatal(err)
	}

	ports := freePorts(t, 5)
	runDir := filepath.Join(tmp, "run")
	vars := map[string]string{
		"WEBSERVER_DIR":            runDir,
		"WEBSERVER_HTTP_PORT":      strconv.Itoa(ports[0]),
		"WEBSERVER_MEMCACHED_PORT": strconv.Itoa(ports[1]),
		"WEBSERVER_AMQP_PORT":      strconv.Itoa(ports[2]),
		"WEBSERVER_DIST_PORT":      strconv.Itoa(ports[3]),
		"WEBSERVER_EPMD_PORT":      strconv.Itoa(ports[4]),
	}
	env := os.Environ()
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	env = testbin.Env(env) // a race-built hostctl stops at its first data race
	staticRoot := filepath.Join(runDir, "static")
	if out, err := run(root, append(env, "HELLO_STATIC_ROOT="+staticRoot),
		"/usr/bin/python3", "configs/django/manage.py", "collectstatic", "--noinput"); err != nil {
		t.Fatalf("collectstatic: %v\n%s", err, out)
	}

	// The config as committed, with its ${VAR}s expanded by hostctl. If this
	// hostctl expands them only in command and environment, say so, and run
	// the rest on a copy the test expanded, so that every other step still
	// tells something.
	config := "configs/webserver.toml"
	t.Run("config expands variables", func(t *testing.T) {
		out, err := run(root, env, bin, "check", "-c", config)
		if err != nil {
			t.Errorf("hostctl check -c %s (WEBSERVER_* set): %v\n%s", config, err, out)
			config = filepath.Join(tmp, "webserver.toml")
			expandConfig(t, filepath.Join(root, "configs/webserver.toml"), config, vars)
			t.Logf("going on with %s, expanded by the test", config)
			if out, err := run(root, env, bin, "check", "-c", config); err != nil {
				t.Fatalf("hostctl check -c %s: %v\n%s", config, err, out)
			}
		}
	})

	// The on-call loop: the same config with an [alerts] block whose sinks
	// are real receivers here (PagerDuty Events v2, SMTP), short timings,
	// and a program that outgrows its memory_limit on request.
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	routingKey := "R0UT1NGKEY0123456789abcdefghijkl"
	keyFile := filepath.Join(tmp, "pagerduty.key")
	os.WriteFile(keyFile, []byte(routingKey+"\n"), 0o600)
	pd := startPagerDuty(t, routingKey, host)
	mailbox := startSMTP(t, freePorts(t, 1)[0])
	// Django's secret key from a file, as in production: removing it is
	// the broken setting of step 7a.
	secretKey := filepath.Join(tmp, "secret_key")
	os.WriteFile(secretKey, []byte("e2e-not-secret\n"), 0o600)
	memhogReady := filepath.Join(tmp, "memhog.ready")
	src := config
	if !filepath.IsAbs(src) {
		src = filepath.Join(root, src)
	}
	onCallConfig(t, src, filepath.Join(tmp, "webserver-oncall.toml"), map[string]string{
		// The default 5m would outlast the test.
		"[program.gunicorn]":             `fatal_retry = "15s"`,
		"[program.gunicorn.environment]": "HELLO_SECRET_KEY_FILE = " + strconv.Quote(secretKey),
	}, fmt.Sprintf(`
[alerts]
settle = "2s"
check_interval = "1s"

[[alerts.sink]]
name = "oncall"
type = "pagerduty"
url = %q
routing_key_file = %q

[[alerts.sink]]
name = "mail"
type = "email"
host = "127.0.0.1"
port = %d
starttls = false
from = "hostctl@example.com"
to = ["oncall@example.com"]
conditions = ["fatal", "health_restart", "memory_limit"]

# Test only: on SIGUSR1 it grows by 4 MB every 100 ms up to 128 MB, far
# past its memory_limit; a restarted one waits for the signal again.
[program.memhog]
command = ["/usr/bin/python3", "-c", "import signal, sys, time; signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1}); open(sys.argv[1], 'w').close(); signal.sigwait({signal.SIGUSR1}); hog = [(b'x' * (4 << 20), time.sleep(0.1)) for _ in range(32)]; time.sleep(1e9)", %q]
ready = { exec = ["/usr/bin/test", "-f", %q], interval = "100ms", deadline = "20s" }
start_secs = "0s"
stop_timeout = "5s"
memory_limit = "48MB"
`, pd.url, keyFile, mailbox.port, memhogReady, memhogReady))
	config = filepath.Join(tmp, "webserver-oncall.toml")
	if out, err := run(root, env, bin, "check", "-c", config); err != nil {
		t.Fatalf("hostctl check -c %s (the on-call copy): %v\n%s", config, err, out)
	}

	s := &site{
		base:   "http://127.0.0.1:" + vars["WEBSERVER_HTTP_PORT"],
		client: &http.Client{Timeout: 20 * time.Second},
	}
	d := startConfigDaemon(t, bin, root, config, env)
	// When the site first answers, for the log: the proxy could serve as
	// soon as gunicorn is RUNNING, long before rabbitmq is.
	firstHello := make(chan time.Time, 1)
	go func() {
		for end := time.Now().Add(3 * time.Minute); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if s.hello() == nil {
				firstHello <- time.Now()
				return
			}
		}
	}()
	var stack []proc // every process of the stack, for the cleanup
	t.Cleanup(func() {
		if err := d.stop(90 * time.Second); err != nil {
			t.Error(err)
			d.cmd.Process.Kill()
			<-d.done
		}
		testbin.CheckRace(t, "hostctl run", d.cmd.ProcessState, d.logText())
		for _, p := range stack {
			if p.alive() {
				t.Errorf("left running: pid %d %s", p.pid, p.cmd)
				syscall.Kill(p.pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			t.Logf("hostctl log:\n%s", d.logText())
			logs, _ := filepath.Glob(filepath.Join(runDir, "log", "*.log"))
			for _, l := range logs {
				if b, err := os.ReadFile(l); err == nil && len(b) > 0 {
					t.Logf("%s (last 3 kB):\n%s", l, b[max(0, len(b)-3000):])
				}
			}
		}
	})
	snapshot := func() {
		for _, p := range descendants(d.cmd.Process.Pid) {
			if !slices.ContainsFunc(stack, func(q proc) bool { return q == p }) {
				stack = append(stack, p)
			}
		}
	}
	cli := func(args ...string) (string, error) {
		out, err := run(root, env, bin, append(args[:1:1], append([]string{"-c", config}, args[1:]...)...)...)
		testbin.CheckRace(t, "hostctl "+args[0], nil, out)
		return out, err
	}

	ok := t.Run("1 all RUNNING in dependency order", func(t *testing.T) {
		running := map[string]entry{}
		for _, p := range []string{"epmd", "memcached", "rabbitmq", "gunicorn", "celery"} {
			e, err := d.waitState(0, 150*time.Second, p, "RUNNING")
			if err != nil {
				t.Fatal(err)
			}
			running[p] = e
		}
		t0, _ := d.wait(0, 0, "hostctl started", func(e entry) bool { return e.Msg == "hostctl started" })
		for _, p := range []string{"epmd", "memcached", "gunicorn", "rabbitmq", "celery"} {
			t.Logf("%-9s RUNNING %6s after hostctl started", p, running[p].TS.Sub(t0.TS).Round(time.Millisecond))
		}
		for _, dep := range [][2]string{{"epmd", "rabbitmq"}, {"rabbitmq", "celery"}, {"memcached", "celery"}, {"memcached", "gunicorn"}} {
			first, err := d.wait(0, 0, dep[1]+" spawned", func(e entry) bool { return e.Msg == "spawned" && e.Program == dep[1] })
			if err != nil {
				t.Fatal(err)
			}
			if !first.TS.After(running[dep[0]].TS) {
				t.Errorf("%s spawned at %s, before %s was RUNNING (answering) at %s", dep[1], first.TS, dep[0], running[dep[0]].TS)
			}
		}
		snapshot()
	})
	if !ok {
		t.FailNow()
	}

	t.Run("status CLI", func(t *testing.T) {
		out, err := cli("status")
		if err != nil {
			t.Errorf("hostctl status (exit 0 expected with everything RUNNING): %v\n%s", err, out)
			return
		}
		t.Logf("hostctl status:\n%s", out)
	})

	ok = t.Run("2 site, static file, celery task", func(t *testing.T) {
		select {
		case at := <-firstHello:
			started, _ := d.wait(0, 0, "hostctl started", func(e entry) bool { return e.Msg == "hostctl started" })
			gunicorn, _ := d.waitState(0, 0, "gunicorn", "RUNNING")
			t.Logf("GET / first said Hello World! %s after hostctl started (gunicorn was RUNNING after %s)",
				at.Sub(started.TS).Round(time.Millisecond), gunicorn.TS.Sub(started.TS).Round(time.Millisecond))
		case <-time.After(30 * time.Second):
			t.Fatalf("GET / did not say Hello World! within 30 s of everything RUNNING: %v", s.hello())
		}
		want, err := os.ReadFile(filepath.Join(staticRoot, "hello", "site.css"))
		if err != nil {
			t.Fatal(err)
		}
		code, body, err := s.get("/static/hello/site.css")
		if err != nil || code != 200 || body != string(want) {
			t.Errorf("GET /static/hello/site.css: %d %v %q", code, err, trim(body))
		}
		if code, _, err := s.get("/static/hello/missing.css"); err != nil || code != 404 {
			t.Errorf("GET a missing static file: %d %v, want 404", code, err)
		}
		if _, err := eventually(30*time.Second, s.cache); err != nil {
			t.Error(err)
		}
		took, err := eventually(60*time.Second, func() error { return s.task(20, 22, 20*time.Second) })
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("celery task enqueued through the site and done in %s", took.Round(time.Millisecond))
	})
	if !ok {
		t.FailNow()
	}

	t.Run("3 kill -9 each program", func(t *testing.T) {
		task := func() error { return s.task(1, 2, 10*time.Second) }
		for _, c := range []struct {
			program string
			beam    bool // kill rabbitmq's Erlang VM (beam.smp), not its shell wrapper
			works   func() error
			within  time.Duration
		}{
			{"gunicorn", false, s.hello, 60 * time.Second},
			{"celery", false, task, 90 * time.Second},
			{"memcached", false, s.cache, 60 * time.Second},
			{"rabbitmq", true, task, 150 * time.Second},
		} {
			t.Run(c.program, func(t *testing.T) {
				spawn, ok := d.lastSpawn(c.program)
				if !ok {
					t.Fatalf("no pid for %s", c.program)
				}
				victim, what := spawn.PID, "main process"
				if c.beam {
					for _, p := range descendants(spawn.PID) {
						if strings.Contains(p.cmd, "beam.smp") {
							victim, what = p.pid, "beam.smp"
						}
					}
				}
				m := d.mark()
				t0 := time.Now()
				if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				respawn, err := d.wait(m, c.within, c.program+" spawned again", func(e entry) bool {
					return e.Msg == "spawned" && e.Program == c.program && e.PID != spawn.PID
				})
				if err != nil {
					t.Fatal(err)
				}
				running, err := d.waitState(m, c.within, c.program, "RUNNING")
				if err != nil {
					t.Fatal(err)
				}
				works, err := eventually(c.within, c.works)
				if err != nil {
					t.Fatalf("after kill -9 of %s: %v", c.program, err)
				}
				snapshot()
				t.Logf("kill -9 %s %s (pid %d): respawned in %s, RUNNING in %s, site works again %s after the kill",
					c.program, what, victim, respawn.TS.Sub(t0).Round(time.Millisecond),
					running.TS.Sub(t0).Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
				_ = works
			})
		}
		if err := s.hello(); err != nil {
			t.Error(err)
		}
	})

	t.Run("4 restart and HUP under load", func(t *testing.T) {
		underLoad := func(t *testing.T, action func() error) loadResult {
			started := make(chan struct{})
			done := make(chan loadResult, 1)
			go func() { done <- s.load(10*time.Second, 32, started) }()
			select {
			case <-started:
				if err := action(); err != nil {
					t.Error(err)
				}
			case r := <-done:
				t.Fatalf("the load never got 100 good answers: %s", r)
			}
			return <-done
		}
		t.Run("restart", func(t *testing.T) {
			before, _ := d.lastSpawn("gunicorn")
			r := underLoad(t, func() error {
				out, err := cli("restart", "gunicorn")
				if err != nil {
					return fmt.Errorf("hostctl restart gunicorn: %v\n%s", err, out)
				}
				return nil
			})
			t.Logf("GET / at 32 connections for 10 s around hostctl restart gunicorn: %s", r)
			if after, _ := d.lastSpawn("gunicorn"); after.PID == before.PID {
				t.Errorf("gunicorn's pid is still %d: not restarted", before.PID)
			}
			if r.failed > 0 {
				t.Errorf("%d requests failed during the restart: %v", r.failed, r.errs)
			}
		})
		t.Run("HUP", func(t *testing.T) {
			master, _ := d.lastSpawn("gunicorn")
			workers := childrenOf(master.PID)
			r := underLoad(t, func() error {
				out, err := cli("signal", "HUP", "gunicorn")
				if err != nil {
					return fmt.Errorf("hostctl signal HUP gunicorn: %v\n%s", err, out)
				}
				return nil
			})
			t.Logf("GET / at 32 connections for 10 s around hostctl signal HUP gunicorn: %s", r)
			if now, _ := d.lastSpawn("gunicorn"); now.PID != master.PID {
				t.Errorf("HUP restarted gunicorn (pid %d -> %d) instead of reloading it", master.PID, now.PID)
			}
			if _, err := eventually(30*time.Second, func() error {
				now := childrenOf(master.PID)
				for _, w := range workers {
					if slices.Contains(now, w) {
						return fmt.Errorf("old worker %d still there (workers before %v, now %v)", w, workers, now)
					}
				}
				if len(now) == 0 {
					return fmt.Errorf("no workers")
				}
				return nil
			}); err != nil {
				t.Errorf("HUP did not replace the workers: %v", err)
			}
			if r.failed > 0 {
				t.Errorf("%d requests failed during the HUP: %v", r.failed, r.errs)
			}
		})
		snapshot()
	})

	t.Run("5 gunicorn stopped: error page", func(t *testing.T) {
		if out, err := cli("stop", "gunicorn"); err != nil {
			t.Fatalf("hostctl stop gunicorn: %v\n%s", err, out)
		}
		var code int
		var body string
		took, err := eventually(30*time.Second, func() error {
			var err error
			code, body, err = s.get("/")
			if err != nil {
				return err
			}
			if (code != 502 && code != 503) || !strings.Contains(body, "temporarily unavailable") {
				return fmt.Errorf("GET / with gunicorn stopped: %d %q", code, trim(body))
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		} else {
			t.Logf("gunicorn stopped: GET / answered %d with the error page after %s", code, took.Round(time.Millisecond))
		}
		if out, err := cli("start", "gunicorn"); err != nil {
			t.Fatalf("hostctl start gunicorn: %v\n%s", err, out)
		}
		if _, err := eventually(60*time.Second, s.hello); err != nil {
			t.Error(err)
		}
		snapshot()
	})

	onCall(t, d, s, cli, pd, mailbox, secretKey, host)
	snapshot()

	t.Run("6 SIGTERM stops everything", func(t *testing.T) {
		snapshot()
		t0 := time.Now()
		if err := d.stop(90 * time.Second); err != nil {
			t.Fatal(err)
		}
		t.Logf("hostctl stopped the stack and exited in %s (%s)", time.Since(t0).Round(time.Millisecond), d.cmd.ProcessState)
		if code := d.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("hostctl exit code %d, want 0", code)
		}
		// Processes of a group stopped with SIGKILL may be reaped an
		// instant after hostctl exits (longer on a busy machine).
		if _, err := eventually(30*time.Second, func() error {
			var left []string
			for _, p := range stack {
				if p.alive() {
					left = append(left, fmt.Sprintf("%d %s", p.pid, p.cmd))
				}
			}
			for _, port := range ports {
				if !portFree(port) {
					left = append(left, "port "+strconv.Itoa(port)+" in use")
				}
			}
			if c, err := net.Dial("unix", filepath.Join(runDir, "gunicorn.sock")); err == nil {
				c.Close()
				left = append(left, "gunicorn's socket accepts connections")
			}
			if len(left) > 0 {
				return fmt.Errorf("left after hostctl exited: %s", strings.Join(left, "; "))
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
		t.Logf("%d processes of the stack seen during the test, none left; %d ports free", len(stack), len(ports))
	})
}
