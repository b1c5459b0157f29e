package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testbin"
)

// TestDjangoUnderHardenedUnit runs the Django example (configs/webserver.toml:
// epmd, rabbitmq, memcached, gunicorn, celery, hostctl's proxy) under the
// sandbox of configs/hostctl.service, as hostctl runs as a service. systemd
// is not PID 1 where tests run, so scripts/unit-sandbox.py applies the
// unit's own directives without it: a read-only file system but for the
// run dir (standing for the unit's State/Runtime/LogsDirectory), a private
// /tmp and /dev, /home hidden, kernel tunables read-only, the capability
// bounding set, no_new_privs, and seccomp filters for SystemCallFilter,
// RestrictAddressFamilies, MemoryDenyWriteExecute, RestrictNamespaces...
// (it lists what it cannot apply: the cgroup-based ones). Every program
// must start and the site work through each of them: a page, a static
// file, memcached, a celery task through rabbitmq; then a clean stop.
func TestDjangoUnderHardenedUnit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts rabbitmq, memcached, gunicorn and celery: not with -short")
	}
	root := moduleRoot(t)
	if out, err := run(root, os.Environ(), "scripts/e2e-deps.sh"); err != nil {
		t.Fatalf("scripts/e2e-deps.sh: %v\n%s", err, out)
	}
	tmp, err := os.MkdirTemp("", "hostctl-hard-")
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
	bin, err := testbin.Hostctl()
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 5)
	runDir := filepath.Join(tmp, "run")
	env := os.Environ()
	for k, v := range map[string]string{
		"WEBSERVER_DIR":            runDir,
		"WEBSERVER_HTTP_PORT":      strconv.Itoa(ports[0]),
		"WEBSERVER_MEMCACHED_PORT": strconv.Itoa(ports[1]),
		"WEBSERVER_AMQP_PORT":      strconv.Itoa(ports[2]),
		"WEBSERVER_DIST_PORT":      strconv.Itoa(ports[3]),
		"WEBSERVER_EPMD_PORT":      strconv.Itoa(ports[4]),
	} {
		env = append(env, k+"="+v)
	}
	env = testbin.Env(env)
	staticRoot := filepath.Join(runDir, "static")
	if out, err := run(root, append(env, "HELLO_STATIC_ROOT="+staticRoot),
		"/usr/bin/python3", "configs/django/manage.py", "collectstatic", "--noinput", "-v0"); err != nil {
		t.Fatalf("collectstatic: %v\n%s", err, out)
	}

	// The checkout (the sandbox script itself, the config, the Django app)
	// is kept visible, read-only, wherever it is: a clone under /tmp (as
	// CI's or a new user's may be) is otherwise hidden by PrivateTmp.
	d := startConfigDaemon(t, bin, root, "configs/webserver.toml", env,
		"/usr/bin/python3", "scripts/unit-sandbox.py", "configs/hostctl.service",
		"--rw", runDir, "--keep", filepath.Dir(bin), "--keep", root, "--")
	t.Cleanup(func() {
		if err := d.stop(90 * time.Second); err != nil {
			t.Error(err)
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("hostctl log:\n%s", d.logText())
		}
	})

	programs := []string{"epmd", "memcached", "rabbitmq", "gunicorn", "celery"}
	for _, p := range programs {
		if _, err := d.waitState(0, 150*time.Second, p, "RUNNING"); err != nil {
			t.Fatal(err)
		}
	}

	// The sandbox holds for hostctl and for every program it started.
	pids := map[string]int{"hostctl": d.cmd.Process.Pid}
	for _, p := range programs {
		e, ok := d.lastSpawn(p)
		if !ok {
			t.Fatalf("no spawn of %s logged", p)
		}
		pids[p] = e.PID
	}
	for name, pid := range pids {
		if err := confined(pid); err != nil {
			t.Errorf("%s (pid %d) is not confined: %v", name, pid, err)
		}
	}

	s := &site{base: "http://127.0.0.1:" + strconv.Itoa(ports[0]), client: &http.Client{Timeout: 20 * time.Second}}
	if _, err := eventually(60*time.Second, s.hello); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(staticRoot, "hello", "site.css"))
	if err != nil {
		t.Fatal(err)
	}
	if code, body, err := s.get("/static/hello/site.css"); err != nil || code != 200 || body != string(want) {
		t.Errorf("GET /static/hello/site.css: %d %v %q", code, err, trim(body))
	}
	if _, err := eventually(30*time.Second, s.cache); err != nil {
		t.Error(err)
	}
	took, err := eventually(90*time.Second, func() error { return s.task(20, 22, 20*time.Second) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("under the hardened unit: every program RUNNING, the site, a static file, memcached and a celery task (%s) work",
		took.Round(time.Millisecond))

	stack := descendants(d.cmd.Process.Pid)
	if err := d.stop(90 * time.Second); err != nil {
		t.Fatal(err)
	}
	if st := d.cmd.ProcessState; st == nil || !st.Success() {
		t.Errorf("hostctl exited %v after SIGTERM, want 0", st)
	}
	testbin.CheckRace(t, "hostctl run", d.cmd.ProcessState, d.logText())
	for _, p := range stack {
		if p.alive() {
			t.Errorf("left running: pid %d %s", p.pid, p.cmd)
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
}

// confined checks, from outside, that pid runs in the unit's sandbox: no
// way to gain privileges, seccomp filters on, no CAP_SYS_ADMIN,
// CAP_DAC_OVERRIDE, CAP_SYS_PTRACE or CAP_NET_RAW even in its bounding
// set, / read-only and /tmp its own.
func confined(pid int) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err
	}
	status := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		status[k] = strings.TrimSpace(v)
	}
	if status["NoNewPrivs"] != "1" {
		return fmt.Errorf("NoNewPrivs %q", status["NoNewPrivs"])
	}
	if status["Seccomp"] != "2" {
		return fmt.Errorf("Seccomp %q, want 2 (filter)", status["Seccomp"])
	}
	bnd, err := strconv.ParseUint(status["CapBnd"], 16, 64)
	if err != nil {
		return fmt.Errorf("CapBnd %q", status["CapBnd"])
	}
	for name, bit := range map[string]uint{"CAP_DAC_OVERRIDE": 1, "CAP_NET_RAW": 13, "CAP_SYS_PTRACE": 19, "CAP_SYS_ADMIN": 21} {
		if bnd&(1<<bit) != 0 {
			return fmt.Errorf("%s in its bounding set (CapBnd %s)", name, status["CapBnd"])
		}
	}
	if bnd&(1<<7) == 0 {
		return fmt.Errorf("no CAP_SETUID in its bounding set (CapBnd %s): the unit gives it", status["CapBnd"])
	}
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return err
	}
	var rootRO, tmpfs bool
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		opts := strings.Split(f[5], ",")
		switch f[4] {
		case "/":
			rootRO = len(opts) > 0 && opts[0] == "ro"
		case "/tmp":
			tmpfs = strings.Contains(line, " - tmpfs ")
		}
	}
	if !rootRO || !tmpfs {
		return fmt.Errorf("/ read-only %v, /tmp a private tmpfs %v", rootRO, tmpfs)
	}
	return nil
}
