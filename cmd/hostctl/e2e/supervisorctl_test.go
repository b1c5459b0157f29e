package e2e

// Debian's real supervisorctl and Python's own xmlrpc.client against a
// real `hostctl run`: supervisord's XML-RPC API as its clients use it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/supervisord/xmlrpc"
)

// supervisorctlPrograms: web answers HUP (its hello, with its pid, says
// its trap is set), ticker writes a line every 0.2s (for tail -f), manual
// is not autostarted, crash fails to start.
const supervisorctlPrograms = `file = true

[program.web]
command = ["sh", "-c", "n=0; trap 'n=$((n+1)); echo got-hup-$n' HUP; echo web-hello $$$$; echo web-oops >&2; while :; do sleep 0.1; done"]
start_secs = "0.3s"

[program.ticker]
command = ["sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done"]
start_secs = "0.3s"

[program.manual]
command = ["sleep", "1000"]
autostart = false
start_secs = "0.3s"

[program.crash]
command = ["sh", "-c", "echo dying >&2; exit 3"]
autostart = false
start_secs = "1s"
fatal_retry = "never"
`

// sctl runs Debian's supervisorctl against one server URL.
type sctl struct {
	bin  string
	args []string // -s URL [-u USER -p PASS]
}

func (c sctl) run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append(append([]string{}, c.args...), args...)...)
	cmd.Env = append(os.Environ(), "PYTHONIOENCODING=utf-8")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("supervisorctl %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// expect runs args and checks the exit code and that every pattern
// matches a line of the output.
func (c sctl) expect(t *testing.T, code int, args []string, patterns ...string) result {
	t.Helper()
	r := c.run(t, args...)
	if r.code != code {
		t.Errorf("supervisorctl %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	for _, p := range patterns {
		if !regexp.MustCompile("(?m)" + p).MatchString(r.stdout) {
			t.Errorf("supervisorctl %s: no line matches %q in\n%s%s", strings.Join(args, " "), p, r.stdout, r.stderr)
		}
	}
	return r
}

// eventually runs args again until the exit code is code (any code when
// code < 0) and every pattern matches a line of its output, or fails the
// test after d with the last output: for a state that an action brings
// about later (update adds a program; it is STARTING before it is
// RUNNING).
func (c sctl) eventually(t *testing.T, d time.Duration, code int, args []string, patterns ...string) result {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r := c.run(t, args...)
		missing := ""
		for _, p := range patterns {
			if !regexp.MustCompile("(?m)" + p).MatchString(r.stdout) {
				missing = p
				break
			}
		}
		if (code < 0 || r.code == code) && missing == "" {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("supervisorctl %s: not within %v: exit %d (want %d), no line matches %q in\n%s%s",
				strings.Join(args, " "), d, r.code, code, missing, r.stdout, r.stderr)
		}
		time.Sleep(100 * time.Millisecond) // between polls of a bounded wait
	}
}

// follow runs `supervisorctl tail -f ...` (or maintail -f) until a line of
// its output matches want, then ends it: the bounded tail -f. With then,
// once the first line from the server has arrived (the follow is
// connected), it calls then and waits for a line matching what then
// returns instead: a line written after the follow started.
func (c sctl) follow(t *testing.T, want string, then func() string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append(append([]string{}, c.args...), args...)...)
	cmd.Env = append(os.Environ(), "PYTHONIOENCODING=utf-8")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()
	sc := bufio.NewScanner(out)
	var seen []string
	for sc.Scan() {
		line := sc.Text()
		seen = append(seen, line)
		if line == "==> Press Ctrl-C to exit <==" {
			continue
		}
		if then != nil {
			want, then = then(), nil
		}
		if regexp.MustCompile(want).MatchString(line) {
			return
		}
	}
	t.Errorf("supervisorctl %s: no line matched %q before it ended (%v):\n%s", strings.Join(args, " "), want, ctx.Err(), strings.Join(seen, "\n"))
}

func lookSupervisorctl(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("supervisorctl")
	if err != nil {
		t.Fatalf("supervisorctl is needed (Debian's supervisor package; scripts/test-deps.sh installs it): %v", err)
	}
	return bin
}

