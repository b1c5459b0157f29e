package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// unixHelper is the test binary run as a helper process (TestMain):
//   - "listen": listen(2) on fd 3, a unix socket the test bound, then
//     exit: the socket's peer credentials are then another process's
//     (SO_PEERCRED gives the listener's), while the test accepts on it;
//   - "serve": the upstream program: drop to HCT_TEST_UID and
//     HCT_TEST_GID (unless 0), remove a stale socket at HCT_TEST_SOCK and
//     listen there, print "ready", and answer every request with
//     HCT_TEST_BODY and its pid until killed.
func unixHelper(mode string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	switch mode {
	case "listen":
		if err := unix.Listen(3, 128); err != nil {
			fail(err)
		}
		os.Exit(0)
	case "serve":
		uid, _ := strconv.Atoi(os.Getenv("HCT_TEST_UID"))
		gid, _ := strconv.Atoi(os.Getenv("HCT_TEST_GID"))
		if uid != 0 {
			if err := syscall.Setgroups(nil); err != nil {
				fail(err)
			}
			if err := syscall.Setgid(gid); err != nil {
				fail(err)
			}
			if err := syscall.Setuid(uid); err != nil {
				fail(err)
			}
		}
		sock, body := os.Getenv("HCT_TEST_SOCK"), os.Getenv("HCT_TEST_BODY")
		if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
			fail(err)
		}
		l, err := net.Listen("unix", sock)
		if err != nil {
			fail(err)
		}
		fmt.Println("ready")
		fail(http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s pid %d", body, os.Getpid())
		})))
	}
	fail(fmt.Errorf("unknown mode %q", mode))
}

// listenElsewhere is net.Listen("unix", path) whose listen(2) is made by
// a helper process: the test accepts and serves, but a dial's peer is not
// the test process (which plays hostctl, whose own sockets the proxy
// refuses). It is how an in-process test upstream looks like a program.
func listenElsewhere(t testing.TB, path string) net.Listener {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), "HCT_TEST_UNIX_HELPER=listen")
	cmd.ExtraFiles = []*os.File{f}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper listen: %v\n%s", err, out)
	}
	l, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// program is a running "serve" helper: the upstream program.
type program struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startProgram runs the upstream program listening at sock as uid:gid
// and returns once it said ready (within a deadline). It is killed when
// the test ends.
func startProgram(t *testing.T, sock, body string, uid, gid int) *program {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "HCT_TEST_UNIX_HELPER=serve", "HCT_TEST_SOCK="+sock, "HCT_TEST_BODY="+body,
		"HCT_TEST_UID="+strconv.Itoa(uid), "HCT_TEST_GID="+strconv.Itoa(gid))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &program{cmd: cmd, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
		io.Copy(io.Discard, out)
	}()
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	select {
	case line := <-ready:
		if line != "ready\n" {
			t.Fatalf("program at %s did not start: %q", sock, line)
		}
	case <-time.After(time.Minute):
		t.Fatalf("program at %s: not ready within a minute", sock)
	}
	return p
}

// kill kills the program and waits for it to exit.
func (p *program) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func (p *program) pid() int { return p.cmd.Process.Pid }

const updialUser = "hct-updial"

// updialApp creates the app user hct-updial if needed and returns its
// uid and gid.
func updialApp(t *testing.T) (uid, gid int) {
	t.Helper()
	return ensureUser(t, updialUser)
}

// asUser runs a command as uid:gid with no other groups and fails the
// test if it fails.
func asUser(t *testing.T, uid, gid int, name string, args ...string) {
	t.Helper()
	argv := append([]string{"--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--clear-groups", "--", name}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "setpriv", argv...).CombinedOutput(); err != nil {
		t.Fatalf("as %d: %s %s: %v\n%s", uid, name, strings.Join(args, " "), err, out)
	}
}

// serveHere serves body on l in this process, counting requests.
func serveHere(t *testing.T, l net.Listener, body string) *atomic.Int64 {
	var n atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		io.WriteString(w, body)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return &n
}

