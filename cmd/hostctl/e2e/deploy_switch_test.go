package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testbin"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/testuser"
)

// deployUser is the app's user of the switch tests: real, unprivileged.
const deployUser = "hct-deploy2"

// deployTimeout is the tests' [deploy] deploy_timeout: gunicorn boots in
// a few seconds, much slower beside stress-ng.
const deployTimeout = 60 * time.Second

// djangoRepo is a git repository the test makes from configs/django, with
// commits the test edits.
type djangoRepo struct {
	t   *testing.T
	dir string
}

func newDjangoRepo(t *testing.T, base string) *djangoRepo {
	t.Helper()
	r := &djangoRepo{t: t, dir: filepath.Join(base, "repo")}
	src := filepath.Join(moduleRoot(t), "configs", "django")
	if out, err := exec.Command("cp", "-R", src, r.dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	os.RemoveAll(filepath.Join(r.dir, "__pycache__"))
	r.git("init", "-q", "-b", "main")
	return r
}

func (r *djangoRepo) git(args ...string) {
	r.t.Helper()
	c := exec.Command("git", append([]string{"-C", r.dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	if out, err := c.CombinedOutput(); err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// edit replaces old by new in the repo's file, or appends new when old
// is "".
func (r *djangoRepo) edit(file, old, new string) {
	r.t.Helper()
	p := filepath.Join(r.dir, file)
	b, err := os.ReadFile(p)
	if err != nil {
		r.t.Fatal(err)
	}
	s := string(b)
	switch {
	case old == "":
		s += new
	case !strings.Contains(s, old):
		r.t.Fatalf("%s has no %q", file, old)
	default:
		s = strings.Replace(s, old, new, 1)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *djangoRepo) commit(msg string) {
	r.t.Helper()
	r.git("add", "-A")
	r.git("commit", "-q", "-m", msg)
}

// requestLoop sends GET / through the proxy until stopped, on keep-alive
// connections, and counts every answer by body, and every failure (an
// error, or a status other than 200).
type requestLoop struct {
	url  string
	stop chan struct{}
	done sync.WaitGroup

	mu       sync.Mutex
	bodies   map[string]int
	failures []string
	changed  chan struct{} // closed and replaced at each answer
}

func startLoop(url string, clients int) *requestLoop {
	l := &requestLoop{url: url, stop: make(chan struct{}), bodies: map[string]int{}, changed: make(chan struct{})}
	for range clients {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			c := &http.Client{Timeout: 30 * time.Second}
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := c.Get(l.url)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				l.mu.Lock()
				switch {
				case err != nil:
					l.failures = append(l.failures, err.Error())
				case resp.StatusCode != http.StatusOK:
					l.failures = append(l.failures, fmt.Sprintf("%d %q", resp.StatusCode, body))
				default:
					l.bodies[strings.TrimSpace(string(body))]++
				}
				close(l.changed)
				l.changed = make(chan struct{})
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// waitFor waits until an answer has body, or fails the test at timeout.
func (l *requestLoop) waitFor(t *testing.T, body string, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		n, ch := l.bodies[body], l.changed
		l.mu.Unlock()
		if n > 0 {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			bodies, failures := l.snapshot()
			t.Fatalf("no answer %q within %s: %v, failures %q", body, timeout, bodies, failures)
		}
	}
}

func (l *requestLoop) snapshot() (map[string]int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bodies := map[string]int{}
	for k, v := range l.bodies {
		bodies[k] = v
	}
	return bodies, append([]string(nil), l.failures...)
}

func (l *requestLoop) end() (map[string]int, []string) {
	close(l.stop)
	l.done.Wait()
	return l.snapshot()
}

// TestDeploySwitchDjango is issue 23's switch and gate failure with the
// Django example (configs/django, gunicorn from Debian) in a git repo
// made here, deployed by the real binary's `hostctl deploy` to a real
// daemon, its app user a real unprivileged user. A request loop through
// the proxy runs through each deploy and counts every failure:
//
//  1. v1, the first deploy: served, with its collectstatic output;
//  2. v2 under the loop: the content switches, 0 failed requests, v2's
//     collected static file is served, its before_switch step ran once,
//     the deploy = "restart" worker runs in the new release;
//  3. v3, whose wsgi import fails: the deploy fails within
//     deploy_timeout naming the traceback's last line, v2 is still
//     served, 0 failed requests, no visitor ever got v3, current and the
//     live release unchanged, v3 recorded failed;
//  4. v4, which boots but answers 500 on its check path: the same, and
//     requests that try to reach the new slot from outside while it runs
//     (headers naming a slot, the gate, the new socket) never do.
func TestDeploySwitchDjango(t *testing.T) {
	if testing.Short() {
		t.Skip("runs gunicorn releases: not with -short")
	}
	root := moduleRoot(t)
	if out, err := run(root, os.Environ(), "scripts/e2e-deps.sh"); err != nil {
		t.Fatalf("scripts/e2e-deps.sh: %v\n%s", err, out)
	}
	testuser.Ensure(t, deployUser)
	hook := newHookReceiver(t)
	port := freePort(t)
	site := "http://127.0.0.1:" + strconv.Itoa(port)
	var base string
	d := startDaemon(t, "", daemonOpts{noReady: true, config: func(t testing.TB, dir string) (string, []string) {
		base = dir
		// The app's user reaches its release dirs below dir.
		for p := dir; p != filepath.Clean(os.TempDir()) && p != "/"; p = filepath.Dir(p) {
			os.Chmod(p, 0o755)
		}
		for _, sub := range []string{"sock", "out"} {
			os.Mkdir(filepath.Join(dir, sub), 0o755)
			exec.Command("chown", deployUser, filepath.Join(dir, sub)).Run()
		}
		cfg := fmt.Sprintf(`[admin]
socket = "%[1]s/run/hostctl.sock"
state_dir = "%[1]s/state"

[log]
dir = "%[1]s/log"

[program.gunicorn]
command = "/usr/bin/gunicorn -c gunicorn.conf.py"
directory = "${RELEASE_DIR}"
deploy = "blue_green"
user = %[3]q
serves = "unix:%[1]s/sock/gunicorn-${SLOT}.sock"
ready = { http = "http://localhost/healthz", socket = "%[1]s/sock/gunicorn-${SLOT}.sock", interval = "250ms", timeout = "5s", deadline = "50s" }
start_retries = 1
drain_timeout = "10s"
stop_timeout = "15s"

[program.gunicorn.environment]
HELLO_GUNICORN_BIND = "unix:%[1]s/sock/gunicorn-${SLOT}.sock"
HELLO_GUNICORN_WORKERS = "2"

[program.worker]
command = "/bin/sleep 100000"
directory = "${RELEASE_DIR}"
user = %[3]q

[proxy]
listen = "127.0.0.1:%[2]d"
upstream = "unix:%[1]s/sock/gunicorn-${SLOT}.sock"
file_user = %[3]q
retry_for = "10s"

[[proxy.static]]
path = "/static/"
dir = "%[1]s/www/current/static"

[deploy]
dir = "%[1]s/www"
repo = "%[1]s/repo"
program = "gunicorn"
check = ["/", "/healthz"]
deploy_timeout = "%[4]s"

[[deploy.build]]
command = "HELLO_STATIC_ROOT=\"$RELEASE_DIR/static\" /usr/bin/python3 manage.py collectstatic --noinput -v0"

[[deploy.before_switch]]
command = "echo \"$RELEASE\" >> %[1]s/out/before_switch.log"

[alerts]
started = false

[[alerts.sink]]
name = "hook"
type = "webhook"
url = %[5]q
secret_file = %[6]q
`, dir, port, deployUser, deployTimeout, hook.url, hook.secretFile)
		path := filepath.Join(dir, "hostctl.toml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return path, nil
	}})
	d.waitNote(t, "READY=1", time.Minute)
	repo := newDjangoRepo(t, base)
	repo.edit("hello/views.py", `HttpResponse("Hello World!\n"`, `HttpResponse("Hello v1\n"`)
	repo.commit("v1")

	deployRel := func(t *testing.T) (result, time.Duration) {
		t.Helper()
		start := time.Now()
		r := d.hostctl(t, "deploy")
		return r, time.Since(start)
	}
	current := func() string {
		l, _ := os.Readlink(filepath.Join(base, "www", "current"))
		return l
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(site + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	beforeSwitchRuns := func() []string {
		b, _ := os.ReadFile(filepath.Join(base, "out", "before_switch.log"))
		return strings.Fields(string(b))
	}

	// 1. The first deploy.
	r, _ := deployRel(t)
	if r.code != 0 || !strings.Contains(r.stdout, "switch") || !strings.Contains(r.stdout, "is live") {
		t.Fatalf("deploy v1: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if code, body := get("/"); code != 200 || strings.TrimSpace(body) != "Hello v1" {
		t.Fatalf("after deploy v1: %d %q", code, body)
	}
	v1 := current()

	// 2. v2 under the request loop.
	repo.edit("hello/views.py", `HttpResponse("Hello v1\n"`, `HttpResponse("Hello v2\n"`)
	repo.edit("hello/static/hello/site.css", "", "\n/* v2 */\n")
	repo.commit("v2")
	workerCwd := func() string {
		st := d.status(t)["worker"]
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", st.PID))
		return l
	}
	loop := startLoop(site+"/", 4)
	loop.waitFor(t, "Hello v1", 30*time.Second)
	r, _ = deployRel(t)
	if r.code != 0 {
		loop.end()
		t.Fatalf("deploy v2: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	loop.waitFor(t, "Hello v2", 30*time.Second)
	bodies, failures := loop.end()
	t.Logf("deploy v2 under load: %v answers, %d failed", bodies, len(failures))
	if len(failures) > 0 {
		t.Errorf("deploy v2: %d failed requests: %q", len(failures), failures[:min(len(failures), 10)])
	}
	for b := range bodies {
		if b != "Hello v1" && b != "Hello v2" {
			t.Errorf("deploy v2: answer %q", b)
		}
	}
	v2 := current()
	if v2 == v1 || !strings.HasPrefix(v2, "releases/") {
		t.Errorf("current after v2: %q (v1 %q)", v2, v1)
	}
	if code, body := get("/static/hello/site.css"); code != 200 || !strings.Contains(body, "/* v2 */") {
		t.Errorf("v2's collected static file: %d %q", code, body)
	}
	v2id := strings.TrimPrefix(v2, "releases/")
	runs := 0
	for _, id := range beforeSwitchRuns() {
		if id == v2id {
			runs++
		}
	}
	if runs != 1 {
		t.Errorf("v2's before_switch ran %d times: %v", runs, beforeSwitchRuns())
	}
	if cwd := workerCwd(); cwd != filepath.Join(base, "www", v2) {
		t.Errorf("the deploy = \"restart\" worker runs in %q, want %q", cwd, filepath.Join(base, "www", v2))
	}

	// failedDeploy deploys a release that must fail at the gate, under
	// the loop (and attacks, with attack), and checks that nothing live
	// changed and no visitor reached it.
	failedDeploy := func(t *testing.T, newBody string, attack func(stop <-chan struct{}) []string, wantErr ...string) {
		live := slotOf(t, d)
		loop := startLoop(site+"/", 4)
		loop.waitFor(t, "Hello v2", 30*time.Second)
		stop := make(chan struct{})
		var reached []string
		var wg sync.WaitGroup
		if attack != nil {
			wg.Add(1)
			go func() { defer wg.Done(); reached = attack(stop) }()
		}
		r, took := deployRel(t)
		close(stop)
		wg.Wait()
		bodies, failures := loop.end()
		t.Logf("failed deploy under load: %v answers, %d failed, the deploy took %s", bodies, len(failures), took)
		if r.code != 1 {
			t.Errorf("deploy: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, w := range wantErr {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("the deploy's error does not say %q:\n%s", w, r.stderr)
			}
		}
		if len(failures) > 0 {
			t.Errorf("%d failed requests: %q", len(failures), failures[:min(len(failures), 10)])
		}
		// The gate gives up at deploy_timeout, or sooner: the time it took
		// is logged (a busy machine adds seconds), and a gate that waits
		// on past it (twice as long) fails the test.
		gate, stopped := stepTime(r.stdout, "gate"), stepTime(r.stdout, "stop")
		t.Logf("the gate gave up after %s (deploy_timeout %s)", stopped.Sub(gate), deployTimeout)
		if gate.IsZero() || stopped.IsZero() || stopped.Sub(gate) > 2*deployTimeout {
			t.Errorf("the gate began at %s and gave up at %s, long past deploy_timeout %s:\n%s", gate, stopped, deployTimeout, r.stdout)
		}
		if bodies[newBody] > 0 {
			t.Errorf("%d visitors' requests reached the new release (%q)", bodies[newBody], newBody)
		}
		for b := range bodies {
			if b != "Hello v2" {
				t.Errorf("answer %q, want only v2", b)
			}
		}
		if len(reached) > 0 {
			t.Errorf("requests from outside reached the new slot: %q", reached)
		}
		if c := current(); c != v2 {
			t.Errorf("current moved to %q, want %q", c, v2)
		}
		if code, body := get("/"); code != 200 || strings.TrimSpace(body) != "Hello v2" {
			t.Errorf("after the failed deploy: %d %q", code, body)
		}
		rels := d.hostctl(t, "releases")
		lines := strings.Split(strings.TrimSpace(rels.stdout), "\n")
		if len(lines) < 2 || !strings.Contains(lines[1], " failed ") || !strings.Contains(rels.stdout, v2id) || !strings.Contains(rels.stdout, " live ") {
			t.Errorf("releases:\n%s", rels.stdout)
		}
		for name, st := range d.status(t) {
			if strings.HasPrefix(name, "gunicorn@") && name != "gunicorn@"+live {
				t.Errorf("the new slot's %s is still there: %s", name, st.State)
			}
		}
	}

	// 3. A wsgi import that fails: besides the above, hostctl releases
	// says why in one line, /metrics counts it, and the webhook gets
	// deploy_failed with the traceback's last line.
	const importErr = "ModuleNotFoundError: No module named 'no_such_module_v3'"
	var v3id string
	t.Run("BrokenImport", func(t *testing.T) {
		repo.edit("hello/views.py", `HttpResponse("Hello v2\n"`, `HttpResponse("Hello v3\n"`)
		repo.edit("hello/wsgi.py", "import os", "import os\nimport no_such_module_v3")
		repo.commit("v3: broken import")
		failedDeploy(t, "Hello v3", nil, importErr, "did not start")
		rels := d.hostctl(t, "releases")
		lines := strings.Split(strings.TrimSpace(rels.stdout), "\n")
		if len(lines) < 2 || !strings.Contains(lines[1], " failed ") || !strings.Contains(lines[1], importErr) {
			t.Fatalf("hostctl releases does not show v3 failed with its import error:\n%s", rels.stdout)
		}
		v3id = strings.Fields(lines[1])[0]
		if b := string(d.metrics(t)); !strings.Contains(b, `hostctl_deploys_total{result="failed"} 1`) || !strings.Contains(b, `hostctl_deploys_total{result="ok"} 2`) {
			t.Errorf("/metrics after the broken import:\n%s", grepLines(b, "hostctl_deploys_total"))
		}
		ev := hook.wait("trigger", "deploy_failed:"+v3id, time.Minute)
		if ev.Condition != "deploy_failed" || !strings.Contains(ev.Summary, importErr) || !strings.Contains(ev.Summary, "at gate") ||
			!slices.Contains(ev.LastLines, importErr) || ev.Details["step"] != "gate" {
			t.Errorf("deploy_failed as the webhook got it: %+v", ev)
		}
	})

	// 4. A release that boots but answers 500 on its check path "/".
	t.Run("CheckAnswers500", func(t *testing.T) {
		repo.edit("hello/wsgi.py", "import no_such_module_v3\n", "")
		repo.edit("hello/views.py", `resp = HttpResponse("Hello v3\n", content_type="text/plain")`, `resp = HttpResponse("Hello v4\n", content_type="text/plain", status=500)`)
		repo.commit("v4: 500 on /")
		next := otherSlot(slotOf(t, d))
		sock := filepath.Join(base, "sock", "gunicorn-"+next+".sock")
		attack := func(stop <-chan struct{}) []string {
			// While the new slot runs, a client of the site sends what
			// could route a request to it: none may get v4.
			var reached []string
			c := &http.Client{Timeout: 10 * time.Second}
			tries := []func(*http.Request){
				func(r *http.Request) { r.Header.Set("X-Hostctl-Slot", next) },
				func(r *http.Request) { r.Header.Set("X-Hostctl-Gate", "1") },
				func(r *http.Request) { r.Header.Set("User-Agent", "hostctl-deploy-gate") },
				func(r *http.Request) { r.Header.Set("X-Forwarded-Host", "unix:"+sock) },
				func(r *http.Request) { r.Host = "unix:" + sock },
			}
			for {
				for _, try := range tries {
					select {
					case <-stop:
						return reached
					default:
					}
					req, _ := http.NewRequestWithContext(context.Background(), "GET", site+"/", nil)
					try(req)
					resp, err := c.Do(req)
					if err != nil {
						continue
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if strings.Contains(string(b), "Hello v4") {
						reached = append(reached, fmt.Sprintf("%v: %d %q", req.Header, resp.StatusCode, b))
					}
				}
			}
		}
		failedDeploy(t, "Hello v4", attack, "check /", "status 500, want 200", "deploy_timeout")
	})

	// 5. While a deploy waits at the gate: a second deploy and a reload
	// are refused, saying why; Ctrl-C cancels the deploy: the new slot
	// stops, nothing live changes.
	t.Run("ConcurrentAndCancel", func(t *testing.T) {
		live := slotOf(t, d)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, hostctlBin, "-c", d.cfg, "deploy")
		cmd.Env = testbin.Env(nil)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 256)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		var out []string
		for gate := false; !gate; {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the deploy ended before its gate:\n%s\n%s", strings.Join(out, "\n"), stderr.String())
				}
				out = append(out, l)
				gate = strings.Contains(l, " gate ") && strings.Contains(l, "waiting for")
			case <-ctx.Done():
				t.Fatalf("no gate step:\n%s", strings.Join(out, "\n"))
			}
		}
		if r := d.hostctl(t, "deploy"); r.code != 1 || !strings.Contains(r.stderr, "another deploy is running (pid ") || !strings.Contains(r.stderr, "since") {
			t.Errorf("a second deploy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r := d.hostctl(t, "reload"); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "a deploy is running") {
			t.Errorf("a reload during the deploy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		cmd.Process.Signal(os.Interrupt)
		for l := range lines {
			out = append(out, l)
		}
		err = cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "interrupted") {
			t.Errorf("the interrupted deploy: %v\n%s\n%s", err, strings.Join(out, "\n"), stderr.String())
		}
		// The daemon stops the new slot and records the release failed.
		var rels result
		retryUntil(t, time.Minute, "the cancelled release recorded failed", func() error {
			rels = d.hostctl(t, "releases")
			lines := strings.Split(strings.TrimSpace(rels.stdout), "\n")
			if len(lines) > 1 && strings.Contains(lines[1], " failed ") && strings.Contains(lines[1], "cancelled") {
				return nil
			}
			return fmt.Errorf("releases:\n%s", rels.stdout)
		})
		for name := range d.status(t) {
			if strings.HasPrefix(name, "gunicorn@") && name != "gunicorn@"+live {
				t.Errorf("the cancelled slot's %s is still there", name)
			}
		}
		if c := current(); c != v2 {
			t.Errorf("current moved to %q", c)
		}
		if code, body := get("/"); code != 200 || strings.TrimSpace(body) != "Hello v2" {
			t.Errorf("after the cancel: %d %q", code, body)
		}
	})

	// 6. The next good deploy resolves the deploy alerts; status names
	// the live release; /metrics counts every result and names it.
	t.Run("GoodDeployResolves", func(t *testing.T) {
		if v3id == "" {
			t.Skip("BrokenImport did not record v3")
		}
		repo.edit("hello/views.py", `resp = HttpResponse("Hello v4\n", content_type="text/plain", status=500)`, `resp = HttpResponse("Hello v5\n", content_type="text/plain")`)
		repo.commit("v5")
		if r, _ := deployRel(t); r.code != 0 {
			t.Fatalf("deploy v5: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		ev := hook.wait("resolve", "deploy_failed:"+v3id, time.Minute)
		if !strings.Contains(ev.ResolveSummary, "deployed") {
			t.Errorf("the resolve of deploy_failed: %+v", ev)
		}
		v5id := strings.TrimPrefix(current(), "releases/")
		if r := d.hostctl(t, "status"); !strings.HasPrefix(r.stdout, "release "+v5id+" (sha ") || !strings.Contains(strings.SplitN(r.stdout, "\n", 2)[0], " live since ") {
			t.Errorf("hostctl status does not name the live release %s first:\n%s", v5id, r.stdout)
		}
		b := string(d.metrics(t))
		for _, w := range []string{`hostctl_deploys_total{result="ok"} 3`, `hostctl_deploys_total{result="failed"} 2`,
			`hostctl_deploys_total{result="canceled"} 1`, `hostctl_release_info{release="` + v5id + `",sha="`} {
			if !strings.Contains(b, w) {
				t.Errorf("/metrics lacks %s:\n%s", w, grepLines(b, "hostctl_de")+grepLines(b, "hostctl_release"))
			}
		}
	})
}

// stepTime returns the time of the first line of step in hostctl
// deploy's output ("15:04:05 gate ..."), zero if there is none.
func stepTime(out, step string) time.Time {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[1] == step {
			if t, err := time.Parse("15:04:05", f[0]); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// slotOf returns the slot the live gunicorn runs in.
func slotOf(t *testing.T, d *testDaemon) string {
	t.Helper()
	for name, st := range d.status(t) {
		if strings.HasPrefix(name, "gunicorn@") && st.State == "RUNNING" {
			return strings.TrimPrefix(name, "gunicorn@")
		}
	}
	return "a"
}

// otherSlot is the slot that is not s.
func otherSlot(s string) string {
	if s == "a" {
		return "b"
	}
	return "a"
}