// startSupervisordAPI starts hostctl with a TCP admin listener and returns
// the daemon, a supervisorctl for its unix socket, one for TCP with
// -u/-p, the TCP address and the token.
func startSupervisordAPI(t *testing.T) (d *testDaemon, unix, tcp sctl, addr, token string) {
	bin := lookSupervisorctl(t)
	token = "xmlrpc-test-token-0123456789abcdef"
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d = startDaemon(t, supervisorctlPrograms, daemonOpts{admin: fmt.Sprintf("listen = \"127.0.0.1:0\"\ntoken_file = %q\n", tokFile)})
	line := d.waitLog(t, 10*time.Second, "admin API listening", `"token_required":true`)
	m := regexp.MustCompile(`"addr":"([^"]+)"`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no address in %s", line)
	}
	addr = m[1]
	unix = sctl{bin: bin, args: []string{"-s", "unix://" + d.socket}}
	tcp = sctl{bin: bin, args: []string{"-s", "http://" + addr, "-u", "ops", "-p", token}}
	for _, n := range []string{"web", "ticker"} {
		d.waitLog(t, 30*time.Second, `"program":"`+n+`"`, `"to":"RUNNING"`)
	}
	// RUNNING (0.3s alive) does not mean the shells have run a line: web's
	// hello says its HUP trap is set (tests signal it), and tests read the
	// first lines of both logs.
	d.waitTail(t, "web-hello", "web")
	d.waitTail(t, "tick ", "ticker")
	return d, unix, tcp, addr, token
}

