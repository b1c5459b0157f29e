package e2e

// Issue 19's admin API attacks, each made by a real unprivileged user
// (adminAppUser) against a real `hostctl run`: a read-only token used for
// writes, DNS rebinding through the Host header, what the public health
// answers tell, terminal escapes in program output, a readLog at offset
// MinInt64, and a plain-HTTP admin listener on the network.

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/supervisord/xmlrpc"
)

// pythonRPC makes the XML-RPC calls read as JSON from stdin ([[method,
// args...], ...]) at the server URL argv[1] (with the CA file argv[2] for
// https) and prints, for each, ["ok", value] or ["fault", code, string],
// or ["error", text] when no XML-RPC answer came.
const pythonRPC = `
import json, ssl, sys, xmlrpc.client
ctx = ssl.create_default_context(cafile=sys.argv[2]) if len(sys.argv) > 2 else None
s = xmlrpc.client.ServerProxy(sys.argv[1], context=ctx) if ctx else xmlrpc.client.ServerProxy(sys.argv[1])
out = []
for c in json.load(sys.stdin):
    f = s
    for part in c[0].split("."):
        f = getattr(f, part)
    try:
        v = f(*c[1:])
        out.append(["ok", v if isinstance(v, (str, int, bool)) else json.loads(json.dumps(v, default=str))])
    except xmlrpc.client.Fault as e:
        out.append(["fault", e.faultCode, e.faultString])
    except Exception as e:
        out.append(["error", repr(e)])
print(json.dumps(out))
`

// rpcAsAppUser makes calls as adminAppUser with Python's xmlrpc.client.
func rpcAsAppUser(t *testing.T, url, caFile string, calls ...[]any) [][]any {
	t.Helper()
	in, _ := json.Marshal(calls)
	args := []string{"-c", pythonRPC, url}
	if caFile != "" {
		args = append(args, caFile)
	}
	out := asAppUser(t, string(in), "python3", args...)
	var res [][]any
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != len(calls) {
		t.Fatalf("python: %v: %s", err, out)
	}
	return res
}

const (
	adminToken = "admin-token-0123456789abcdef"
	readToken  = "read-only-token-0123456789abcdef"
)

