package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/testbin"
)

// TestFleetStatus is issue 13 §4: `hostctl status --fleet` reads the
// programs of two real webservers (hostctl daemons on 127.0.0.2 and
// 127.0.0.3, each with a TCP admin listener and its own token) into one
// table, and says in one line each why the others do not answer: a
// closed port, a listener that accepts and never answers, a wrong token.
// It returns once the timeout is over, and its exit status says whether
// every host answered with every program RUNNING.
func TestFleetStatus(t *testing.T) {
	bin, err := testbin.Hostctl()
	if err != nil {
		t.Fatal(err)
	}
	tmp := shortTempDir(t)
	env := testbin.Env(os.Environ())
	web1 := startAdminWebserver(t, bin, filepath.Join(tmp, "web1"), "127.0.0.2", "app", "worker")
	web2 := startAdminWebserver(t, bin, filepath.Join(tmp, "web2"), "127.0.0.3", "app")
	for _, w := range []*adminWebserver{web1, web2} {
		for _, p := range w.programs {
			if _, err := w.d.waitState(0, 30*time.Second, p, "RUNNING"); err != nil {
				t.Fatalf("%s: %v", w.url, err)
			}
		}
	}

	// Accepts connections, never answers.
	hung, err := net.Listen("tcp", "127.0.0.5:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	closed := net.JoinHostPort("127.0.0.4", strconv.Itoa(freePortsOn(t, "127.0.0.4", 1)[0]))
	wrongToken := filepath.Join(tmp, "wrong.token")
	os.WriteFile(wrongToken, []byte("not-the-token-of-web2-at-all\n"), 0o600)

	// Long enough for the daemons that answer to do so on a busy machine
	// (a race-built hostctl under load), whose answers do not wait for
	// it; the hung host always reaches it.
	const timeout = 10 * time.Second
	front := func(name string, hosts ...[3]string) string {
		t.Helper()
		var b strings.Builder
		fmt.Fprintf(&b, "[admin]\nsocket = %q\nstate_dir = %q\n\n[fleet]\ntimeout = %q\n", filepath.Join(tmp, "front.sock"), filepath.Join(tmp, "front-state"), timeout.String())
		for _, h := range hosts {
			fmt.Fprintf(&b, "\n[[fleet.host]]\nname = %q\nurl = %q\ntoken_file = %q\n", h[0], h[1], h[2])
		}
		path := filepath.Join(tmp, name)
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	h1 := [3]string{"web1", web1.url, web1.tokenFile}
	h2 := [3]string{"web2", web2.url, web2.tokenFile}
	// status runs hostctl status --fleet, which must return: it is killed
	// (and the test fails) a minute past the timeout, a bound for a hang,
	// not a measure of speed.
	status := func(config string) (string, int, time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "status", "--fleet", "-c", config)
		cmd.Dir, cmd.Env = tmp, env
		t0 := time.Now()
		b, err := cmd.CombinedOutput()
		took, out := time.Since(t0), string(b)
		if ctx.Err() != nil {
			t.Fatalf("hostctl status --fleet still running a minute past its %s timeout:\n%s", timeout, out)
		}
		testbin.CheckRace(t, "hostctl status --fleet", nil, out)
		code := 0
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("hostctl status --fleet: %v\n%s", err, out)
		}
		return out, code, took
	}
	row := func(host, name, state string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^` + host + `\s+` + name + `\s+` + state + `\s+\d+\s`)
	}

	t.Run("all answer", func(t *testing.T) {
		out, code, took := status(front("front-ok.toml", h1, h2))
		t.Logf("hostctl status --fleet (%s, exit %d):\n%s", took.Round(time.Millisecond), code, out)
		if code != 0 {
			t.Errorf("exit %d, want 0 with every program RUNNING", code)
		}
		for _, r := range []*regexp.Regexp{row("web1", "app", "RUNNING"), row("web1", "worker", "RUNNING"), row("web2", "app", "RUNNING")} {
			if !r.MatchString(out) {
				t.Errorf("no line matching %s", r)
			}
		}
		if !strings.Contains(out, "fleet: 2 of 2 hosts answered") {
			t.Errorf("no summary line")
		}
	})

	t.Run("three do not answer", func(t *testing.T) {
		out, code, took := status(front("front-down.toml", h1, h2,
			[3]string{"down", "http://" + closed, web2.tokenFile},
			[3]string{"hung", "http://" + hung.Addr().String(), web2.tokenFile},
			[3]string{"badtoken", web2.url, wrongToken}))
		t.Logf("hostctl status --fleet (%s, exit %d):\n%s", took.Round(time.Millisecond), code, out)
		if code != 1 {
			t.Errorf("exit %d, want 1 with hosts not answering", code)
		}
		for _, want := range []string{
			"down      NOT ANSWERING (refused): connection refused",
			"hung      NOT ANSWERING (timeout): no answer within 10s",
			"badtoken  NOT ANSWERING (bad token): the host refused the token (401)",
			"fleet: 2 of 5 hosts answered",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in the output", want)
			}
		}
		if !row("web2", "app", "RUNNING").MatchString(out) {
			t.Errorf("web2's app missing beside the hosts that do not answer")
		}
	})

	t.Run("a program stopped", func(t *testing.T) {
		if out, err := run(tmp, env, bin, "stop", "worker", "-c", web1.config); err != nil {
			t.Fatalf("hostctl stop worker on web1: %v\n%s", err, out)
		}
		out, code, _ := status(front("front-ok.toml", h1, h2))
		if code != 3 {
			t.Errorf("exit %d, want 3 (as hostctl status) with an autostart program STOPPED\n%s", code, out)
		}
		if !regexp.MustCompile(`(?m)^web1\s+worker\s+STOPPED\s`).MatchString(out) {
			t.Errorf("web1's worker not shown STOPPED:\n%s", out)
		}
	})
}

// adminWebserver is a hostctl running sleeping programs, with a TCP admin
// listener on its own loopback address and token.
type adminWebserver struct {
	d                      *daemon
	config, url, tokenFile string
	programs               []string
}

func startAdminWebserver(t *testing.T, bin, dir, ip string, programs ...string) *adminWebserver {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(freePortsOn(t, ip, 1)[0]))
	w := &adminWebserver{config: filepath.Join(dir, "hostctl.toml"), url: "http://" + addr, tokenFile: filepath.Join(dir, "admin.token"), programs: programs}
	os.WriteFile(w.tokenFile, []byte("token-of-"+ip+"-0123456789\n"), 0o600)
	var b strings.Builder
	fmt.Fprintf(&b, "[admin]\nsocket = %q\nstate_dir = %q\nlisten = %q\ntoken_file = %q\n\n[log]\ndir = %q\n",
		filepath.Join(dir, "hostctl.sock"), filepath.Join(dir, "state"), addr, w.tokenFile, filepath.Join(dir, "log"))
	for _, p := range programs {
		fmt.Fprintf(&b, "\n[program.%s]\ncommand = [\"/bin/sleep\", \"1000\"]\nstart_secs = \"0s\"\nstop_timeout = \"2s\"\n", p)
	}
	if err := os.WriteFile(w.config, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	w.d = startConfigDaemon(t, bin, dir, w.config, testbin.Env(os.Environ()))
	t.Cleanup(func() {
		if err := w.d.stop(30 * time.Second); err != nil {
			t.Error(err)
			w.d.cmd.Process.Kill()
			<-w.d.done
		}
		testbin.CheckRace(t, "hostctl run ("+ip+")", w.d.cmd.ProcessState, w.d.logText())
		if t.Failed() {
			t.Logf("hostctl on %s, log:\n%s", ip, w.d.logText())
		}
	})
	return w
}
