package e2e

// The on-call loop of the Django example: alerts from the real hostctl to
// real receivers on 127.0.0.1 (a PagerDuty Events v2 endpoint served here,
// Debian's aiosmtpd for the email).

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pdEvent is a PagerDuty Events API v2 event as the receiver got it.
type pdEvent struct {
	RoutingKey  string `json:"routing_key"`
	EventAction string `json:"event_action"`
	DedupKey    string `json:"dedup_key"`
	Payload     *struct {
		Summary  string `json:"summary"`
		Source   string `json:"source"`
		Severity string `json:"severity"`
	} `json:"payload"`
	at time.Time // when it arrived
}

// pdReceiver is a PagerDuty Events v2 endpoint on 127.0.0.1 that checks
// each event against the spec and keeps the good ones.
type pdReceiver struct {
	url        string
	routingKey string
	host       string // the payload's expected source
	mu         sync.Mutex
	cond       *sync.Cond
	events     []pdEvent // guarded by mu
	bad        []string  // guarded by mu: events that broke the spec
}

func startPagerDuty(t *testing.T, routingKey, host string) *pdReceiver {
	t.Helper()
	r := &pdReceiver{routingKey: routingKey, host: host}
	r.cond = sync.NewCond(&r.mu)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.url = "http://" + ln.Addr().String() + "/v2/enqueue"
	srv := &http.Server{Handler: http.HandlerFunc(r.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *pdReceiver) serve(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	var e pdEvent
	problem := ""
	switch {
	case req.Method != http.MethodPost || req.URL.Path != "/v2/enqueue":
		problem = req.Method + " " + req.URL.Path
	case !strings.HasPrefix(req.Header.Get("Content-Type"), "application/json"):
		problem = "Content-Type " + req.Header.Get("Content-Type")
	case json.Unmarshal(b, &e) != nil:
		problem = "not JSON"
	case e.RoutingKey != r.routingKey:
		problem = "routing_key " + strconv.Quote(e.RoutingKey)
	case e.EventAction != "trigger" && e.EventAction != "resolve":
		problem = "event_action " + strconv.Quote(e.EventAction)
	case !strings.HasPrefix(e.DedupKey, r.host+"/"):
		problem = "dedup_key " + strconv.Quote(e.DedupKey) + " does not start with the host name"
	case e.EventAction == "trigger" && e.Payload == nil:
		problem = "a trigger without payload"
	case e.EventAction == "trigger" && (e.Payload.Summary == "" || e.Payload.Source != r.host ||
		!slices.Contains([]string{"critical", "error", "warning", "info"}, e.Payload.Severity)):
		problem = fmt.Sprintf("payload summary %q source %q severity %q", e.Payload.Summary, e.Payload.Source, e.Payload.Severity)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if problem != "" {
		r.bad = append(r.bad, problem+": "+trim(string(b)))
		http.Error(w, `{"status":"invalid event","message":"`+problem+`"}`, http.StatusBadRequest)
		return
	}
	e.at = time.Now()
	r.events = append(r.events, e)
	r.cond.Broadcast()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"status":"success","message":"Event processed","dedup_key":%q}`, e.DedupKey)
}

// wait returns the first event (from index since) with action for the
// alert key (e.g. "fatal:gunicorn"), waiting up to timeout.
func (r *pdReceiver) wait(since int, timeout time.Duration, action, key string) (pdEvent, error) {
	timer := time.AfterFunc(timeout, func() { r.mu.Lock(); r.cond.Broadcast(); r.mu.Unlock() })
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		for ; since < len(r.events); since++ {
			if e := r.events[since]; e.EventAction == action && e.DedupKey == r.host+"/"+key {
				return e, nil
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, e := range r.events {
				got = append(got, e.EventAction+" "+e.DedupKey)
			}
			return pdEvent{}, fmt.Errorf("no PagerDuty %s of %s within %s (received: %s; refused: %q)", action, key, timeout, strings.Join(got, ", "), r.bad)
		}
		r.cond.Wait()
	}
}

func (r *pdReceiver) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func (r *pdReceiver) refused() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bad)
}

// smtpCapture prints each message aiosmtpd receives as one JSON line.
const smtpCapture = `import base64, json

class Capture:
    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
            "data": base64.b64encode(envelope.original_content).decode()}), flush=True)
        return "250 OK"