func TestSupervisorctl(t *testing.T) {
	d, unix, tcp, addr, token := startSupervisordAPI(t)

	t.Run("supervisord.conf with only [supervisorctl]", func(t *testing.T) {
		// What the README tells to leave in /etc/supervisor/supervisord.conf.
		dir := t.TempDir()
		for name, body := range map[string]string{
			"unix.conf": "[supervisorctl]\nserverurl = unix://" + d.socket + "\n",
			"tcp.conf":  "[supervisorctl]\nserverurl = http://" + addr + "\nusername = ops\npassword = " + token + "\n",
		} {
			conf := filepath.Join(dir, name)
			if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			sctl{bin: unix.bin, args: []string{"-c", conf}}.expect(t, 0, []string{"status", "web"}, `^web +RUNNING +pid \d+`)
		}
	})

	for _, c := range []struct {
		name string
		ctl  sctl
	}{{"unix", unix}, {"tcp", tcp}} {
		t.Run("status over "+c.name, func(t *testing.T) {
			// manual and crash are STOPPED: LSB status 3.
			c.ctl.expect(t, 3, []string{"status"},
				`^web +RUNNING +pid \d+, uptime \d:\d\d:\d\d$`,
				`^ticker +RUNNING +pid \d+, uptime \d:\d\d:\d\d$`,
				`^manual +STOPPED +Not started$`,
				`^crash +STOPPED +Not started$`)
			c.ctl.expect(t, 0, []string{"status", "web"}, `^web +RUNNING +pid \d+`)
			c.ctl.expect(t, 0, []string{"status", "web:web", "ticker:*"}, `^web +RUNNING`, `^ticker +RUNNING`)
			c.ctl.expect(t, 4, []string{"status", "nope"}, `^nope: ERROR \(no such process\)$`)
			c.ctl.expect(t, 0, []string{"version"}, `^\S+$`)
		})
	}
	t.Run("bad credentials", func(t *testing.T) {
		bad := sctl{bin: tcp.bin, args: append(append([]string{}, tcp.args[:4]...), "-p", "wrong")}
		bad.expect(t, 1, []string{"status"}, `^Server requires authentication$`)
	})

	t.Run("pid", func(t *testing.T) {
		pid := strconv.Itoa(d.status(t)["web"].PID)
		unix.expect(t, 0, []string{"pid", "web"}, "^"+pid+"$")
		unix.expect(t, 7, []string{"pid", "manual"}, `^0$`)
		unix.expect(t, 0, []string{"pid"}, `^\d+$`)
		unix.expect(t, 1, []string{"pid", "nope"}, `^No such process nope$`)
	})

	t.Run("start and stop", func(t *testing.T) {
		tcp.expect(t, 0, []string{"start", "manual"}, `^manual: started$`)
		if st := d.status(t)["manual"]; string(st.State) != "RUNNING" {
			t.Errorf("after start, manual is %s", st.State)
		}
		tcp.expect(t, 0, []string{"start", "manual"}, `^manual: ERROR \(already started\)$`)
		tcp.expect(t, 1, []string{"start", "nope"}, `^nope: ERROR \(no such process\)$`)
		tcp.expect(t, 0, []string{"stop", "manual"}, `^manual: stopped$`)
		if st := d.status(t)["manual"]; string(st.State) != "STOPPED" {
			t.Errorf("after stop, manual is %s", st.State)
		}
		tcp.expect(t, 0, []string{"stop", "manual"}, `^manual: ERROR \(not running\)$`)
		unix.expect(t, 0, []string{"start", "manual:*"}, `^manual: started$`)
		unix.expect(t, 0, []string{"stop", "manual:*"}, `^manual: stopped$`)
		// A program that exits at once: supervisord's "spawn error", LSB 7.
		unix.expect(t, 7, []string{"start", "crash"}, `^crash: ERROR \(spawn error\)$`)
		// It retries (STARTING, no description) between BACKOFFs, then
		// stays FATAL: each of these says why in supervisord's words (not
		// hostctl's own "exited too quickly (exit status 3) 4 times in a
		// row; ..."), and the poll meets one; on a loaded machine the
		// first it meets may be FATAL already (issue 18). Then FATAL,
		// with the same text.
		unix.eventually(t, 30*time.Second, -1, []string{"status", "crash"},
			`^crash +(BACKOFF|FATAL) +Exited too quickly \(process log may have details\)$`)
		unix.eventually(t, 60*time.Second, 3, []string{"status", "crash"},
			`^crash +FATAL +Exited too quickly \(process log may have details\)$`)
		// Stopped if still retrying; "not running" (exit 0 too) if FATAL.
		unix.expect(t, 0, []string{"stop", "crash"}, `^crash: (stopped|ERROR \(not running\))$`)
	})

	t.Run("restart", func(t *testing.T) {
		before := d.status(t)["web"].PID
		unix.expect(t, 0, []string{"restart", "web"}, `^web: stopped$`, `^web: started$`)
		if after := d.status(t)["web"].PID; after == before || after == 0 {
			t.Errorf("restart web: pid %d -> %d", before, after)
		}
		before = d.status(t)["ticker"].PID
		r := unix.expect(t, 7, []string{"restart", "all"}, `^web: stopped$`, `^ticker: stopped$`, `^web: started$`, `^ticker: started$`, `^manual: started$`, `^crash: ERROR \(spawn error\)$`)
		if strings.Contains(r.stdout, "manual: stopped") {
			t.Errorf("restart all stopped a program that was not running:\n%s", r.stdout)
		}
		if after := d.status(t)["ticker"].PID; after == before || after == 0 {
			t.Errorf("restart all: ticker pid %d -> %d", before, after)
		}
		unix.expect(t, 0, []string{"stop", "manual", "crash"})
	})

	t.Run("signal", func(t *testing.T) {
		// web was restarted above: its new shell must have set its trap.
		d.waitTail(t, fmt.Sprintf("web-hello %d", d.status(t)["web"].PID), "web")
		tcp.expect(t, 0, []string{"signal", "HUP", "web"}, `^web: signalled$`)
		unix.follow(t, "^got-hup-1$", nil, "tail", "-f", "web")
		unix.expect(t, 1, []string{"signal", "NOPE", "web"}, `^web: ERROR \(bad signal name\)$`)
		unix.expect(t, 7, []string{"signal", "HUP", "manual"}, `^manual: ERROR \(not running\)$`)
	})

	t.Run("tail", func(t *testing.T) {
		unix.expect(t, 0, []string{"tail", "web"}, `web-hello`)
		tcp.expect(t, 0, []string{"tail", "web", "stderr"}, `web-oops`)
		r := unix.expect(t, 0, []string{"tail", "-8", "ticker"})
		if n := len(strings.TrimRight(r.stdout, "\n")); n < 1 || n > 8 {
			t.Errorf("tail -8 gave %d bytes: %q", n, r.stdout)
		}
		unix.expect(t, 1, []string{"tail", "nope"}, `^nope: ERROR \(no such process name\)$`)
		unix.follow(t, `^tick \d+$`, nil, "tail", "-f", "ticker")
		tcp.follow(t, `^web-oops$`, nil, "tail", "-f", "web", "stderr")
		// tail -f follows: a line written after it started arrives.
		tcp.follow(t, "", func() string {
			unix.expect(t, 0, []string{"signal", "HUP", "web"}, `^web: signalled$`)
			return "^got-hup-2$"
		}, "tail", "-f", "web")
	})

	t.Run("maintail", func(t *testing.T) {
		unix.expect(t, 0, []string{"maintail"}, `"msg":`)
		tcp.expect(t, 0, []string{"maintail", "-200"}, `"level":`)
		// A line logged after the follow started reaches it.
		unix.follow(t, "", func() string {
			unix.expect(t, 0, []string{"start", "manual"}, `^manual: started$`)
			return fmt.Sprintf(`"program":"manual".*"pid":%d`, d.status(t)["manual"].PID)
		}, "maintail", "-f")
		unix.expect(t, 0, []string{"stop", "manual"})
	})
}

