package supervisor

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveUnix serves h on a unix socket in a fresh temp dir and returns its path.
func serveUnix(t *testing.T, h http.Handler) string {
	t.Helper()
	path := filepath.Join(shortTempDir(t), "web.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return path
}

// shortTempDir is a temp dir whose paths fit a unix socket address (108
// bytes), which t.TempDir's long names may not.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hostctl-sock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestHTTPProbeOverUnixSocket(t *testing.T) {
	type seen struct{ host, uri string }
	got := make(chan seen, 10)
	sock := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Host, r.RequestURI}
		if r.URL.Path != "/healthz" {
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	missing := filepath.Join(filepath.Dir(sock), "missing.sock")
	for _, tc := range []struct {
		name string
		h    HealthConfig
		want string // checkOnce's error, "" when it passes
	}{
		{"passes", HealthConfig{HTTP: "http://localhost/healthz?db=0", Socket: sock}, ""},
		{"the URL's host is only the Host header", HealthConfig{HTTP: "http://www.example.com:81/healthz", Socket: sock}, ""},
		{"status outside 2xx", HealthConfig{HTTP: "http://localhost/other", Socket: sock}, "GET /other: 503"},
		{"no such socket", HealthConfig{HTTP: "http://localhost/healthz", Socket: missing}, "GET /healthz: no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.h.Timeout = 5 * time.Second
			err := checkOnce(context.Background(), &tc.h, procAttr{})
			if msg := errString(err); msg != tc.want {
				t.Fatalf("checkOnce = %q, want %q", msg, tc.want)
			}
			if tc.h.Socket == missing {
				return
			}
			select {
			case s := <-got:
				u := strings.TrimPrefix(strings.TrimPrefix(tc.h.HTTP, "http://"), s.host)
				if !strings.HasPrefix(tc.h.HTTP, "http://"+s.host+"/") || s.uri != u {
					t.Errorf("the server saw Host %q and %q, want them from %s", s.host, s.uri, tc.h.HTTP)
				}
			default:
				t.Errorf("the server on %s saw no request", sock)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// A program on a unix socket (like gunicorn) with a ready probe and a
// health check through it: RUNNING once it answers, restarted when it
// stops answering 2xx.
func TestReadyAndHealthOverUnixSocket(t *testing.T) {
	dir := shortTempDir(t)
	sock, sick := filepath.Join(dir, "web.sock"), filepath.Join(dir, "sick")
	p := helper(t, "web", "healthz", sock, sick)
	p.StopTimeout = time.Second
	p.Ready = &ProbeConfig{HTTP: "http://localhost/healthz", Socket: sock, Interval: 20 * time.Millisecond, Timeout: 2 * time.Second, Deadline: 30 * time.Second}
	h := DefaultHealthConfig()
	h.HTTP, h.Socket = "http://localhost/healthz", sock
	h.Interval, h.Failures = 100*time.Millisecond, 2
	p.Health = &h
	// The helper leaves its socket file behind when it is killed.
	p.Command = append(Command{"/bin/sh", "-c", `rm -f "$1" && exec "$0" "$@"`}, p.Command...)
	s, _ := newSup(t, p)
	s.StartProcesses(context.Background(), "web")
	first := waitState(t, s, "web", Running, 20*time.Second)
	if first.Health == nil || !first.Health.Healthy {
		t.Fatalf("RUNNING with health %+v, want healthy", first.Health)
	}
	os.WriteFile(sick, nil, 0o644)
	st := waitCond(t, s, "web", 20*time.Second, "a restart for health", func(x Status) bool { return x.State == Stopping })
	if st.Health == nil || st.Health.LastError != "GET /healthz: 500" {
		t.Errorf("health while restarting: %+v; want GET /healthz: 500", st.Health)
	}
	os.Remove(sick)
	waitCond(t, s, "web", 20*time.Second, "RUNNING again with a new process", func(x Status) bool { return x.State == Running && x.PID != first.PID })
}

func TestProbeSocketValidation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ready ProbeConfig
		want  string // "" for valid
	}{
		{"http through a socket", ProbeConfig{HTTP: "http://localhost/healthz", Socket: "/run/hello/gunicorn.sock"}, ""},
		{"relative path", ProbeConfig{HTTP: "http://localhost/healthz", Socket: "run/gunicorn.sock"},
			`program.w.ready.socket: "run/gunicorn.sock" must be an absolute path (example: "/run/hello/gunicorn.sock")`},
		{"with tcp", ProbeConfig{TCP: "127.0.0.1:8000", Socket: "/run/hello/gunicorn.sock"},
			"program.w.ready.socket: applies only to an http check (it is the unix socket the request goes to)"},
		{"too long for a socket address", ProbeConfig{HTTP: "http://localhost/", Socket: "/" + strings.Repeat("d", 110)},
			`program.w.ready.socket: "/` + strings.Repeat("d", 110) + `" is 111 bytes long; a unix socket path has at most 107`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := shProg("w", "exec sleep 1000")
			r := DefaultProbeConfig()
			r.TCP, r.HTTP, r.Socket = tc.ready.TCP, tc.ready.HTTP, tc.ready.Socket
			p.Ready = &r
			h := DefaultHealthConfig()
			h.TCP, h.HTTP, h.Socket = tc.ready.TCP, tc.ready.HTTP, tc.ready.Socket
			p.Health = &h
			var got []string
			for _, err := range p.Validate("program.w") {
				got = append(got, err.Error())
			}
			// The same check, and message, for ready and health.
			want := ""
			if tc.want != "" {
				want = tc.want + "\n" + strings.Replace(tc.want, ".ready.", ".health.", 1)
			}
			if g := strings.Join(got, "\n"); g != want {
				t.Errorf("Validate =\n%s\nwant\n%s", g, want)
			}
		})
	}
}
