package e2e

// Issue 19, the host's part, attacked through the real hostctl as a real
// unprivileged user (hct-host): state and socket dirs someone else made,
// links planted where hostctl writes, config and secret files another
// user owns or can write.

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testuser"
)

const attacker = "hct-host"

// sharedTmp returns a sticky, world-writable dir like /tmp, of this test's
// own, below a root dir the attacker can pass through.
func sharedTmp(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "hcs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	shared := filepath.Join(base, "tmp")
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	return shared
}

// rootOnly writes a root-only file standing for /etc/shadow, dir/name,
// and returns its path.
func rootOnly(t testing.TB, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("root's secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func unchanged(t *testing.T, victim string) {
	t.Helper()
	if b, err := os.ReadFile(victim); err != nil || string(b) != "root's secret\n" {
		t.Errorf("%s was written through a planted link: %q, %v", victim, b, err)
	}
}

// userGroup starts a process group of the attacker's and returns its pid
// and the record hostctl would have written for it in state/pgroups/PID
// (its start time from /proc, so the pid-reuse guard passes).
func userGroup(t *testing.T, u testuser.User) (int, string) {
	t.Helper()
	cmd := u.Command("sleep", "1000")
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	return cmd.Process.Pid, f[19] + " web" // field 22, starttime
}

// notKilled fails t if pid has exited or has a SIGKILL pending: once
// hostctl has run its start-up (it kills recorded survivors before it
// starts anything), a kill it sent shows at once, as a pending SIGKILL
// (ShdPnd/SigPnd) or a zombie.
func notKilled(t *testing.T, pid int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("the user's process %d is gone: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "State":
			if strings.HasPrefix(v, "Z") {
				t.Errorf("hostctl killed the user's process %d", pid)
			}
		case "SigPnd", "ShdPnd":
			if m, err := strconv.ParseUint(v, 16, 64); err == nil && m&(1<<8) != 0 {
				t.Errorf("hostctl sent SIGKILL to the user's process %d", pid)
			}
		}
	}
}

// startOrRefuse starts hostctl run and returns once it has either exited
// (true) or sent READY=1 (false).
func startOrRefuse(t *testing.T, cfg func(t testing.TB, dir string) (string, []string)) (*testDaemon, bool) {
	t.Helper()
	d := startDaemon(t, "", daemonOpts{noReady: true, config: cfg})
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case <-d.done:
			return d, true
		case msg := <-d.noteC:
			if strings.Contains(msg, "READY=1") {
				return d, false
			}
		case <-deadline.C:
			t.Fatalf("hostctl neither exited nor was ready within 60s:\n%s", d.log())
		}
	}
}

// TestStateAndSocketDirsMadeByAnotherUser is issue 19's /tmp/hostctl-demo:
// a local user creates hostctl's state dir (or socket dir) before hostctl
// does, and plants a process group record naming a group of its own and
// links at the old fixed temp names. hostctl must refuse the dir, kill
// nothing and write nothing through the links.
func TestStateAndSocketDirsMadeByAnotherUser(t *testing.T) {
	u := testuser.Ensure(t, attacker)
	shared := sharedTmp(t)
	victim := rootOnly(t, filepath.Dir(shared), "shadow")
	pid, record := userGroup(t, u)

	demo := filepath.Join(shared, "hostctl-demo")
	u.Shell(t, fmt.Sprintf(`mkdir -p %[1]s/state/pgroups %[1]s/run && echo '%[2]s' > %[1]s/state/pgroups/%[3]d &&
		ln -s %[4]s %[1]s/state/drain.json.tmp && ln -s %[4]s %[1]s/state/alerts.json.tmp && chmod -R go-w %[1]s`,
		demo, record, pid, victim))

	for _, tc := range []struct{ name, key, socket, state string }{
		{"state dir", "admin.state_dir", "", filepath.Join(demo, "state")},
		{"socket dir", "admin socket directory", filepath.Join(demo, "run", "hostctl.sock"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, exited := startOrRefuse(t, func(t testing.TB, dir string) (string, []string) {
				socket, state := tc.socket, tc.state
				if socket == "" {
					socket = filepath.Join(dir, "run", "hostctl.sock")
				}
				if state == "" {
					state = filepath.Join(dir, "state")
				}
				cfg := fmt.Sprintf("[admin]\nsocket = %q\nstate_dir = %q\n\n[log]\ndir = %q\n\n[program.web]\ncommand = \"sleep 1000\"\n",
					socket, state, filepath.Join(dir, "log"))
				p := filepath.Join(dir, "hostctl.toml")
				if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
					t.Fatal(err)
				}
				return p, nil
			})
			if !exited {
				t.Errorf("hostctl started on a %s that %s made", tc.name, attacker)
			} else {
				d.waitLog(t, 5*time.Second, tc.key, demo, attacker)
			}
			notKilled(t, pid)
			unchanged(t, victim)
		})
	}
}