// TestSupervisorctlRereadUpdate: reread shows what the changed file
// would change, changing nothing; update applies it; avail lists both.
func TestSupervisorctlRereadUpdate(t *testing.T) {
	d, unix, _, _, _ := startSupervisordAPI(t)
	unix.expect(t, 0, []string{"reread"}, `^No config updates to processes$`)
	webPID := d.status(t)["web"].PID

	b, err := os.ReadFile(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	cfg = strings.Replace(cfg, `[program.manual]
command = ["sleep", "1000"]
autostart = false
start_secs = "0.3s"
`, "", 1)
	cfg = strings.Replace(cfg, `sleep 0.2; done"]`, `sleep 0.25; done"]`, 1)
	cfg += "\n[program.extra]\ncommand = [\"sleep\", \"1000\"]\nstart_secs = \"0.3s\"\n"
	if err := os.WriteFile(d.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	tickerPID := d.status(t)["ticker"].PID

	unix.expect(t, 0, []string{"reread"}, `^extra: available$`, `^manual: disappeared$`, `^ticker: changed$`)
	st := d.status(t)
	if _, ok := st["extra"]; ok || st["ticker"].PID != tickerPID {
		t.Fatalf("reread applied the change: %v", st)
	}
	unix.expect(t, 0, []string{"avail"},
		`^extra +avail +auto +999:999$`, `^web +in use +auto +999:999$`, `^manual +in use +manual +999:999$`)

	unix.expect(t, 0, []string{"update"},
		`^manual: stopped$`, `^manual: removed process group$`,
		`^ticker: stopped$`, `^ticker: updated process group$`,
		`^extra: added process group$`)
	// update starts the added and the changed programs; it does not wait
	// for them to be RUNNING (neither does supervisord's).
	unix.eventually(t, 30*time.Second, 3, []string{"status"}, `^extra +RUNNING`, `^ticker +RUNNING`, `^web +RUNNING`)
	st = d.status(t)
	if _, ok := st["manual"]; ok {
		t.Errorf("manual is still configured after update")
	}
	if st["ticker"].PID == tickerPID {
		t.Errorf("ticker was not restarted with its new config")
	}
	if st["web"].PID != webPID {
		t.Errorf("update restarted web, which did not change")
	}
	unix.expect(t, 0, []string{"update"})
	unix.expect(t, 0, []string{"reread"}, `^No config updates to processes$`)

	// A config with an error: reread says so and nothing changes.
	if err := os.WriteFile(d.cfg, []byte(cfg+"\n[program.bad]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unix.expect(t, 1, []string{"reread"}, `^ERROR: CANT_REREAD: .*program\.bad`)
	unix.expect(t, 1, []string{"update"})
	if _, ok := d.status(t)["bad"]; ok {
		t.Errorf("a bad config was applied")
	}
}

// rpcPost sends body to /RPC2 on the daemon's unix socket.
func rpcPost(t *testing.T, d *testDaemon, body string) (any, error) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
	}}}
	resp, err := c.Post("http://localhost/RPC2", "text/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/xml" {
		t.Fatalf("HTTP %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return xmlrpc.DecodeResponse(bytes.NewReader(b))
}

// TestXMLRPCFaults: what is not a valid call gets a Fault in an HTTP 200,
// as supervisord answers, and never breaks the daemon.
func TestXMLRPCFaults(t *testing.T) {
	d := startDaemon(t, "[program.web]\ncommand = [\"sleep\", \"1000\"]\nstart_secs = \"0.3s\"\n", daemonOpts{})
	call := func(method string, params ...any) string {
		b, err := xmlrpc.EncodeCall(method, params...)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, c := range []struct {
		name, body string
		code       int
	}{
		{"not XML", "hello", 2},
		{"truncated", call("supervisor.getState")[:60], 2},
		{"no method name", "<methodCall><params/></methodCall>", 2},
		{"unknown method", call("supervisor.nope"), 1},
		{"unknown namespace", call("nope.getState"), 1},
		{"too few params", call("supervisor.getProcessInfo"), 2},
		{"too many params", call("supervisor.getPID", 1), 2},
		{"wrong type", call("supervisor.getProcessInfo", 3), 2},
		{"bad name", call("supervisor.getProcessInfo", "nope"), 10},
		{"bad group", call("supervisor.startProcessGroup", "nope"), 10},
		{"bad signal", call("supervisor.signalProcess", "web", "NOPE"), 11},
		{"negative offset with length", call("supervisor.readProcessStdoutLog", "web", -10, 5), 3},
		{"already started", call("supervisor.startProcess", "web"), 60},
		{"unsupported", call("supervisor.shutdown"), 30},
		{"methodHelp of nothing", call("system.methodHelp", "nope"), 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := rpcPost(t, d, c.body)
			f, ok := err.(*xmlrpc.Fault)
			if !ok || f.Code != c.code {
				t.Fatalf("got %v, %v; want fault %d", v, err, c.code)
			}
		})
	}
	if v, err := rpcPost(t, d, call("supervisor.getAPIVersion")); err != nil || v != "3.0" {
		t.Errorf("after the faults: getAPIVersion = %v, %v", v, err)
	}
}

// pythonShapes is run by python3 with a server URL and a process name:
// the shapes of supervisord's answers as xmlrpc.client reads them, (key,
// type) pairs in order, for comparing hostctl with the real supervisord.
const pythonShapes = `
import json, sys, xmlrpc.client
s = xmlrpc.client.ServerProxy(sys.argv[1])
name = sys.argv[2]
def shape(v):
    if isinstance(v, dict): return [[k, shape(x)] for k, x in v.items()]
    if isinstance(v, list): return [shape(x) for x in v]
    return type(v).__name__
out = {}
out["getProcessInfo"] = shape(s.supervisor.getProcessInfo(name))
out["getAllProcessInfo"] = shape(s.supervisor.getAllProcessInfo()[0])
out["getState"] = s.supervisor.getState()
out["getVersion"] = s.supervisor.getVersion()
out["getAPIVersion"] = s.supervisor.getAPIVersion()
out["sig"] = s.system.methodSignature("supervisor.startProcess")
out["tail"] = shape(s.supervisor.tailProcessStdoutLog(name, 0, 5))
out["multicall"] = s.system.multicall([
    {"methodName": "supervisor.getAPIVersion", "params": []},
    {"methodName": "supervisor.nope", "params": []},
    {"methodName": "system.multicall", "params": [[]]},
    {"params": []},
    {"methodName": "supervisor.getProcessInfo", "params": ["nope"]},
])
# crash exits at once and has no retries: FATAL within seconds (a
# bounded poll).
import time
deadline = time.time() + 30
while True:
    crash = s.supervisor.getProcessInfo("crash")
    if crash["statename"] == "FATAL" or time.time() > deadline:
        break
    time.sleep(0.1)
out["fatal"] = [crash[k] for k in ("statename", "spawnerr", "description", "exitstatus")]
out["group"] = shape(s.supervisor.stopProcessGroup(name))
out["stopped"] = s.supervisor.getProcessInfo(name)["description"]
def fault(f, *a):
    try:
        f(*a)
    except xmlrpc.client.Fault as e:
        return [e.faultCode, e.faultString]
out["faults"] = [
    fault(s.supervisor.getProcessInfo, "nope"),
    fault(s.supervisor.stopProcess, name),
    fault(s.supervisor.signalProcess, name, "HUP"),
    fault(s.supervisor.startProcessGroup, "nope"),
    fault(s.supervisor.readProcessStdoutLog, name, -5, 5),
    fault(s.supervisor.nope),
    fault(s.supervisor.getProcessInfo),
]
print(json.dumps(out, sort_keys=True))
`

// TestSameShapesAsSupervisord asks the real supervisord (Debian's) and
// hostctl the same questions with xmlrpc.client and compares the answers'
// shapes: struct keys in order, value types, fixed values, fault codes
// and strings, and how each describes a program that exits at once once
// it is FATAL (issue 18: hostctl's own text there broke supervisorctl
// status' output).
func TestSameShapesAsSupervisord(t *testing.T) {
	sd, err := exec.LookPath("supervisord")
	if err != nil {
		t.Fatalf("supervisord is needed (Debian's supervisor package): %v", err)
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed: %v", err)
	}
	shapes := func(url string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, py, "-c", pythonShapes, url, "web").CombinedOutput()
		if err != nil {
			t.Fatalf("python on %s: %v\n%s", url, err, out)
		}
		return string(out)
	}

	// The real supervisord, on a loopback port, with the same program.
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf(`[supervisord]
nodaemon = true
logfile = %[1]s/supervisord.log
pidfile = %[1]s/supervisord.pid
childlogdir = %[1]s

[inet_http_server]
port = 127.0.0.1:%[2]d
username = ops
password = secret

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:web]
command = sh -c "echo web-hello; exec sleep 1000"
startsecs = 0
stdout_logfile = %[1]s/web.out
stderr_logfile = %[1]s/web.err

[program:crash]
command = sh -c "exit 3"
startsecs = 1
startretries = 0
stdout_logfile = %[1]s/crash.out
stderr_logfile = %[1]s/crash.err
`, dir, port)
	if err := os.WriteFile(filepath.Join(dir, "supervisord.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sd, "-c", filepath.Join(dir, "supervisord.conf"))
	logs, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	running := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "success: web entered RUNNING state") {
				close(running)
			}
		}
	}()
	select {
	case <-running:
	case <-time.After(30 * time.Second):
		t.Fatalf("supervisord did not start web within 30s")
	}
	want := shapes(fmt.Sprintf("http://ops:secret@127.0.0.1:%d/RPC2", port))

	d := startDaemon(t, "[program.web]\ncommand = [\"sh\", \"-c\", \"echo web-hello; exec sleep 1000\"]\nstart_secs = \"0.3s\"\n"+
		"[program.crash]\ncommand = [\"sh\", \"-c\", \"exit 3\"]\nstart_secs = \"1s\"\nstart_retries = 0\nfatal_retry = \"never\"\n",
		daemonOpts{admin: "listen = \"127.0.0.1:0\"\ntoken_file = \"" + writeToken(t, "xmlrpc-test-token-0123456789abcdef") + "\"\n"})
	line := d.waitLog(t, 10*time.Second, "admin API listening", `"token_required":true`)
	addr := regexp.MustCompile(`"addr":"([^"]+)"`).FindStringSubmatch(line)[1]
	got := shapes("http://ops:xmlrpc-test-token-0123456789abcdef@" + addr + "/RPC2")

	var w, g map[string]any
	json.Unmarshal([]byte(want), &w)
	json.Unmarshal([]byte(got), &g)
	// What legitimately differs: the stopped date is the same format.
	date := regexp.MustCompile(`^[A-Z][a-z]{2} \d\d \d\d:\d\d [AP]M$`)
	for _, m := range []map[string]any{w, g} {
		if s, _ := m["stopped"].(string); date.MatchString(s) {
			m["stopped"] = "DATE"
		}
	}
	for k := range w {
		if a, b := fmt.Sprint(w[k]), fmt.Sprint(g[k]); a != b {
			t.Errorf("%s:\nsupervisord: %s\n    hostctl: %s", k, a, b)
		}
	}
	if len(g) != len(w) {
		t.Errorf("answers: supervisord %v, hostctl %v", w, g)
	}
}

func writeToken(t *testing.T, token string) string {
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pythonXMLRPC is run by Debian's python3 with the TCP URL: it reads the
// API with xmlrpc.client as Datadog's check and supervisorctl do, and
// prints what it found as JSON: type names per field.
const pythonXMLRPC = `
import json, sys, xmlrpc.client
s = xmlrpc.client.ServerProxy(sys.argv[1])
def types(d): return {k: type(v).__name__ for k, v in d.items()}
out = {}
out["all"] = [types(i) for i in s.supervisor.getAllProcessInfo()]
out["names"] = [(i["group"], i["name"], i["statename"], i["state"]) for i in s.supervisor.getAllProcessInfo()]
web = s.supervisor.getProcessInfo("web")
out["web"] = types(web)
out["web_values"] = web
out["web_alias"] = s.supervisor.getProcessInfo("web:web")["pid"] == web["pid"]
out["multicall"] = s.system.multicall([
    {"methodName": "supervisor.getAPIVersion", "params": []},
    {"methodName": "supervisor.getProcessInfo", "params": ["web"]},
    {"methodName": "supervisor.nope", "params": []},
    {"methodName": "system.multicall", "params": [[]]},
    {"params": []},
])
out["methods"] = s.system.listMethods()
out["sig"] = s.system.methodSignature("supervisor.startProcess")
out["state"] = s.supervisor.getState()
out["tail"] = s.supervisor.tailProcessStdoutLog("web", 0, 5)
try:
    s.supervisor.getProcessInfo("nope")
except xmlrpc.client.Fault as f:
    out["fault"] = [f.faultCode, f.faultString]
print(json.dumps(out))
`

func TestPythonXMLRPCClient(t *testing.T) {
	d, _, _, addr, token := startSupervisordAPI(t)
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", pythonXMLRPC, "http://ops:"+token+"@"+addr+"/RPC2").CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	var got struct {
		All       []map[string]string
		Names     [][]any
		Web       map[string]string
		WebValues map[string]any `json:"web_values"`
		WebAlias  bool           `json:"web_alias"`
		Multicall []any
		Methods   []string
		Sig       []string
		State     map[string]any
		Tail      []any
		Fault     []any
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// supervisord's getProcessInfo, field for field, with its types.
	want := map[string]string{
		"name": "str", "group": "str", "start": "int", "stop": "int", "now": "int", "state": "int",
		"statename": "str", "spawnerr": "str", "exitstatus": "int", "logfile": "str",
		"stdout_logfile": "str", "stderr_logfile": "str", "pid": "int", "description": "str",
	}
	if fmt.Sprint(got.Web) != fmt.Sprint(want) {
		t.Errorf("getProcessInfo field types:\n got %v\nwant %v", got.Web, want)
	}
	if len(got.All) != 4 {
		t.Errorf("getAllProcessInfo: %d processes, want 4", len(got.All))
	}
	for _, a := range got.All {
		if fmt.Sprint(a) != fmt.Sprint(want) {
			t.Errorf("getAllProcessInfo field types: %v", a)
		}
	}
	if fmt.Sprint(got.Names) != "[[crash crash STOPPED 0] [manual manual STOPPED 0] [ticker ticker RUNNING 20] [web web RUNNING 20]]" {
		t.Errorf("getAllProcessInfo order and states: %v", got.Names)
	}
	w := got.WebValues
	st := d.status(t)["web"]
	if w["pid"] != float64(st.PID) || w["state"] != float64(20) || w["statename"] != "RUNNING" || w["group"] != "web" ||
		w["stdout_logfile"] != st.StdoutLog || w["logfile"] != st.StdoutLog || w["stderr_logfile"] != st.StderrLog ||
		w["start"] != float64(st.StartedAt.Unix()) || w["spawnerr"] != "" ||
		!regexp.MustCompile(`^pid \d+, uptime \d:\d\d:\d\d$`).MatchString(w["description"].(string)) {
		t.Errorf("getProcessInfo(web) = %v; hostctl status: %+v", w, st)
	}
	if !got.WebAlias {
		t.Errorf("web:web is not web")
	}
	mc := fmt.Sprint(got.Multicall)
	for _, part := range []string{"3.0", "description:pid ", "map[faultCode:1 faultString:UNKNOWN_METHOD]",
		"map[faultCode:2 faultString:INCORRECT_PARAMETERS: Recursive system.multicall forbidden]",
		"map[faultCode:2 faultString:INCORRECT_PARAMETERS: No methodName]"} {
		if !strings.Contains(mc, part) {
			t.Errorf("multicall answer lacks %q: %s", part, mc)
		}
	}
	for _, m := range []string{"supervisor.getAllProcessInfo", "supervisor.getVersion", "supervisor.reloadConfig", "system.multicall"} {
		if !strings.Contains(fmt.Sprint(got.Methods), m) {
			t.Errorf("listMethods lacks %s: %v", m, got.Methods)
		}
	}
	if fmt.Sprint(got.Sig) != "[boolean string boolean]" {
		t.Errorf("methodSignature(startProcess) = %v", got.Sig)
	}
	if fmt.Sprint(got.State) != "map[statecode:1 statename:RUNNING]" {
		t.Errorf("getState = %v", got.State)
	}
	if len(got.Tail) != 3 || got.Tail[2] != true {
		t.Errorf("tailProcessStdoutLog(web, 0, 5) = %v (want overflow)", got.Tail)
	}
	if fmt.Sprint(got.Fault) != "[10 BAD_NAME: nope]" {
		t.Errorf("getProcessInfo(nope) fault = %v", got.Fault)
	}
}

// TestSupervisorctlInstances: a program with instances is a supervisord
// group of processes (numprocs): status shows GROUP:NAME, GROUP:* names
// them all, and going from 2 instances to 3 is a changed group whose new
// process avail lists before update adds it.
func TestSupervisorctlInstances(t *testing.T) {
	d, unix, _, _, _ := startSupervisordAPI(t)
	b, err := os.ReadFile(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	pool := func(n int) string {
		return fmt.Sprintf("\n[program.pool]\ncommand = [\"sleep\", \"1000\"]\ninstances = %d\nstart_secs = \"0.3s\"\n", n)
	}
	if err := os.WriteFile(d.cfg, append(b, pool(2)...), 0o644); err != nil {
		t.Fatal(err)
	}
	unix.expect(t, 0, []string{"reread"}, `^pool: available$`)
	unix.expect(t, 0, []string{"update"}, `^pool: added process group$`)
	if r := d.hostctl(t, "start", "pool"); r.code != 0 {
		t.Fatalf("hostctl start pool: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	unix.expect(t, 0, []string{"status", "pool:*"}, `^pool:pool_0 +RUNNING +pid \d+`, `^pool:pool_1 +RUNNING +pid \d+`)
	unix.expect(t, 0, []string{"stop", "pool:pool_1"}, `^pool:pool_1: stopped$`)
	unix.expect(t, 0, []string{"start", "pool:*"}, `^pool:pool_1: started$`)
	unix.expect(t, 0, []string{"restart", "pool:*"}, `^pool:pool_0: stopped$`, `^pool:pool_1: started$`)
	pid0 := d.status(t)["pool_0"].PID

	if err := os.WriteFile(d.cfg, append(b, pool(3)...), 0o644); err != nil {
		t.Fatal(err)
	}
	unix.expect(t, 0, []string{"reread"}, `^pool: changed$`)
	unix.expect(t, 0, []string{"avail"}, `^pool:pool_2 +avail `, `^pool:pool_0 +in use `)
	unix.expect(t, 0, []string{"update"}, `^pool: updated process group$`)
	if r := d.hostctl(t, "start", "pool"); r.code != 0 {
		t.Fatalf("hostctl start pool: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	unix.expect(t, 0, []string{"status", "pool:*"}, `^pool:pool_0 +RUNNING`, `^pool:pool_1 +RUNNING`, `^pool:pool_2 +RUNNING`)
	if got := d.status(t)["pool_0"].PID; got != pid0 {
		t.Logf("pool_0 restarted by update (%d -> %d), as supervisord restarts a changed group", pid0, got)
	}
}
