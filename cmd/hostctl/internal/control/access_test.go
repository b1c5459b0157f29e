package control

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/supervisord"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/supervisord/xmlrpc"
)

const (
	testAdmin = "admin-token-0123456789abcdef"
	testRead  = "read-token-0123456789abcdef"
)

// do sends one request to srv and returns the status and body.
func do(t *testing.T, srv *httptest.Server, method, path, body string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReadOnlyToken: the read-only token reads every read route and is
// refused (403, saying so) on every write route of the table; the admin
// token and the unix socket write; a wrong token is 401 everywhere.
func TestReadOnlyToken(t *testing.T) {
	fake := newFake()
	s := New(Options{Programs: fake, Token: testAdmin, ReadToken: testRead})
	tcp := httptest.NewServer(s.Handler(true))
	defer tcp.Close()
	unix := httptest.NewServer(s.Handler(false))
	defer unix.Close()
	bearer := func(tok string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
	}
	for _, rt := range routes {
		path := strings.NewReplacer("{name}", "api", "{channel}", "stdout", "{$}", "").Replace(rt.path)
		body := `{"names":["api"],"signal":"HUP"}`
		if rt.path == "/v1/reload" || strings.Contains(rt.path, "drain") || strings.Contains(rt.path, "alerts") {
			body = `{}`
		}
		if rt.path == "/RPC2" {
			body = rpcCall
		}
		if strings.Contains(rt.path, "logtail") || strings.HasSuffix(rt.path, "/log") {
			continue // follows or needs a log file: TestReadOnlyTokenCannotWrite in cmd/hostctl/e2e
		}
		code, b := do(t, tcp, rt.method, path, body, bearer(testRead))
		switch rt.access {
		case write:
			if code != 403 || !strings.Contains(b, "read-only") {
				t.Errorf("%s %s with the read-only token: %d %s, want 403 read-only", rt.method, path, code, b)
			}
		default:
			if code == 401 || code == 403 {
				t.Errorf("%s %s with the read-only token: %d %s, want it served", rt.method, path, code, b)
			}
		}
		if code, b := do(t, tcp, rt.method, path, body, bearer("wrong-token-0123456789abcdef")); rt.access != public && code != 401 {
			t.Errorf("%s %s with a wrong token: %d %s, want 401", rt.method, path, code, b)
		}
		if rt.access == write {
			if code, b := do(t, tcp, rt.method, path, body, bearer(testAdmin)); code == 401 || code == 403 {
				t.Errorf("%s %s with the admin token: %d %s", rt.method, path, code, b)
			}
			if code, b := do(t, unix, rt.method, path, body, map[string]string{"Content-Type": "application/json"}); code == 401 || code == 403 {
				t.Errorf("%s %s on the socket: %d %s", rt.method, path, code, b)
			}
		}
	}
	if len(fake.signals) != 2 { // admin token, socket; the read-only token none
		t.Errorf("signals sent: %q, want 2 (admin token, socket)", fake.signals)
	}
}

// TestReadOnlyTokenXMLRPC: over XML-RPC the read-only token, as bearer or
// as supervisorctl's Basic password, calls every read method and gets a
// FAILED fault saying it is read-only from every write method, and from a
// multicall that holds one (none of whose calls is made).
func TestReadOnlyTokenXMLRPC(t *testing.T) {
	fake := newFake()
	s := New(Options{Programs: fake, Token: testAdmin, ReadToken: testRead})
	tcp := httptest.NewServer(s.Handler(true))
	defer tcp.Close()
	call := func(auth, method string, params ...any) (any, error) {
		t.Helper()
		b, err := xmlrpc.EncodeCall(method, params...)
		if err != nil {
			t.Fatal(err)
		}
		code, body := do(t, tcp, "POST", "/RPC2", string(b), map[string]string{"Authorization": auth})
		if code != 200 {
			t.Fatalf("%s: HTTP %d %s", method, code, body)
		}
		return xmlrpc.DecodeResponse(strings.NewReader(body))
	}
	for _, auth := range []string{"Bearer " + testRead, basic("monitor", testRead)} {
		for _, m := range supervisord.Methods() {
			name := m.Name
			args := []any{}
			for _, p := range m.Signature[1 : len(m.Signature)-m.Optional] {
				switch p {
				case "string":
					args = append(args, "api")
				case "int":
					args = append(args, 0)
				case "array":
					args = append(args, []any{})
				}
			}
			if name == "supervisor.signalProcess" || name == "supervisor.signalProcessGroup" {
				args[1] = "HUP"
			}
			if name == "system.methodHelp" || name == "system.methodSignature" {
				args[0] = "supervisor.getState"
			}
			_, err := call(auth, name, args...)
			f, isFault := err.(*xmlrpc.Fault)
			readOnlyFault := isFault && f.Code == 30 && strings.Contains(f.String, "read-only") // 30: FAILED
			if m.Write != readOnlyFault {
				t.Errorf("%s (write %v) with %s: %v", name, m.Write, auth[:6], err)
			}
		}
		_, err := call(auth, "system.multicall", []any{
			xmlrpc.Struct{{Name: "methodName", Value: "supervisor.signalProcess"}, {Name: "params", Value: []any{"api", "HUP"}}},
			xmlrpc.Struct{{Name: "methodName", Value: "supervisor.getState"}, {Name: "params", Value: []any{}}},
		})
		if f, ok := err.(*xmlrpc.Fault); !ok || !strings.Contains(f.String, "read-only") || !strings.Contains(f.String, "supervisor.signalProcess") {
			t.Errorf("multicall with a write, with %s: %v, want a read-only fault naming the method", auth[:6], err)
		}
	}
	if len(fake.signals) != 0 {
		t.Errorf("the read-only token signalled: %q", fake.signals)
	}
	if _, err := call(basic("ops", testAdmin), "supervisor.signalProcess", "api", "HUP"); err != nil || len(fake.signals) != 1 {
		t.Errorf("signalProcess with the admin token: %v, signals %q", err, fake.signals)
	}
}

// TestHostCheck: on TCP, a Host that is not an IP address, localhost or
// one of Options.Names is refused before anything else (DNS rebinding);
// the unix socket takes any Host (supervisorctl sends "localhost",
// hostctl's client "hostctl.sock").
func TestHostCheck(t *testing.T) {
	s := New(Options{Programs: newFake(), Token: testAdmin, Names: []string{"Admin.Example.org"}})
	tcp := httptest.NewServer(s.Handler(true))
	defer tcp.Close()
	unix := httptest.NewServer(s.Handler(false))
	defer unix.Close()
	auth := "Bearer " + testAdmin
	for _, tc := range []struct {
		srv        *httptest.Server
		host, path string
		want       int
	}{
		{tcp, "evil.example:9001", "/v1/programs", 403},
		{tcp, "evil.example", "/healthz", 403},
		{tcp, "evil.example", "/", 403},
		{tcp, "evil.example", "/nope", 403},
		{tcp, "127.0.0.1.evil.example", "/v1/programs", 403},
		{tcp, "localhost.evil.example", "/v1/programs", 403},
		{tcp, "admin.example.org.evil.example", "/v1/programs", 403},
		{tcp, "127.0.0.1:9001", "/v1/programs", 200},
		{tcp, "10.0.0.11:9001", "/v1/programs", 200},
		{tcp, "[::1]:9001", "/v1/programs", 200},
		{tcp, "[fe80::1]", "/v1/programs", 200},
		{tcp, "localhost:9001", "/v1/programs", 200},
		{tcp, "LOCALHOST.", "/v1/programs", 200},
		{tcp, "admin.example.org:9001", "/v1/programs", 200},
		{tcp, "ADMIN.example.org", "/v1/programs", 200},
		{unix, "localhost", "/v1/programs", 200},
		{unix, "hostctl.sock", "/v1/programs", 200},
		{unix, "evil.example", "/v1/programs", 200},
	} {
		code, body := do(t, tc.srv, "GET", tc.path, "", map[string]string{"Host": tc.host, "Authorization": auth})
		if code != tc.want {
			t.Errorf("GET %s Host %s (tcp %v): %d, want %d: %s", tc.path, tc.host, tc.srv == tcp, code, tc.want, body)
		}
	}
}

// TestHealthzDetailNeedsAToken: /healthz is public and says only that
// hostctl is up; its pid and version go to a token holder and the socket.
func TestHealthzDetailNeedsAToken(t *testing.T) {
	s := New(Options{Programs: newFake(), Token: testAdmin, ReadToken: testRead, Version: "1.2.3"})
	tcp := httptest.NewServer(s.Handler(true))
	defer tcp.Close()
	unix := httptest.NewServer(s.Handler(false))
	defer unix.Close()
	for _, tc := range []struct {
		srv    *httptest.Server
		auth   string
		detail bool
	}{
		{tcp, "", false},
		{tcp, "Bearer nope", false},
		{tcp, "Bearer " + testRead, true},
		{tcp, "Bearer " + testAdmin, true},
		{unix, "", true},
	} {
		code, body := do(t, tc.srv, "GET", "/healthz", "", map[string]string{"Authorization": tc.auth})
		var m map[string]any
		json.Unmarshal([]byte(body), &m)
		if code != 200 || m["ok"] != true || (m["pid"] != nil) != tc.detail || (m["version"] == "1.2.3") != tc.detail || !tc.detail && len(m) != 1 {
			t.Errorf("/healthz (tcp %v, %q): %d %s; detail wanted: %v", tc.srv == tcp, tc.auth, code, body, tc.detail)
		}
	}
}