// TestStateFilesNotWrittenThroughLinks: links at the names hostctl used
// for its temp files (drain.json.tmp, alerts.json.tmp) in a state dir of
// root's (left there, say, while it was group-writable) point at a
// root-only file. A drain and an alert must never write through them.
func TestStateFilesNotWrittenThroughLinks(t *testing.T) {
	hook := newHookReceiver(t)
	var state, victimDrain, victimAlerts string
	d := startDaemon(t, "", daemonOpts{config: func(t testing.TB, dir string) (string, []string) {
		state = filepath.Join(dir, "state")
		if err := os.Mkdir(state, 0o700); err != nil {
			t.Fatal(err)
		}
		victimDrain, victimAlerts = rootOnly(t, dir, "shadow"), rootOnly(t, dir, "gshadow")
		if err := os.Symlink(victimDrain, filepath.Join(state, "drain.json.tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(victimAlerts, filepath.Join(state, "alerts.json.tmp")); err != nil {
			t.Fatal(err)
		}
		cfg := fmt.Sprintf(`[admin]
socket = %q
state_dir = %q

[log]
dir = %q

[program.broken]
command = ["/bin/sh", "-c", "exit 3"]
start_retries = 0
autorestart = "never"

[proxy]
listen = "127.0.0.1:%d"
upstream = "127.0.0.1:%d"
health_path = "/.hostctl/health"

[alerts]
settle = "1s"

[[alerts.sink]]
name = "hook"
type = "webhook"
url = %q
secret_file = %q
`, filepath.Join(dir, "run", "hostctl.sock"), state, filepath.Join(dir, "log"), freePort(t), freePort(t), hook.url, hook.secretFile)
		p := filepath.Join(dir, "hostctl.toml")
		if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return p, nil
	}})

	if r := d.hostctl(t, "drain"); r.code != 0 {
		t.Fatalf("hostctl drain: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	unchanged(t, victimDrain) // drain answers once drain.json is written
	if fi, err := os.Lstat(filepath.Join(state, "drain.json")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("drain.json: %v; want a regular file", err)
	}

	// The FATAL alert is saved to alerts.json after its trigger.
	hook.wait("trigger", "fatal:broken", 30*time.Second)
	alerts := filepath.Join(state, "alerts.json")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Lstat(alerts); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 30s of the alert", alerts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	unchanged(t, victimAlerts)
	if fi, err := os.Lstat(alerts); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("alerts.json: %v; want a regular file", err)
	}
}

// TestConfigAndSecretFilesOfAnotherUser: hostctl check (and hostctl run)
// refuse a config that others can write or another user owns, and every
// kind of secret file the user owns; a secret every user can read is a
// warning.
func TestConfigAndSecretFilesOfAnotherUser(t *testing.T) {
	u := testuser.Ensure(t, attacker)
	shared := sharedTmp(t)
	root := filepath.Dir(shared)

	// The attacker's own token, in the attacker's own dir (token_file =
	// /home/app/token), and a token file of root's given to the attacker.
	u.Shell(t, fmt.Sprintf("mkdir %[1]s/app && umask 077 && echo attacker-chosen-token-0123456789 > %[1]s/app/token", shared))
	usersToken := filepath.Join(shared, "app", "token")
	given := filepath.Join(root, "given.token")
	if err := os.WriteFile(given, []byte("0123456789abcdef0123456789abcdef-given\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(given, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(root, "good.token")
	if err := os.WriteFile(good, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	readable := filepath.Join(root, "readable.token")
	if err := os.WriteFile(readable, []byte("0123456789abcdef0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(readable, 0o644); err != nil {
		t.Fatal(err)
	}

	head := fmt.Sprintf("[admin]\nsocket = %q\nstate_dir = %q\n", filepath.Join(root, "run", "h.sock"), filepath.Join(root, "state"))
	proxy := "\n[proxy]\nlisten = \"127.0.0.1:8080\"\nupstream = \"127.0.0.1:8000\"\n"
	secrets := map[string]func(file string) string{
		"admin.token_file": func(f string) string {
			return head + fmt.Sprintf("listen = \"127.0.0.1:9001\"\ntoken_file = %q\n", f)
		},
		"alerts.sink[0].secret_file": func(f string) string {
			return head + fmt.Sprintf("\n[[alerts.sink]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nsecret_file = %q\n", f)
		},
		"alerts.sink[0].password_file": func(f string) string {
			return head + fmt.Sprintf("\n[[alerts.sink]]\nname = \"mail\"\ntype = \"email\"\nhost = \"127.0.0.1\"\nport = 25\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\nusername = \"a\"\npassword_file = %q\n", f)
		},
		"fleet.host[0].token_file": func(f string) string {
			return head + fmt.Sprintf("\n[[fleet.host]]\nname = \"web1\"\nurl = \"http://127.0.0.1:9001\"\ntoken_file = %q\n", f)
		},
		"proxy.storage.encryption_key_file": func(f string) string {
			return head + proxy + fmt.Sprintf("\n[proxy.storage]\ntype = \"redis\"\naddress = \"127.0.0.1:6379\"\nencryption_key_file = %q\n", f)
		},
		"proxy.storage.password_file": func(f string) string {
			return head + proxy + fmt.Sprintf("\n[proxy.storage]\ntype = \"redis\"\naddress = \"127.0.0.1:6379\"\npassword_file = %q\n", f)
		},
	}
	n := 0
	write := func(t *testing.T, body string) string {
		n++
		p := filepath.Join(root, fmt.Sprintf("c%d.toml", n))
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for key, cfg := range secrets {
		t.Run(key, func(t *testing.T) {
			if r := runHostctl(t, "check", "-c", write(t, cfg(good))); r.code != 0 || r.stderr != "" {
				t.Fatalf("a good secret file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			for _, bad := range []string{usersToken, given} {
				r := runHostctl(t, "check", "-c", write(t, cfg(bad)))
				if r.code != 1 || !strings.Contains(r.stderr, key+": ") || !strings.Contains(r.stderr, attacker) {
					t.Errorf("%s owned by %s: exit %d, want 1 and an error at %s naming the user\n%s%s", bad, attacker, r.code, key, r.stdout, r.stderr)
				}
			}
			r := runHostctl(t, "check", "-c", write(t, cfg(readable)))
			if r.code != 0 || !strings.Contains(r.stderr, "warning: ") || !strings.Contains(r.stderr, key+": ") || !strings.Contains(r.stderr, "chmod o-r") {
				t.Errorf("a world-readable secret: exit %d, want 0 and a warning at %s\n%s%s", r.code, key, r.stdout, r.stderr)
			}
		})
	}

	t.Run("run logs a world-readable secret", func(t *testing.T) {
		admin := fmt.Sprintf("listen = \"127.0.0.1:%d\"\ntoken_file = %q\n", freePort(t), readable)
		d := startDaemon(t, "[program.web]\ncommand = \"sleep 1000\"\n", daemonOpts{admin: admin})
		d.waitLog(t, 10*time.Second, "admin.token_file", "every user of this machine can read", "chmod o-r")
	})

	t.Run("config", func(t *testing.T) {
		body := head + "\n[program.web]\ncommand = \"sleep 1000\"\n"
		ww := write(t, body)
		if err := os.Chmod(ww, 0o666); err != nil {
			t.Fatal(err)
		}
		r := runHostctl(t, "check", "-c", ww)
		if r.code != 1 || !strings.Contains(r.stderr, "chmod go-w") {
			t.Errorf("a world-writable config: exit %d, want 1 and what to run\n%s%s", r.code, r.stdout, r.stderr)
		}
		owned := write(t, body)
		if err := os.Chown(owned, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
		if r := runHostctl(t, "check", "-c", owned); r.code != 1 || !strings.Contains(r.stderr, attacker) {
			t.Errorf("a config %s owns: exit %d, want 1\n%s%s", attacker, r.code, r.stdout, r.stderr)
		}
		u.Shell(t, fmt.Sprintf("cat > %s/app/hostctl.toml <<'EOF'\n%sEOF", shared, body))
		if r := runHostctl(t, "check", "-c", filepath.Join(shared, "app", "hostctl.toml")); r.code != 1 || !strings.Contains(r.stderr, attacker) {
			t.Errorf("a config %s wrote: exit %d, want 1\n%s%s", attacker, r.code, r.stdout, r.stderr)
		}

		// hostctl run refuses it too, before it starts anything.
		d, exited := startOrRefuse(t, func(t testing.TB, dir string) (string, []string) {
			p := writeConfig(t, dir, "", "[program.web]\ncommand = \"sleep 1000\"\n")
			if err := os.Chmod(p, 0o666); err != nil {
				t.Fatal(err)
			}
			return p, nil
		})
		if !exited {
			t.Errorf("hostctl run started on a world-writable config")
		} else {
			d.waitLog(t, 5*time.Second, "refused", "chmod go-w")
		}
	})
}
