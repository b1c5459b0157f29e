package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hostctl/hostctl/supervisor/trust"
)

// The secrets of the test sinks: none may appear in any error.
const (
	testRoutingKey = "R0UTINGKEY0123456789abcdefabcdef"
	testSecret     = "hmac-s3cret-value"
	testBearer     = "Bearer t0ken-in-a-header"
	testSlackPath  = "/services/T000/B000/XXXXslacktoken"
)

var testSecrets = []string{testRoutingKey, testSecret, testBearer, "t0ken-in-a-header", "XXXXslacktoken", "hunter2-password"}

func noSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range testSecrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error contains the secret %q: %v", s, err)
		}
	}
}

// validated runs sc through Config.Provision and Validate, as the config
// reader does, so that the secret files are read; it fails the test on
// any problem.
func validated(t *testing.T, sc SinkConfig) SinkConfig {
	t.Helper()
	if sc.Name == "" {
		sc.Name = "test"
	}
	if sc.Timeout == 0 {
		sc.Timeout = DefaultSinkConfig().Timeout
	}
	c := DefaultConfig()
	c.Sinks = []SinkConfig{sc}
	if errs := append(c.Provision("alerts", trust.Read), c.Validate("alerts")...); len(errs) > 0 {
		t.Fatalf("config: %v", errors.Join(errs...))
	}
	return c.Sinks[0]
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustSink(t *testing.T, sc SinkConfig) Sink {
	t.Helper()
	s, err := newSink(validated(t, sc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testSince = time.Date(2024, 5, 1, 14, 3, 12, 0, time.UTC)

func testEvent(action Action) Event {
	ev := Event{
		Action: action,
		Host:   "web1",
		Time:   testSince.Add(12 * time.Minute),
		Alert: Alert{
			Key:       "fatal:gunicorn",
			Condition: CondFatal,
			Program:   "gunicorn",
			Severity:  Critical,
			Summary:   "gunicorn is FATAL: gave up after 4 tries (exit 1: ImportError: no module named 'app')",
			Details:   map[string]any{"exit_status": 1, "log_file": "/var/log/hostctl/gunicorn.err"},
			LastLines: []string{"Traceback (most recent call last):", "ImportError: no module named 'app'"},
			Command:   "hostctl status gunicorn; hostctl tail gunicorn stderr",
			Since:     testSince,
			Notified:  1,
		},
	}
	if action == Resolve {
		ev.ResolveSummary = "gunicorn is RUNNING again after 12m0s"
	}
	return ev
}

// receiver is a real HTTP server on 127.0.0.1 that hands each request to
// check and answers what check returns.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded // guarded by mu
}

type recorded struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, check func(t *testing.T, r *http.Request, body []byte) (int, string)) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, recorded{r.Header.Clone(), body})
		rc.mu.Unlock()
		if r.Method != http.MethodPost {
			t.Errorf("method %s, want POST", r.Method)
		}
		if ua := r.Header.Get("User-Agent"); ua != "hostctl" {
			t.Errorf("User-Agent %q, want hostctl", ua)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		code, answer := check(t, r, body)
		w.WriteHeader(code)
		io.WriteString(w, answer)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.reqs)
}