`

// mailMsg is one message the SMTP server received, decoded.
type mailMsg struct {
	From, Subject, Body string
	To                  []string
	at                  time.Time
}

// smtpReceiver is Debian's aiosmtpd on 127.0.0.1 (python3-aiosmtpd, from
// scripts/test-deps.sh), its messages read from its stdout.
type smtpReceiver struct {
	port int
	mu   sync.Mutex
	cond *sync.Cond
	msgs []mailMsg // guarded by mu
	done bool      // guarded by mu: aiosmtpd exited
}

func startSMTP(t *testing.T, port int) *smtpReceiver {
	t.Helper()
	const python = "/usr/bin/python3" // Debian's, where python3-aiosmtpd is installed
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "capture.py"), []byte(smtpCapture), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &smtpReceiver{port: port}
	s.cond = sync.NewCond(&s.mu)
	// -d logs "Server is listening on ..." to stderr: the sign it is ready.
	cmd := exec.Command(python, "-m", "aiosmtpd", "-n", "-d", "-l", "127.0.0.1:"+strconv.Itoa(port), "-c", "capture.Capture")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "PYTHONPATH="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	outDone, errDone := make(chan struct{}), make(chan struct{})
	var errText strings.Builder // written by the stderr reader until errDone
	go func() {
		defer close(outDone)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			m, err := decodeMail(sc.Bytes())
			s.mu.Lock()
			if err != nil {
				m = mailMsg{Subject: "undecodable: " + err.Error()}
			}
			m.at = time.Now()
			s.msgs = append(s.msgs, m)
			s.cond.Broadcast()
			s.mu.Unlock()
		}
		s.mu.Lock()
		s.done = true
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	go func() {
		defer close(errDone)
		sc := bufio.NewScanner(stderr)
		once := sync.OnceFunc(func() { close(ready) })
		for sc.Scan() {
			errText.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Server is listening") {
				once()
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-outDone
		<-errDone
		cmd.Wait()
	})
	select {
	case <-ready:
		return s
	case <-errDone:
		t.Fatalf("%s -m aiosmtpd exited before listening (run scripts/test-deps.sh: python3-aiosmtpd):\n%s", python, errText.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("aiosmtpd did not listen on port %d within 20s", port)
	}
	return nil
}

func decodeMail(line []byte) (mailMsg, error) {
	var c struct {
		From string   `json:"from"`
		To   []string `json:"to"`
		Data string   `json:"data"`
	}
	if err := json.Unmarshal(line, &c); err != nil {
		return mailMsg{}, err
	}
	raw, err := base64.StdEncoding.DecodeString(c.Data)
	if err != nil {
		return mailMsg{}, err
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return mailMsg{}, err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return mailMsg{}, err
	}
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return mailMsg{}, err
	}
	return mailMsg{From: c.From, To: c.To, Subject: subject, Body: string(b)}, nil
}

func (s *smtpReceiver) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// wait returns the first message (from index since) whose subject holds
// all of words, waiting up to timeout.
func (s *smtpReceiver) wait(since int, timeout time.Duration, words ...string) (mailMsg, error) {
	timer := time.AfterFunc(timeout, func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
	next:
		for ; since < len(s.msgs); since++ {
			for _, w := range words {
				if !strings.Contains(s.msgs[since].Subject, w) {
					continue next
				}
			}
			return s.msgs[since], nil
		}
		if s.done {
			return mailMsg{}, fmt.Errorf("aiosmtpd exited before a message with %q arrived", words)
		}
		if time.Now().After(deadline) {
			var got []string
			for _, m := range s.msgs {
				got = append(got, strconv.Quote(m.Subject))
			}
			return mailMsg{}, fmt.Errorf("no message with %q in its subject within %s (received: %s)", words, timeout, strings.Join(got, ", "))
		}
		s.cond.Wait()
	}
}

// onCallConfig writes dst: the config at src with lines added at the top
// of some of its tables (table header -> lines), then extra appended (an
// [alerts] block, a test program).
func onCallConfig(t *testing.T, src, dst string, add map[string]string, extra string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for header, lines := range add {
		h := "\n" + header + "\n"
		if strings.Count(s, h) != 1 {
			t.Fatalf("%s has not exactly one %s table to add %q to", src, header, lines)
		}
		s = strings.Replace(s, h, h+lines+"\n", 1)
	}
	if err := os.WriteFile(dst, []byte(s+"\n"+extra), 0o644); err != nil {
		t.Fatal(err)
	}
}

// progStatus is one program of `hostctl status --json`.
type progStatus struct {
	Name             string    `json:"name"`
	State            string    `json:"state"`
	PID              int       `json:"pid"`
	StateSince       time.Time `json:"state_since"`
	LastStderr       string    `json:"last_stderr"`
	Tries            int       `json:"tries"`
	MemoryLimit      int64     `json:"memory_limit"`
	MemoryRestarts   int       `json:"memory_restarts"`
	MemoryRestartRSS uint64    `json:"memory_restart_rss"`
	Health           *struct {
		Healthy   bool   `json:"healthy"`
		Restarts  int    `json:"restarts"`
		LastError string `json:"last_error"`
	} `json:"health"`
}

// statusOf runs `hostctl status --json` and returns program name.
func statusOf(cli func(...string) (string, error), name string) (progStatus, error) {
	out, err := cli("status", "--json")
	var st struct {
		Programs []progStatus `json:"programs"`
	}
	if jerr := json.Unmarshal([]byte(out), &st); jerr != nil {
		return progStatus{}, fmt.Errorf("hostctl status --json: %v, %v\n%s", err, jerr, out)
	}
	for _, p := range st.Programs {
		if p.Name == name {
			return p, nil
		}
	}
	return progStatus{}, fmt.Errorf("hostctl status --json: no %s\n%s", name, out)
}

// onCall runs the on-call steps (7a-7d) on the running stack: each
// incident of the seed guide that hostctl handles by itself, and the
// alerts a person gets about it.
func onCall(t *testing.T, d *daemon, s *site, cli func(...string) (string, error), pd *pdReceiver, mailbox *smtpReceiver, secretKey, host string) {
	var fatalTrigger pdEvent
	broken := t.Run("7a broken setting: gunicorn FATAL, paged and mailed", func(t *testing.T) {
		m, pm, mm := d.mark(), pd.mark(), mailbox.mark()
		if err := os.Remove(secretKey); err != nil {
			t.Fatal(err)
		}
		if out, err := cli("restart", "--wait", "0", "gunicorn"); err != nil {
			t.Fatalf("hostctl restart gunicorn: %v\n%s", err, out)
		}
		// 4 starts whose workers cannot boot, with backoff between them.
		if _, err := d.waitState(m, 120*time.Second, "gunicorn", "FATAL"); err != nil {
			t.Fatal(err)
		}
		st, err := statusOf(cli, "gunicorn")
		if err != nil {
			t.Fatal(err)
		}
		if st.State != "FATAL" || st.LastStderr == "" {
			t.Errorf("hostctl status --json: gunicorn %s, last_stderr %q; want FATAL with the reason line", st.State, st.LastStderr)
		}
		out, _ := cli("status") // exit 1: a program is FATAL
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "gunicorn ") {
				line = l
			}
		}
		if !strings.Contains(line, "FATAL") || st.LastStderr == "" || !strings.Contains(line, st.LastStderr) {
			t.Errorf("hostctl status does not show gunicorn FATAL with its last stderr line %q:\n%s", st.LastStderr, out)
		}
		t.Logf("hostctl status: %s", strings.Join(strings.Fields(line), " "))
		fatalTrigger, err = pd.wait(pm, 30*time.Second, "trigger", "fatal:gunicorn")
		if err != nil {
			t.Fatal(err)
		}
		if fatalTrigger.Payload.Severity != "critical" || !strings.Contains(fatalTrigger.Payload.Summary, "gunicorn") {
			t.Errorf("PagerDuty trigger: severity %q summary %q", fatalTrigger.Payload.Severity, fatalTrigger.Payload.Summary)
		}
		t.Logf("FATAL -> PagerDuty trigger at the receiver: %s (%q)", fatalTrigger.at.Sub(st.StateSince).Round(time.Millisecond), fatalTrigger.Payload.Summary)
		msg, err := mailbox.wait(mm, 30*time.Second, "TRIGGER", "gunicorn")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(msg.To, []string{"oncall@example.com"}) || !strings.Contains(msg.Body, "hostctl") {
			t.Errorf("email to %q, body:\n%s", msg.To, msg.Body)
		}
		t.Logf("FATAL -> email at the SMTP server: %s (%q)", msg.at.Sub(st.StateSince).Round(time.Millisecond), msg.Subject)
		// Meanwhile visitors get the error page, not a hang.
		if code, body, err := s.get("/"); err != nil || (code != 502 && code != 503) || !strings.Contains(body, "temporarily unavailable") {
			t.Errorf("GET / with gunicorn FATAL: %d %v %q, want the error page", code, err, trim(body))
		}
	})
	if !broken {
		os.WriteFile(secretKey, []byte("e2e-not-secret\n"), 0o600)
	}

	t.Run("7b fixed: fatal_retry brings it back, resolved", func(t *testing.T) {
		if !broken {
			t.Skip("7a failed")
		}
		m, pm, mm := d.mark(), pd.mark(), mailbox.mark()
		if err := os.WriteFile(secretKey, []byte("e2e-not-secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		// Nobody types a command: the next fatal_retry (15s) starts it.
		running, err := d.waitState(m, 90*time.Second, "gunicorn", "RUNNING")
		if err != nil {
			t.Fatal(err)
		}
		resolve, err := pd.wait(pm, 30*time.Second, "resolve", "fatal:gunicorn")
		if err != nil {
			t.Fatal(err)
		}
		if resolve.DedupKey != fatalTrigger.DedupKey {
			t.Errorf("resolve dedup_key %q, trigger's %q", resolve.DedupKey, fatalTrigger.DedupKey)
		}
		t.Logf("RUNNING -> PagerDuty resolve at the receiver: %s (dedup_key %s)", resolve.at.Sub(running.TS).Round(time.Millisecond), resolve.DedupKey)
		if msg, err := mailbox.wait(mm, 30*time.Second, "RESOLVED", "gunicorn"); err != nil {
			t.Error(err)
		} else {
			t.Logf("RUNNING -> email at the SMTP server: %s (%q)", msg.at.Sub(running.TS).Round(time.Millisecond), msg.Subject)
		}
		if _, err := eventually(30*time.Second, s.hello); err != nil {
			t.Error(err)
		}
	})

	t.Run("7c memory past memory_limit: restarted, alerted", func(t *testing.T) {
		before, ok := d.lastSpawn("memhog")
		if !ok {
			t.Fatal("memhog was never spawned")
		}
		m, pm, mm := d.mark(), pd.mark(), mailbox.mark()
		t0 := time.Now()
		if out, err := cli("signal", "USR1", "memhog"); err != nil {
			t.Fatalf("hostctl signal USR1 memhog: %v\n%s", err, out)
		}
		// Two memory checks, 5 s apart, above the limit: a restart.
		decided, err := d.wait(m, 60*time.Second, "memhog's memory restart", func(e entry) bool {
			return e.Program == "memhog" && strings.Contains(e.Msg, "above memory_limit") && strings.HasSuffix(e.Msg, ": restarting")
		})
		if err != nil {
			t.Fatal(err)
		}
		respawn, err := d.wait(m, 30*time.Second, "memhog spawned again", func(e entry) bool {
			return e.Msg == "spawned" && e.Program == "memhog" && e.PID != before.PID
		})
		if err != nil {
			t.Fatal(err)
		}
		trig, err := pd.wait(pm, 30*time.Second, "trigger", "memory_limit:memhog")
		if err != nil {
			t.Fatal(err)
		}
		// "memhog on HOST was restarted: its memory (130.5MB) stayed above memory_limit (48MB)"
		if p := trig.Payload; p.Severity != "warning" || !strings.Contains(p.Summary, "memory_limit (48MB)") || !strings.Contains(p.Summary, "its memory (") {
			t.Errorf("memory_limit trigger: severity %q summary %q; want the figure and the limit", p.Severity, p.Summary)
		}
		st, err := statusOf(cli, "memhog")
		if err != nil {
			t.Fatal(err)
		}
		if st.MemoryRestarts != 1 || st.MemoryRestartRSS <= 48e6 {
			t.Errorf("memhog: memory_restarts %d, memory_restart_rss %d; want 1 restart above 48MB", st.MemoryRestarts, st.MemoryRestartRSS)
		}
		t.Logf("memory past memory_limit: restart decided %s after it began to grow (%q), new pid %d -> %d %s later; trigger at the receiver %s after the decision: %q",
			decided.TS.Sub(t0).Round(time.Millisecond), decided.Msg, before.PID, respawn.PID, respawn.TS.Sub(decided.TS).Round(time.Millisecond),
			trig.at.Sub(decided.TS).Round(time.Millisecond), trig.Payload.Summary)
		if _, err := mailbox.wait(mm, 30*time.Second, "TRIGGER", "memhog"); err != nil {
			t.Error(err)
		}
		// The new process stays small: resolved after settle (2s).
		if res, err := pd.wait(pm, 30*time.Second, "resolve", "memory_limit:memhog"); err != nil {
			t.Error(err)
		} else {
			t.Logf("memory_limit resolved %s after the restart", res.at.Sub(respawn.TS).Round(time.Millisecond))
		}
	})

	t.Run("7d hung gunicorn: health check restarts it, alerted", func(t *testing.T) {
		before, ok := d.lastSpawn("gunicorn")
		if !ok {
			t.Fatal("gunicorn was never spawned")
		}
		st0, err := statusOf(cli, "gunicorn")
		if err != nil {
			t.Fatal(err)
		}
		if st0.Health == nil || !st0.Health.Healthy {
			t.Fatalf("gunicorn before the hang: health %+v, want healthy", st0.Health)
		}
		m, pm, mm := d.mark(), pd.mark(), mailbox.mark()
		// A hung gunicorn: every process of its group stopped. Its socket
		// still accepts connections (the kernel's backlog), so requests
		// hang rather than fail.
		t0 := time.Now()
		if err := syscall.Kill(-before.PID, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		// 3 checks 10 s apart, each timing out after 5 s.
		stopping, err := d.wait(m, 90*time.Second, "gunicorn restarted for health", func(e entry) bool {
			return e.Msg == "health check failed; restarting the program" && e.Program == "gunicorn"
		})
		if err != nil {
			syscall.Kill(-before.PID, syscall.SIGCONT)
			t.Fatal(err)
		}
		// The stop signal (TERM) and SIGCONT: the frozen master wakes up and
		// stops gracefully, well before stop_timeout's SIGKILL.
		exited, err := d.wait(m, 30*time.Second, "the hung gunicorn exited", func(e entry) bool {
			return e.Msg == "exited" && e.Program == "gunicorn" && e.PID == before.PID
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(exited.raw, `"signal":"KILL"`) {
			t.Errorf("the stopped gunicorn was SIGKILLed after stop_timeout, not stopped by TERM: %s", exited.raw)
		}
		running, err := d.waitState(m, 60*time.Second, "gunicorn", "RUNNING")
		if err != nil {
			t.Fatal(err)
		}
		trig, err := pd.wait(pm, 30*time.Second, "trigger", "health_restart:gunicorn")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eventually(60*time.Second, s.hello); err != nil {
			t.Fatal(err)
		}
		answered := time.Now()
		st, err := statusOf(cli, "gunicorn")
		if err != nil {
			t.Fatal(err)
		}
		if st.PID == before.PID || st.Health == nil || st.Health.Restarts != st0.Health.Restarts+1 {
			t.Errorf("gunicorn after the hang: pid %d (was %d), health %+v; want a new pid and one more health restart", st.PID, before.PID, st.Health)
		}
		t.Logf("hung gunicorn (SIGSTOP): health restart decided %s after the hang, old master exited %s later (%s), RUNNING %s after the hang, site answers %s after RUNNING; trigger %q",
			stopping.TS.Sub(t0).Round(time.Millisecond), exited.TS.Sub(stopping.TS).Round(time.Millisecond), exitText(exited),
			running.TS.Sub(t0).Round(time.Millisecond), answered.Sub(running.TS).Round(time.Millisecond), trig.Payload.Summary)
		if _, err := mailbox.wait(mm, 30*time.Second, "TRIGGER", "gunicorn"); err != nil {
			t.Error(err)
		}
		res, err := pd.wait(pm, 60*time.Second, "resolve", "health_restart:gunicorn")
		if err != nil {
			t.Fatal(err)
		}
		// settle counts from the spawn (the process's uptime), not from
		// RUNNING: the ready probe's second or so is part of it.
		t.Logf("health_restart: trigger at the receiver %s after the restart was decided; resolved %s after RUNNING (settle 2s)",
			trig.at.Sub(stopping.TS).Round(time.Millisecond), res.at.Sub(running.TS).Round(time.Millisecond))
	})

	if bad := pd.refused(); len(bad) > 0 {
		t.Errorf("the PagerDuty receiver refused events that break the Events v2 spec: %q", bad)
	}
}

// exitText is an "exited" log line's status: "exit 0" or "signal KILL".
func exitText(e entry) string {
	var x struct {
		Code   int    `json:"exit_code"`
		Signal string `json:"signal"`
	}
	json.Unmarshal([]byte(e.raw), &x)
	if x.Signal != "" {
		return "signal " + x.Signal
	}
	return "exit " + strconv.Itoa(x.Code)
}