// TestReadOnlyTokenCannotWrite: the holder of [admin] read_token_file (a
// monitoring system; here the app's user) reads everything a monitor
// reads, over REST, XML-RPC and supervisorctl, and every write it tries
// is refused as read-only: nothing is started, stopped, signalled or
// reloaded. The admin token still writes.
func TestReadOnlyTokenCannotWrite(t *testing.T) {
	dir := t.TempDir()
	adminFile := writeSecret(t, dir, "admin.token", adminToken)
	readFile := writeSecret(t, dir, "read.token", readToken)
	port := freePort(t)
	d := startDaemon(t, "file = true\n"+webProgram, daemonOpts{admin: fmt.Sprintf("listen = \"127.0.0.1:%d\"\ntoken_file = %q\nread_token_file = %q\n", port, adminFile, readFile)})
	d.waitLog(t, 10*time.Second, `"program":"web"`, `"to":"RUNNING"`)
	before := d.status(t)["web"]
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	bearer := map[string]string{"Authorization": "Bearer " + readToken, "Content-Type": "application/json"}

	t.Run("REST writes", func(t *testing.T) {
		var reqs []httpReq
		for _, w := range []struct{ path, body string }{
			{"/v1/start", `{"names":["web"]}`},
			{"/v1/stop", `{"names":["web"]}`},
			{"/v1/restart", `{"names":["all"]}`},
			{"/v1/signal", `{"names":["web"],"signal":"USR1"}`},
			{"/v1/reload", `{}`},
			{"/v1/drain", `{}`},
			{"/v1/undrain", `{}`},
			{"/v1/alerts/test", `{}`},
		} {
			reqs = append(reqs, httpReq{Method: "POST", URL: base + w.path, Headers: bearer, Body: w.body})
		}
		for i, r := range httpAsAppUser(t, "", reqs) {
			if r.Status != 403 || !strings.Contains(r.Body, "read-only") {
				t.Errorf("POST %s with the read-only token: %d %s; want 403 saying the token is read-only", reqs[i].URL, r.Status, r.Body)
			}
		}
	})

	t.Run("REST reads", func(t *testing.T) {
		var reqs []httpReq
		for _, p := range []string{"/v1/programs", "/v1/programs/web", "/v1/programs/web/log?lines=5", "/metrics", "/v1/alerts", "/v1/history", "/v1/proxy"} {
			reqs = append(reqs, httpReq{Method: "GET", URL: base + p, Headers: bearer})
		}
		for i, r := range httpAsAppUser(t, "", reqs) {
			if r.Status != 200 {
				t.Errorf("GET %s with the read-only token: %d %s; want 200", reqs[i].URL, r.Status, r.Body)
			}
		}
	})

	t.Run("XML-RPC", func(t *testing.T) {
		url := fmt.Sprintf("http://monitor:%s@127.0.0.1:%d/RPC2", readToken, port)
		reads := [][]any{
			{"supervisor.getAllProcessInfo"}, {"supervisor.getProcessInfo", "web"}, {"supervisor.getState"},
			{"system.listMethods"}, {"supervisor.getAPIVersion"}, {"supervisor.readLog", -100, 0},
			{"supervisor.readProcessStdoutLog", "web", 0, 100}, {"supervisor.tailProcessStdoutLog", "web", 0, 100},
			{"supervisor.getAllConfigInfo"}, {"system.multicall", []any{map[string]any{"methodName": "supervisor.getState", "params": []any{}}}},
		}
		for i, r := range rpcAsAppUser(t, url, "", reads...) {
			if r[0] != "ok" {
				t.Errorf("%v with the read-only token: %v; want an answer", reads[i], r)
			}
		}
		writes := [][]any{
			{"supervisor.stopProcess", "web"}, {"supervisor.startProcess", "web"}, {"supervisor.signalProcess", "web", "USR1"},
			{"supervisor.stopAllProcesses"}, {"supervisor.startAllProcesses"}, {"supervisor.signalAllProcesses", "USR1"},
			{"supervisor.stopProcessGroup", "web"}, {"supervisor.startProcessGroup", "web"}, {"supervisor.signalProcessGroup", "web", "USR1"},
			{"supervisor.reloadConfig"}, {"supervisor.addProcessGroup", "web"}, {"supervisor.removeProcessGroup", "web"},
			{"system.multicall", []any{
				map[string]any{"methodName": "supervisor.getState", "params": []any{}},
				map[string]any{"methodName": "supervisor.stopProcess", "params": []any{"web"}},
			}},
		}
		for i, r := range rpcAsAppUser(t, url, "", writes...) {
			if r[0] != "fault" || !strings.Contains(fmt.Sprint(r[2]), "read-only") {
				t.Errorf("%v with the read-only token: %v; want a fault saying the token is read-only", writes[i], r)
			}
		}
	})

	t.Run("supervisorctl", func(t *testing.T) {
		bin := lookSupervisorctl(t)
		ctl := []string{"-s", base, "-u", "monitor", "-p", readToken}
		if out := asAppUserCode(t, bin, append(ctl, "status", "web")...); !regexp.MustCompile(`(?m)^web\s+RUNNING`).MatchString(out) {
			t.Errorf("supervisorctl status with the read-only token:\n%s", out)
		}
		if out := asAppUserCode(t, bin, append(ctl, "stop", "web")...); !strings.Contains(out, "read-only") {
			t.Errorf("supervisorctl stop with the read-only token does not say it is read-only:\n%s", out)
		}
	})

	t.Run("hostctl CLI", func(t *testing.T) {
		if r := runHostctl(t, "status", "--url", base, "--token-file", readFile); r.code != 0 || !strings.Contains(r.stdout, "RUNNING") {
			t.Errorf("status with the read-only token: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r := runHostctl(t, "restart", "web", "--url", base, "--token-file", readFile); r.code != 1 || !strings.Contains(r.stderr, "read-only") {
			t.Errorf("restart with the read-only token: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	after := d.status(t)["web"]
	if after.PID != before.PID || after.Restarts != 0 || after.State != before.State {
		t.Errorf("web changed under the read-only token: %s pid %d (was %d), %d restarts", after.State, after.PID, before.PID, after.Restarts)
	}
	if r := d.hostctl(t, "tail", "web"); r.code != 0 || strings.Contains(r.stdout, "got-usr1") {
		t.Errorf("web got a signal from the read-only token (exit %d): %q", r.code, r.stdout)
	}
	// The admin token writes, on the same listener.
	if r := runHostctl(t, "signal", "USR1", "web", "--url", base, "--token-file", adminFile); r.code != 0 {
		t.Errorf("signal with the admin token: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := httpAsAppUser(t, "", []httpReq{{Method: "POST", URL: base + "/v1/signal", Body: `{"names":["web"],"signal":"USR1"}`,
		Headers: map[string]string{"Authorization": "Bearer " + adminToken, "Content-Type": "application/json"}}}); r[0].Status != 200 {
		t.Errorf("POST /v1/signal with the admin token: %d %s", r[0].Status, r[0].Body)
	}
}

// asAppUserCode runs a command as adminAppUser that may exit non-zero, and
// returns its stdout and stderr.
func asAppUserCode(t *testing.T, name string, args ...string) string {
	t.Helper()
	return asAppUser(t, "", "/bin/sh", append([]string{"-c", `"$@" 2>&1; true`, "sh", name}, args...)...)
}

// TestHostHeaderRebindingRefused: a page on evil.example whose name is
// rebound to 127.0.0.1 reaches the TCP admin listener as a same-origin
// request with Host: evil.example; it is refused, whatever it carries.
// The listener's own names pass: loopback addresses, localhost, and
// [admin] names.
func TestHostHeaderRebindingRefused(t *testing.T) {
	dir := t.TempDir()
	adminFile := writeSecret(t, dir, "admin.token", adminToken)
	port := freePort(t)
	startDaemon(t, webProgram, daemonOpts{admin: fmt.Sprintf("listen = \"127.0.0.1:%d\"\ntoken_file = %q\nnames = [\"admin.example.org\"]\n", port, adminFile)})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := fmt.Sprint(port)
	for _, tc := range []struct {
		host, path string
		want       int
	}{
		{"evil.example:" + p, "/v1/programs", 403},
		{"evil.example", "/v1/programs", 403},
		{"evil.example:" + p, "/", 403},
		{"evil.example:" + p, "/healthz", 403},
		{"evil.example:" + p, "/metrics", 403},
		{"127.0.0.1:" + p, "/v1/programs", 200},
		{"localhost:" + p, "/v1/programs", 200},
		{"LocalHost", "/v1/programs", 200},
		{"admin.example.org:" + p, "/v1/programs", 200},
	} {
		r := httpAsAppUser(t, "", []httpReq{{Method: "GET", URL: base + tc.path, Headers: map[string]string{"Host": tc.host, "Authorization": "Bearer " + adminToken}}})[0]
		if r.Status != tc.want {
			t.Errorf("GET %s with Host: %s: %d, want %d: %s", tc.path, tc.host, r.Status, tc.want, r.Body)
		}
		if tc.want == 403 && !strings.Contains(r.Body, "Host") {
			t.Errorf("GET %s with Host: %s: the refusal does not name the Host header: %s", tc.path, tc.host, r.Body)
		}
	}
}

// TestPublicHealthIsTerse: what anyone may ask, /healthz on the TCP admin
// listener and the proxy's health_path, answers up or down and no more:
// no program names, states, pids or version. The token holder still gets
// the pid and version from /healthz.
func TestPublicHealthIsTerse(t *testing.T) {
	dir := t.TempDir()
	adminFile := writeSecret(t, dir, "admin.token", adminToken)
	port, listen, up := freePort(t), freePort(t), freePort(t)
	serveUpstream(t, up)
	d := startDaemon(t, upstreamApp(up)+proxySection(listen, up)+"health_path = \"/.hostctl/health\"\n",
		daemonOpts{admin: fmt.Sprintf("listen = \"127.0.0.1:%d\"\ntoken_file = %q\n", port, adminFile)})
	d.waitLog(t, 30*time.Second, `"program":"app"`, `"to":"RUNNING"`)
	admin := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	health := fmt.Sprintf("http://127.0.0.1:%d/.hostctl/health", listen)
	leaks := func(body string) []string {
		var out []string
		for _, s := range []string{"app", "RUNNING", "STOPPED", "pid", "version", fmt.Sprint(up), "upstream"} {
			if strings.Contains(body, s) {
				out = append(out, s)
			}
		}
		return out
	}

	r := httpAsAppUser(t, "", []httpReq{{Method: "GET", URL: admin}, {Method: "GET", URL: health}})
	if r[0].Status != 200 || strings.TrimSpace(r[0].Body) != `{`+"\n"+`  "ok": true`+"\n}" {
		t.Errorf("GET /healthz without a token: %d %q, want 200 {\"ok\": true} only", r[0].Status, r[0].Body)
	}
	if r[1].Status != 200 || len(leaks(r[1].Body)) > 0 {
		t.Errorf("GET health_path while up: %d %q, tells %q", r[1].Status, r[1].Body, leaks(r[1].Body))
	}
	withToken := httpAsAppUser(t, "", []httpReq{{Method: "GET", URL: admin, Headers: map[string]string{"Authorization": "Bearer " + adminToken}}})[0]
	var h struct {
		OK  bool `json:"ok"`
		PID int  `json:"pid"`
	}
	if json.Unmarshal([]byte(withToken.Body), &h); !h.OK || h.PID != d.cmd.Process.Pid {
		t.Errorf("GET /healthz with the token: %q, want ok and hostctl's pid %d", withToken.Body, d.cmd.Process.Pid)
	}

	if r := d.hostctl(t, "stop", "app"); r.code != 0 {
		t.Fatalf("stop app: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	down := httpAsAppUser(t, "", []httpReq{{Method: "GET", URL: health}})[0]
	if down.Status != 503 || len(leaks(down.Body)) > 0 {
		t.Errorf("GET health_path while app is stopped: %d %q, tells %q", down.Status, down.Body, leaks(down.Body))
	}
	if r := d.hostctl(t, "drain"); r.code != 0 {
		t.Fatalf("drain: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	drained := httpAsAppUser(t, "", []httpReq{{Method: "GET", URL: health}})[0]
	if drained.Status != 503 || !strings.Contains(drained.Body, "draining") || strings.ContainsAny(drained.Body, "0123456789") {
		t.Errorf("GET health_path while draining: %d %q, want 503 saying draining (and not since when)", drained.Status, drained.Body)
	}
}

// escapePayload is what a hostile program prints: colours, a window
// title (OSC), a clear screen through the 8-bit CSI (U+009B), a DCS
// string, a bell, a carriage return that would hide what came before it,
// a backspace and a NUL, around text that must survive (with its tab).
const escapePayload = "A\x1b[31mred\x1b[0m\x1b]0;pwned-title\x07\u009b2J\x1bP1;2qdcs\x1b\\B\tT\rZ\x08\x07\x00end\x1b[?1049h\x1bc!"

// TestControlCharactersStripped: a program, running as the app's user,
// prints terminal escapes; `hostctl tail` and `hostctl status` (its last
// stderr line) show the text without them, while the log file keeps
// every byte.
func TestControlCharactersStripped(t *testing.T) {
	uid, _ := appUser(t)
	payDir, err := os.MkdirTemp("", "hcpay")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(payDir) })
	os.Chmod(payDir, 0o755)
	payload := filepath.Join(payDir, "payload")
	if err := os.WriteFile(payload, []byte(escapePayload+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, fmt.Sprintf(`
[program.evil]
command = ["/bin/sh", "-c", "cat %[1]s; cat %[1]s >&2; [ \"$(id -u)\" = %[2]s ] && exit 3"]
user = %[3]q
directory = "/"
start_secs = "300ms"
start_retries = 0
fatal_retry = "never"
`, payload, uid, adminAppUser), daemonOpts{})
	d.waitLog(t, 30*time.Second, `"program":"evil"`, `"to":"FATAL"`)

	const want = "AredB\tTZend!"
	clean := func(what, out string) {
		t.Helper()
		for _, r := range out {
			if r != '\n' && r != '\t' && (unicode.IsControl(r) || r == 0x1b) {
				t.Errorf("%s prints control character %U:\n%q", what, r, out)
				return
			}
		}
		for _, s := range []string{"pwned-title", "dcs", "2J", "1049"} {
			if strings.Contains(out, s) {
				t.Errorf("%s prints the inside of an escape sequence (%q):\n%q", what, s, out)
			}
		}
	}
	for _, stream := range []string{"stdout", "stderr"} {
		r := d.hostctl(t, "tail", "evil", stream)
		clean("hostctl tail evil "+stream, r.stdout)
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("hostctl tail evil %s: %q, want the text %q", stream, r.stdout, want)
		}
	}
	r := d.hostctl(t, "status", "evil")
	clean("hostctl status", r.stdout)
	if !strings.Contains(r.stdout, "AredB TZend!") {
		t.Errorf("hostctl status: %q, want the last stderr line as text (a tab as a space) %q", r.stdout, "AredB TZend!")
	}
	// The log file itself is what the program wrote.
	st := d.status(t)["evil"]
	b, err := os.ReadFile(st.StdoutLog)
	if err != nil || !strings.Contains(string(b), escapePayload) {
		t.Errorf("the log file %s lost bytes: %q, %v", st.StdoutLog, b, err)
	}
}

// TestXMLRPCExtremeOffsets: readLog and the process log reads at offsets
// and lengths of MinInt64 and MaxInt64 answer (supervisord's readFile
// and tailFile, with Python's unbounded integers) instead of crashing
// the request.
func TestXMLRPCExtremeOffsets(t *testing.T) {
	d := startDaemon(t, "file = true\n[program.web]\ncommand = [\"sh\", \"-c\", \"echo hello-log; exec sleep 1000\"]\nstart_secs = \"0.3s\"\n", daemonOpts{})
	d.waitLog(t, 10*time.Second, `"program":"web"`, `"to":"RUNNING"`)
	// EncodeCall keeps to 32 bits: "MIN" and "MAX" become <i8> values.
	call := func(method string, params ...any) string {
		b, err := xmlrpc.EncodeCall(method, params...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.NewReplacer(
			"<value><string>MIN</string></value>", fmt.Sprintf("<value><i8>%d</i8></value>", int64(math.MinInt64)),
			"<value><string>MAX</string></value>", fmt.Sprintf("<value><i8>%d</i8></value>", int64(math.MaxInt64)),
		).Replace(string(b))
	}
	for _, tc := range []struct {
		name, body string
		fault      int    // 0: an answer
		has        string // in the answer
	}{
		{"readLog MinInt64", call("supervisor.readLog", "MIN", 0), 0, `"msg":"hostctl started"`},
		{"readLog MaxInt64", call("supervisor.readLog", "MAX", 0), 0, ""},
		{"readLog length MaxInt64", call("supervisor.readLog", 0, "MAX"), 0, `"msg":"hostctl started"`},
		{"readLog MinInt64 with a length", call("supervisor.readLog", "MIN", 5), 3, ""},
		{"readLog length MinInt64", call("supervisor.readLog", 0, "MIN"), 3, ""},
		{"readProcessStdoutLog MinInt64", call("supervisor.readProcessStdoutLog", "web", "MIN", 0), 0, "hello-log"},
		{"readProcessStdoutLog MaxInt64", call("supervisor.readProcessStdoutLog", "web", "MAX", "MAX"), 0, ""},
		{"tailProcessStdoutLog MaxInt64", call("supervisor.tailProcessStdoutLog", "web", "MAX", "MAX"), 0, ""},
		{"tailProcessStdoutLog MinInt64", call("supervisor.tailProcessStdoutLog", "web", "MIN", "MIN"), 0, ""},
		{"tailProcessStdoutLog 0 MaxInt64", call("supervisor.tailProcessStdoutLog", "web", 0, "MAX"), 0, "hello-log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := rpcPost(t, d, tc.body)
			if tc.fault != 0 {
				if f, ok := err.(*xmlrpc.Fault); !ok || f.Code != tc.fault {
					t.Errorf("got %v, %v; want fault %d", v, err, tc.fault)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v", err)
			}
			if !strings.Contains(fmt.Sprint(v), tc.has) {
				t.Errorf("answer %.300q lacks %q", fmt.Sprint(v), tc.has)
			}
		})
	}
	if v, err := rpcPost(t, d, call("supervisor.getAPIVersion")); err != nil || v != "3.0" {
		t.Errorf("after the extreme offsets: getAPIVersion = %v, %v", v, err)
	}
}

// TestNonLoopbackPlainHTTPAdminRefused: an admin listener reachable from
// the network without TLS would send the token in clear: hostctl check
// and hostctl run refuse it, saying what to do, unless the config says
// insecure = true. TLS, or a loopback address, is accepted.
func TestNonLoopbackPlainHTTPAdminRefused(t *testing.T) {
	dir := t.TempDir()
	tok := writeSecret(t, dir, "admin.token", adminToken)
	check := func(admin string) result {
		t.Helper()
		sub, err := os.MkdirTemp(dir, "c")
		if err != nil {
			t.Fatal(err)
		}
		return runHostctl(t, "check", "-c", writeConfig(t, sub, fmt.Sprintf("token_file = %q\n%s", tok, admin), webProgram))
	}
	for _, listen := range []string{"0.0.0.0:9001", ":9001", "[::]:9001", "192.0.2.10:9001", "admin.example.org:9001"} {
		r := check(fmt.Sprintf("listen = %q\n", listen))
		if r.code != 1 || !strings.Contains(r.stderr, "admin.listen") || !strings.Contains(r.stderr, "insecure = true") || !strings.Contains(r.stderr, "tls") {
			t.Errorf("check with listen %s and no TLS: exit %d, want 1 naming admin.listen, TLS and insecure = true:\n%s%s", listen, r.code, r.stdout, r.stderr)
		}
	}
	for _, admin := range []string{
		"listen = \"127.0.0.1:9001\"\n",
		"listen = \"127.0.0.9:9001\"\n",
		"listen = \"localhost:9001\"\n",
		"listen = \"[::1]:9001\"\n",
		"listen = \"0.0.0.0:9001\"\ninsecure = true\n",
		"listen = \"192.0.2.10:9001\"\ntls = \"internal\"\n",
	} {
		if r := check(admin); r.code != 0 {
			t.Errorf("check with %q: exit %d, want 0:\n%s%s", admin, r.code, r.stdout, r.stderr)
		}
	}
	// hostctl run refuses it before it starts anything (192.0.2.0/24 is
	// never assigned: nothing would listen, whatever happens).
	cfg := writeConfig(t, dir, fmt.Sprintf("listen = \"192.0.2.10:9001\"\ntoken_file = %q\n", tok), webProgram)
	if r := runHostctl(t, "run", "-c", cfg); r.code != 1 || !strings.Contains(r.stderr, "insecure = true") {
		t.Errorf("run with a plain-HTTP listener on the network: exit %d, want 1 saying what to do:\n%s", r.code, r.stderr)
	}
}