// checkPagerDuty checks an Events API v2 request as strictly as the
// documentation states it, and returns what PagerDuty would answer.
func checkPagerDuty(t *testing.T, body []byte) (dedupKey string, ok bool) {
	t.Helper()
	var e struct {
		RoutingKey  string `json:"routing_key"`
		EventAction string `json:"event_action"`
		DedupKey    string `json:"dedup_key"`
		Client      string `json:"client"`
		ClientURL   string `json:"client_url"`
		Payload     *struct {
			Summary       string         `json:"summary"`
			Source        string         `json:"source"`
			Severity      string         `json:"severity"`
			Timestamp     string         `json:"timestamp"`
			Component     string         `json:"component"`
			Group         string         `json:"group"`
			Class         string         `json:"class"`
			CustomDetails map[string]any `json:"custom_details"`
		} `json:"payload"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Errorf("pagerduty body %s: %v", body, err)
		return "", false
	}
	bad := func(format string, a ...any) { t.Errorf("pagerduty: "+format+" in %s", append(a, body)...) }
	if e.RoutingKey != testRoutingKey {
		bad("routing_key %q", e.RoutingKey)
	}
	if e.DedupKey == "" || len(e.DedupKey) > 255 {
		bad("dedup_key %q", e.DedupKey)
	}
	switch e.EventAction {
	case "trigger":
		p := e.Payload
		if p == nil {
			bad("trigger without payload")
			return e.DedupKey, false
		}
		if p.Summary == "" || utf8.RuneCountInString(p.Summary) > 1024 {
			bad("summary of %d characters", utf8.RuneCountInString(p.Summary))
		}
		if p.Source == "" {
			bad("no source")
		}
		if !slices.Contains([]string{"critical", "error", "warning", "info"}, p.Severity) {
			bad("severity %q", p.Severity)
		}
		if _, err := time.Parse(time.RFC3339, p.Timestamp); err != nil {
			bad("timestamp: %v", err)
		}
		if p.Class == "" {
			bad("no class")
		}
		if raw := string(body); strings.Contains(raw, `"component":""`) {
			bad("empty component not omitted")
		}
	case "resolve":
		if e.Payload != nil {
			bad("resolve with a payload")
		}
	default:
		bad("event_action %q", e.EventAction)
	}
	return e.DedupKey, !t.Failed()
}

func TestPagerDutySchema(t *testing.T) {
	rc := newReceiver(t, func(t *testing.T, r *http.Request, body []byte) (int, string) {
		if _, ok := checkPagerDuty(t, body); !ok {
			return 400, `{"status":"invalid event"}`
		}
		return 202, `{"status":"success","message":"Event processed","dedup_key":"x"}`
	})
	s := mustSink(t, SinkConfig{Type: TypePagerDuty, URL: rc.URL, RoutingKeyFile: writeFile(t, "key", testRoutingKey+"\n")})
	ctx := context.Background()

	trig := testEvent(Trigger)
	trig.Alert.Summary = strings.Repeat("é", 2000) // over the limit, and not ASCII
	if err := s.Send(ctx, trig); err != nil {
		t.Fatalf("trigger: %v", err)
	}
	host := testEvent(Trigger)
	host.Alert.Program, host.Alert.Key, host.Alert.Condition = "", "disk_free:/var/log", CondDiskFree
	host.Alert.Details = nil
	if err := s.Send(ctx, host); err != nil {
		t.Fatalf("trigger without program: %v", err)
	}
	if err := s.Send(ctx, testEvent(Resolve)); err != nil {
		t.Fatalf("resolve: %v", err)
	}

	reqs := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	var first, resolve map[string]any
	json.Unmarshal(reqs[0].body, &first)
	json.Unmarshal(reqs[2].body, &resolve)
	if first["dedup_key"] != "web1/fatal:gunicorn" || resolve["dedup_key"] != first["dedup_key"] {
		t.Errorf("dedup_key: trigger %v, resolve %v; want both web1/fatal:gunicorn", first["dedup_key"], resolve["dedup_key"])
	}
	p := first["payload"].(map[string]any)
	if sum := p["summary"].(string); utf8.RuneCountInString(sum) != 1024 || !strings.HasSuffix(sum, "…") {
		t.Errorf("summary not cut to 1024 characters ending in …: %d", utf8.RuneCountInString(sum))
	}
	cd := p["custom_details"].(map[string]any)
	for _, k := range []string{"exit_status", "log_file", "last_lines", "command", "since"} {
		if _, ok := cd[k]; !ok {
			t.Errorf("custom_details lacks %q: %v", k, cd)
		}
	}
	if p["component"] != "gunicorn" || p["class"] != CondFatal || p["source"] != "web1" || p["severity"] != "critical" {
		t.Errorf("payload %v", p)
	}
	if first["client"] != "hostctl" {
		t.Errorf("client %v", first["client"])
	}
}

// TestHTTPStatus: what each answer of a receiver makes of Send's error.
func TestHTTPStatus(t *testing.T) {
	// The receiver echoes the sink's secrets, as a careless one might:
	// they must still not reach the error.
	sinks := []struct {
		name string
		echo string
		make func(t *testing.T, url string) Sink
	}{
		{"pagerduty", "routing key " + testRoutingKey, func(t *testing.T, url string) Sink {
			return mustSink(t, SinkConfig{Type: TypePagerDuty, URL: url, RoutingKey: testRoutingKey})
		}},
		{"webhook", "auth " + testBearer + ", secret " + testSecret + ", url /hook?token=" + testSecret, func(t *testing.T, url string) Sink {
			return mustSink(t, SinkConfig{Type: TypeWebhook, URL: url + "/hook?token=" + testSecret,
				Headers: map[string]string{"Authorization": testBearer}, SecretFile: writeFile(t, "secret", testSecret)})
		}},
		{"slack", "url " + testSlackPath, func(t *testing.T, url string) Sink {
			return mustSink(t, SinkConfig{Type: TypeSlack, URL: url + testSlackPath})
		}},
	}
	for _, tc := range []struct {
		code      int
		wantErr   bool
		permanent bool
	}{
		{202, false, false},
		{200, false, false},
		{400, true, true},
		{401, true, true},
		{403, true, true},
		{404, true, true},
		{413, true, true},
		{422, true, true},
		{302, true, true},
		{408, true, false},
		{429, true, false},
		{500, true, false},
		{502, true, false},
		{503, true, false},
	} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			for _, sk := range sinks {
				name := sk.name
				rc := newReceiver(t, func(t *testing.T, r *http.Request, body []byte) (int, string) {
					if name == "slack" && tc.code/100 == 2 {
						return tc.code, "ok"
					}
					return tc.code, `{"status":"invalid event","errors":["` + sk.echo + `"]}`
				})
				s := sk.make(t, rc.URL)
				err := s.Send(context.Background(), testEvent(Trigger))
				noSecret(t, err)
				if (err != nil) != tc.wantErr {
					t.Fatalf("%s: err = %v, want error: %v", name, err, tc.wantErr)
				}
				if err == nil {
					continue
				}
				if IsPermanent(err) != tc.permanent {
					t.Errorf("%s: IsPermanent = %v, want %v: %v", name, IsPermanent(err), tc.permanent, err)
				}
				if !strings.Contains(err.Error(), strconv.Itoa(tc.code)) || !strings.Contains(err.Error(), "invalid event") {
					t.Errorf("%s: error does not say what the receiver answered: %v", name, err)
				}
			}
		})
	}
}

func TestHTTPNoAnswer(t *testing.T) {
	// A receiver that takes the request and never answers: the context's
	// deadline (the sink's timeout) must end Send.
	hang := make(chan struct{})
	rc := newReceiver(t, func(t *testing.T, r *http.Request, body []byte) (int, string) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
		return 500, ""
	})
	defer close(hang) // before rc.Close, which waits for the handler
	s := mustSink(t, SinkConfig{Type: TypeSlack, URL: rc.URL + testSlackPath})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx, testEvent(Trigger)) }()
	select {
	case err := <-done:
		if err == nil || IsPermanent(err) {
			t.Fatalf("err = %v, want a retryable error", err)
		}
		if !strings.Contains(err.Error(), "no answer in time") {
			t.Errorf("error does not say it timed out: %v", err)
		}
		noSecret(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Send did not return 10s after its context's deadline")
	}

	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		s := mustSink(t, SinkConfig{Type: TypeSlack, URL: "http://" + addr + testSlackPath})
		err = s.Send(context.Background(), testEvent(Trigger))
		if err == nil || IsPermanent(err) {
			t.Fatalf("err = %v, want a retryable error", err)
		}
		noSecret(t, err)
	})
}

func TestWebhookSigned(t *testing.T) {
	rc := newReceiver(t, func(t *testing.T, r *http.Request, body []byte) (int, string) {
		if err := VerifySignature([]byte(testSecret), body, r.Header); err != nil {
			t.Errorf("VerifySignature: %v", err)
			return 401, "bad signature"
		}
		if got := r.Header.Get("Authorization"); got != testBearer {
			t.Errorf("Authorization %q", got)
		}
		return 204, ""
	})
	s := mustSink(t, SinkConfig{Type: TypeWebhook, URL: rc.URL, SecretFile: writeFile(t, "secret", testSecret+"\n"),
		Headers: map[string]string{"Authorization": testBearer}})
	for _, a := range []Action{Trigger, Resolve} {
		if err := s.Send(context.Background(), testEvent(a)); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}

	var trig, res map[string]any
	for i, m := range []*map[string]any{&trig, &res} {
		if err := json.Unmarshal(reqs[i].body, m); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]any{"action": "trigger", "key": "fatal:gunicorn", "dedup_key": "web1/fatal:gunicorn",
		"condition": "fatal", "program": "gunicorn", "severity": "critical", "host": "web1",
		"time": "2024-05-01T14:15:12Z", "since": "2024-05-01T14:03:12Z", "repeat": false,
		"command": "hostctl status gunicorn; hostctl tail gunicorn stderr"}
	for k, v := range want {
		if trig[k] != v {
			t.Errorf("trigger %s = %v, want %v", k, trig[k], v)
		}
	}
	for _, k := range []string{"summary", "details", "last_lines"} {
		if _, ok := trig[k]; !ok {
			t.Errorf("trigger lacks %s", k)
		}
	}
	if _, ok := trig["resolve_summary"]; ok {
		t.Error("trigger has resolve_summary")
	}
	if res["action"] != "resolve" || res["resolve_summary"] != "gunicorn is RUNNING again after 12m0s" || res["dedup_key"] != trig["dedup_key"] {
		t.Errorf("resolve: %v", res)
	}

	// The signature protects body and timestamp, and the timestamp's age.
	r := reqs[0]
	for name, tc := range map[string]struct {
		body   []byte
		header func(h http.Header)
		now    time.Time
	}{
		"body changed":      {body: bytes.Replace(r.body, []byte("critical"), []byte("info"), 1)},
		"timestamp changed": {header: func(h http.Header) { h.Set(TimestampHeader, "1") }},
		"no signature":      {header: func(h http.Header) { h.Del(SignatureHeader) }},
		"replayed later":    {now: time.Now().Add(MaxSignatureAge + time.Minute)},
		"wrong scheme":      {header: func(h http.Header) { h.Set(SignatureHeader, "sha1=00") }},
	} {
		t.Run(name, func(t *testing.T) {
			body, h, now := r.body, r.header.Clone(), time.Now()
			if tc.body != nil {
				body = tc.body
			}
			if tc.header != nil {
				tc.header(h)
			}
			if !tc.now.IsZero() {
				now = tc.now
			}
			if err := verifySignature([]byte(testSecret), body, h, now); err == nil {
				t.Error("verified")
			}
		})
	}
}

func TestSlackPayload(t *testing.T) {
	rc := newReceiver(t, func(t *testing.T, r *http.Request, body []byte) (int, string) {
		if r.URL.Path != testSlackPath {
			t.Errorf("path %q", r.URL.Path)
		}
		var m struct {
			Text   string `json:"text"`
			Blocks []struct {
				Type string `json:"type"`
				Text struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"text"`
			} `json:"blocks"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil || m.Text == "" {
			t.Errorf("slack body %s: %v", body, err)
			return 400, "invalid_payload"
		}
		for _, b := range m.Blocks {
			if b.Type != "section" || b.Text.Type != "mrkdwn" || b.Text.Text == "" || len(b.Text.Text) > 3000 {
				t.Errorf("block %+v", b)
			}
		}
		return 200, "ok"
	})
	s := mustSink(t, SinkConfig{Type: TypeSlack, URL: rc.URL + testSlackPath})
	trig := testEvent(Trigger)
	trig.Alert.Summary = "a <b> & c"
	trig.Alert.Details = map[string]any{"notes": "restart it: hostctl restart memcached"}
	for _, ev := range []Event{trig, testEvent(Resolve)} {
		if err := s.Send(context.Background(), ev); err != nil {
			t.Fatalf("%s: %v", ev.Action, err)
		}
	}
	reqs := rc.requests()
	var tm, rm struct{ Text string }
	json.Unmarshal(reqs[0].body, &tm)
	json.Unmarshal(reqs[1].body, &rm)
	for _, want := range []string{":red_circle:", "*web1*", "a &lt;b&gt; &amp; c", "`hostctl status gunicorn; hostctl tail gunicorn stderr`", "Notes: restart it: hostctl restart memcached"} {
		if !strings.Contains(tm.Text, want) {
			t.Errorf("trigger text %q lacks %q", tm.Text, want)
		}
	}
	for _, want := range []string{":large_green_circle:", "*web1*", "RUNNING again"} {
		if !strings.Contains(rm.Text, want) {
			t.Errorf("resolve text %q lacks %q", rm.Text, want)
		}
	}

	t.Run("answer not ok", func(t *testing.T) {
		rc := newReceiver(t, func(t *testing.T, r *http.Request, body []byte) (int, string) { return 200, "no_text" })
		err := mustSink(t, SinkConfig{Type: TypeSlack, URL: rc.URL + testSlackPath}).Send(context.Background(), testEvent(Trigger))
		if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "no_text") {
			t.Errorf("err = %v, want a permanent error quoting no_text", err)
		}
		noSecret(t, err)
	})
}

func TestNewSinkUnvalidated(t *testing.T) {
	// A config that skipped Validate has no secrets read: newSink says so
	// instead of sending an empty routing key.
	if _, err := newSink(SinkConfig{Type: TypePagerDuty, Name: "p", RoutingKeyFile: "/nonexistent"}); err == nil {
		t.Error("pagerduty without a routing key: no error")
	}
	if _, err := newSink(SinkConfig{Type: "fax", Name: "f"}); err == nil {
		t.Error("unknown type: no error")
	}
}