func TestDialUnix(t *testing.T) {
	dir, err := shortTempDir(t)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.sock") // listened by another process
	serveHere(t, listenElsewhere(t, other), "other")
	self := filepath.Join(dir, "self.sock") // listened by this process: hostctl's own
	ls, err := net.Listen("unix", self)
	if err != nil {
		t.Fatal(err)
	}
	serveHere(t, ls, "self")
	link := filepath.Join(dir, "link.sock")
	if err := os.Symlink(other, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	me := uint32(os.Getuid())

	for _, tt := range []struct {
		name string
		path string
		want []uint32
		why  string // "" : connects; "-": a *net.OpError; else a *PeerError saying why
	}{
		{"another process", other, nil, ""},
		{"another process, its uid", other, []uint32{me + 1, me}, ""},
		{"another process, another uid", other, []uint32{me + 1}, "uid is not that of the program"},
		{"hostctl itself", self, nil, "hostctl itself"},
		{"hostctl itself, its uid", self, []uint32{me}, "hostctl itself"},
		{"symlink to a good socket", link, nil, "symbolic link"},
		{"a regular file", file, nil, "not a socket"},
		{"missing", filepath.Join(dir, "gone.sock"), nil, "-"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := dialUnix(ctx, &net.Dialer{}, tt.path, tt.want)
			if tt.why == "" {
				if err != nil {
					t.Fatalf("dialUnix: %v", err)
				}
				defer c.Close()
				// The connection reaches the socket's server.
				req, _ := http.NewRequest("GET", "http://localhost/", nil)
				req.Write(c)
				res, err := http.ReadResponse(bufio.NewReader(c), req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				if string(b) != "other" {
					t.Errorf("answer %q, want other", b)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("dialUnix connected, want an error (%s)", tt.why)
			}
			if pe, ok := errors.AsType[*PeerError](err); tt.why == "-" {
				if _, ok := errors.AsType[*net.OpError](err); !ok {
					t.Errorf("error %T %v, want a *net.OpError", err, err)
				}
			} else if !ok || !strings.Contains(pe.Error(), tt.why) || pe.Path != tt.path {
				t.Errorf("error %v, want a *PeerError for %s saying %q", err, tt.path, tt.why)
			} else if pe.Pid != 0 && tt.why == "hostctl itself" && int(pe.Pid) != os.Getpid() {
				t.Errorf("peer pid %d, want %d", pe.Pid, os.Getpid())
			}
		})
	}
}

// TestUnixUpstreamAttacksAsAppUser is the reproduction: the app's user
// replaces its upstream socket with a symlink (mv -T) to hostctl's own
// admin socket or to another root-owned socket. Through every dial path
// (hostctl_upstream; Caddy's reverse_proxy with keep-alive; a pool), an
// anonymous request must never reach them; the program's own socket,
// recreated by a restart, keeps working.
func TestUnixUpstreamAttacksAsAppUser(t *testing.T) {
	uid, gid := updialApp(t)
	zero := time.Duration(0)
	for _, tt := range []struct {
		name string
		cfg  func(socks []string) Config
		n    int // upstream sockets
	}{
		{"hostctl_upstream", func(s []string) Config { return Config{Upstream: "unix:" + s[0], RetryFor: &zero} }, 1},
		{"reverse_proxy keep-alive", func(s []string) Config {
			return Config{Upstream: "unix:" + s[0], RetryFor: &zero, UpstreamKeepAlive: true}
		}, 1},
		{"pool", func(s []string) Config {
			return Config{UpstreamList: []string{"unix:" + s[0], "unix:" + s[1]}, RetryFor: &zero}
		}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base, err := shortTempDir(t) // 0700 root, like /run/hostctl
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(base, 0o755); err != nil {
				t.Fatal(err)
			}
			appDir := filepath.Join(base, "app") // the app user's, like /run/app
			if err := os.Mkdir(appDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(appDir, uid, gid); err != nil {
				t.Fatal(err)
			}
			rootDir := filepath.Join(base, "root")
			if err := os.Mkdir(rootDir, 0o700); err != nil {
				t.Fatal(err)
			}
			// hostctl's admin socket: listened by this process, answering
			// as the admin API would.
			admin := filepath.Join(rootDir, "admin.sock")
			la, err := net.Listen("unix", admin)
			if err != nil {
				t.Fatal(err)
			}
			adminHits := serveHere(t, la, `ADMIN {"programs":["web"]}`)
			// Another root-owned socket (docker.sock, supervisord's).
			other := filepath.Join(rootDir, "docker.sock")
			startProgram(t, other, "ROOTSOCK", 0, 0)

			var socks []string
			var progs []*program
			peers := map[string][]uint32{}
			for i := range tt.n {
				s := filepath.Join(appDir, fmt.Sprintf("web%d.sock", i))
				socks = append(socks, s)
				progs = append(progs, startProgram(t, s, "app", uid, gid))
				peers["unix:"+s] = []uint32{uint32(uid)}
			}
			cfg := tt.cfg(socks)
			cfg.Listen = freeAddr(t)
			cfg.UpstreamPeers = peers
			h := startProxy(t, cfg)
			c := client()
			url := "http://" + cfg.Listen + "/v1/programs"

			for _, target := range []struct{ name, path, marker string }{
				{"admin socket", admin, "ADMIN"},
				{"root socket", other, "ROOTSOCK"},
			} {
				t.Run(target.name, func(t *testing.T) {
					for _, s := range socks {
						tmp := s + ".lnk"
						asUser(t, uid, gid, "ln", "-sfn", target.path, tmp)
						asUser(t, uid, gid, "mv", "-T", tmp, s)
					}
					for range 3 {
						resp, body := get(t, c, url)
						if strings.Contains(body, target.marker) {
							t.Fatalf("through the link, an anonymous request reached the %s: %d %q", target.name, resp.StatusCode, body)
						}
						if resp.StatusCode != 502 && resp.StatusCode != 503 {
							t.Errorf("through the link: %d %q, want 502 or 503", resp.StatusCode, body)
						}
					}
				})
			}
			if n := adminHits.Load(); n != 0 {
				t.Errorf("the admin socket got %d requests", n)
			}
			if h.logs.FilterMessage("unix upstream connection refused").Len() == 0 {
				t.Errorf("no refused connection logged; logs: %v", h.logs.All())
			}

			// The program restarts: it removes the link and listens again.
			for i, s := range socks {
				progs[i].kill()
				progs[i] = startProgram(t, s, "app", uid, gid)
			}
			want := func() map[string]bool {
				m := map[string]bool{}
				for _, p := range progs {
					m[fmt.Sprintf("app pid %d", p.pid())] = true
				}
				return m
			}
			// A pool's upstreams may still be marked down by their health
			// checks: wait (bounded) for the restarted program to answer.
			retryUntil(t, 30*time.Second, "the restarted program answers", func() error {
				resp, body := get(t, c, url)
				if resp.StatusCode != 200 || !want()[body] {
					return fmt.Errorf("%d %q", resp.StatusCode, body)
				}
				return nil
			})
			// And once more after another restart (keep-alive: a new
			// connection to the new process, checked again).
			for i, s := range socks {
				progs[i].kill()
				progs[i] = startProgram(t, s, "app", uid, gid)
			}
			retryUntil(t, 30*time.Second, "the program answers after a second restart", func() error {
				resp, body := get(t, c, url)
				if resp.StatusCode != 200 || !want()[body] {
					return fmt.Errorf("%d %q", resp.StatusCode, body)
				}
				return nil
			})
		})
	}
}

// TestUnixUpstreamOtherUIDRefused: a socket of the app user's uid serves;
// one listened by another uid (the program's socket replaced by another
// user's) is refused, and so is every unix upstream's socket when it is
// hostctl's own, listed or not.
func TestUnixUpstreamOtherUIDRefused(t *testing.T) {
	uid, _ := updialApp(t)
	dir, err := shortTempDir(t)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	sock := filepath.Join(dir, "web.sock")
	startProgram(t, sock, "root-run", 0, 0) // not the app user's uid
	zero := time.Duration(0)
	cfg := Config{Listen: freeAddr(t), Upstream: "unix:" + sock, RetryFor: &zero,
		UpstreamPeers: map[string][]uint32{"unix://" + sock: {uint32(uid)}}}
	h := startProxy(t, cfg)
	resp, body := get(t, client(), "http://"+cfg.Listen+"/")
	if resp.StatusCode != 502 || strings.Contains(body, "root-run") {
		t.Fatalf("a socket of uid 0 for a program of uid %d: %d %q, want 502", uid, resp.StatusCode, body)
	}
	// A config that lists the socket's real user: it serves.
	cfg.UpstreamPeers = map[string][]uint32{"unix:" + sock: {uint32(uid), 0}}
	if err := h.p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if resp, body := get(t, client(), "http://"+cfg.Listen+"/"); resp.StatusCode != 200 || !strings.HasPrefix(body, "root-run") {
		t.Fatalf("with uid 0 allowed: %d %q, want 200", resp.StatusCode, body)
	}
	if n := h.logs.FilterField(zap.Uint32("peer_uid", 0)).Len(); n == 0 {
		t.Errorf("the refusal was not logged with the peer's uid; logs: %v", h.logs.All())
	}
}

// BenchmarkDialUnix compares a checked dial (open O_PATH, fstat, connect
// through /proc/self/fd, SO_PEERCRED) with a plain one, per connection
// (each accepted and closed by the listener too).
func BenchmarkDialUnix(b *testing.B) {
	dir, err := os.MkdirTemp("/tmp", "hcb")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "up.sock")
	l := listenElsewhere(b, sock)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"plain", func() (net.Conn, error) { var d net.Dialer; return d.DialContext(ctx, "unix", sock) }},
		{"checked", func() (net.Conn, error) { return dialUnix(ctx, &net.Dialer{}, sock, []uint32{uint32(os.Getuid())}) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				c, err := bc.dial()
				if err != nil {
					b.Fatal(err)
				}
				s, err := l.Accept() // one at a time: the backlog never fills
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
				c.Close()
			}
		})
	}
}
