package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// supUser is the real unprivileged user the supervisor's security tests
// attack as (the app's user, which hostctl does not trust); the same as
// supervisor/internal/testuser, which cmd cannot import.
type supUser struct {
	name     string
	uid, gid int
}

// supEnsureUser creates hct-sup unless it exists (useradd exits 9 then, and
// 10 while another test package's useradd holds the lock). It is never
// deleted: other packages may use it at the same time.
func supEnsureUser(t *testing.T) supUser {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates the user hct-sup and runs commands as it")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "hct-sup").CombinedOutput()
		var ee *exec.ExitError
		if err == nil || errors.As(err, &ee) && ee.ExitCode() == 9 {
			break
		}
		if !errors.As(err, &ee) || ee.ExitCode() != 10 || time.Now().After(deadline) {
			t.Fatalf("useradd hct-sup: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	u, err := user.Lookup("hct-sup")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return supUser{"hct-sup", uid, gid}
}

// run runs argv as u, without supplementary groups.
func (u supUser) run(t *testing.T, argv ...string) {
	t.Helper()
	args := append([]string{"--reuid=" + strconv.Itoa(u.uid), "--regid=" + strconv.Itoa(u.gid), "--clear-groups", "--"}, argv...)
	if out, err := exec.Command("setpriv", args...).CombinedOutput(); err != nil {
		t.Fatalf("as %s: %q: %v\n%s", u.name, argv, err, out)
	}
}

// supWaitFile waits until path exists and is not empty, and returns it.
func supWaitFile(t *testing.T, path string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still missing or empty after %s", path, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSecretEnvironmentStaysWithHostctl: a secret in hostctl's own
// environment (given to it for ${VAR} in the config) reaches no program
// and no probe unless the config passes it on purpose: through
// environment, or inherit_environment.
func TestSecretEnvironmentStaysWithHostctl(t *testing.T) {
	const secret = "s3cr3t-0f-h0stctl"
	out, err := os.MkdirTemp("", "hc-env")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(out) })
	// Each program writes its environment (the shell's own variables
	// aside) to a file; the probe of "plain" does the same.
	dump := func(name string) string {
		f := filepath.Join(out, name)
		return fmt.Sprintf(`env > %s.tmp && mv %s.tmp %s`, f, f, f)
	}
	programs := fmt.Sprintf(`
[program.plain]
command = ["/bin/sh", "-c", %q]
start_secs = "0s"
ready = { exec = ["/bin/sh", "-c", %q], interval = "50ms" }

[program.named]
command = ["/bin/sh", "-c", %q]
start_secs = "0s"
inherit_environment = ["HOSTCTL_TEST_SECRET", "HOSTCTL_TEST_PREFIX_*"]

[program.everything]
command = ["/bin/sh", "-c", %q]
start_secs = "0s"
inherit_environment = true

[program.expanded]
command = ["/bin/sh", "-c", %q]
start_secs = "0s"
environment = { TOKEN = "${HOSTCTL_TEST_SECRET}" }
`, dump("plain")+"; exec sleep 1000", dump("probe"), dump("named")+"; exec sleep 1000",
		dump("everything")+"; exec sleep 1000", dump("expanded")+"; exec sleep 1000")
	startDaemon(t, programs, daemonOpts{env: []string{
		"HOSTCTL_TEST_SECRET=" + secret, "HOSTCTL_TEST_PREFIX_A=a", "HOSTCTL_TEST_OTHER=other",
		"LANG=C.UTF-8", "TZ=UTC",
	}})
	env := map[string]map[string]string{}
	for _, name := range []string{"plain", "probe", "named", "everything", "expanded"} {
		env[name] = map[string]string{}
		for _, line := range strings.Split(supWaitFile(t, filepath.Join(out, name), 30*time.Second), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				env[name][k] = v
			}
		}
	}
	for _, name := range []string{"plain", "probe"} {
		for k, v := range env[name] {
			if strings.Contains(v, secret) || strings.HasPrefix(k, "HOSTCTL_TEST_") || k == "NOTIFY_SOCKET" {
				t.Errorf("%s sees %s=%s, which it was not given", name, k, v)
			}
		}
		// The default set comes from hostctl's environment.
		for k, want := range map[string]string{"PATH": os.Getenv("PATH"), "LANG": "C.UTF-8", "TZ": "UTC", "HOME": os.Getenv("HOME")} {
			if env[name][k] != want {
				t.Errorf("%s: %s=%q, want hostctl's %q (the default set)", name, k, env[name][k], want)
			}
		}
	}
	if env["named"]["HOSTCTL_TEST_SECRET"] != secret || env["named"]["HOSTCTL_TEST_PREFIX_A"] != "a" {
		t.Errorf("inherit_environment = [names]: got %v", env["named"])
	}
	if _, ok := env["named"]["HOSTCTL_TEST_OTHER"]; ok {
		t.Errorf("inherit_environment = [names] passed HOSTCTL_TEST_OTHER, which it does not name")
	}
	if env["everything"]["HOSTCTL_TEST_SECRET"] != secret || env["everything"]["HOSTCTL_TEST_OTHER"] != "other" {
		t.Errorf("inherit_environment = true: got %v", env["everything"])
	}
	if _, ok := env["everything"]["NOTIFY_SOCKET"]; ok {
		t.Errorf("inherit_environment = true passed systemd's NOTIFY_SOCKET, meant for hostctl")
	}
	if env["expanded"]["TOKEN"] != secret {
		t.Errorf("environment = { TOKEN = \"${HOSTCTL_TEST_SECRET}\" }: TOKEN=%q, want the secret (expanded from hostctl's environment)", env["expanded"]["TOKEN"])
	}
	if _, ok := env["expanded"]["HOSTCTL_TEST_SECRET"]; ok {
		t.Errorf("environment = { TOKEN = ... } also passed HOSTCTL_TEST_SECRET itself")
	}
}

// TestLogLinksThroughTheDaemon: the log dir is handed to the app's user
// (hct-sup) after the start; the user swaps a program's log file for a
// link to a file of root's. Neither SIGUSR1 (reopen) nor a restart of
// hostctl makes root write there: the reopen stops the log (output
// dropped and counted, an error logged), the restart is refused with the
// key path and what to do.
func TestLogLinksThroughTheDaemon(t *testing.T) {
	u := supEnsureUser(t)
	root, err := os.MkdirTemp("", "hc-logsec")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	logDir, secret := filepath.Join(root, "log"), filepath.Join(root, "secret")
	os.Chmod(root, 0o755)
	if err := os.Mkdir(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(secret, 0o700); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(secret, "cron-x")
	d := startDaemon(t, `
[program.chatty]
command = ["/bin/sh", "-c", "while :; do echo '* * * * * root touch /pwned'; sleep 0.05; done"]
start_secs = "0s"
`, daemonOpts{logDir: logDir})
	logFile := filepath.Join(logDir, "chatty.out.log")
	supWaitFile(t, logFile, 30*time.Second)

	if err := os.Chown(logDir, u.uid, u.gid); err != nil {
		t.Fatal(err)
	}
	u.run(t, "/bin/sh", "-c", `rm -f "$1" && ln -s "$2" "$1"`, "sh", logFile, target)
	d.cmd.Process.Signal(syscall.SIGUSR1)
	// Until root has written the link's target (the attack worked) or
	// chatty's output is dropped (the log stopped).
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Lstat(target); err == nil {
			t.Fatalf("hostctl (root) followed the link at the reopen and wrote %s", target)
		}
		if d.status(t)["chatty"].DroppedLogBytes > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no output of chatty counted as dropped within 30s of SIGUSR1")
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.waitLog(t, 30*time.Second, "log dir is not safe for root to write in", logDir+" is owned by "+u.name)
	if _, err := os.Lstat(target); err == nil {
		t.Fatalf("hostctl (root) followed the link and wrote %s", target)
	}

	d.stop()
	r := runHostctl(t, "run", "-c", d.cfg)
	if r.code == 0 || !strings.Contains(r.stderr, "log.dir: "+logDir+" is owned by "+u.name) || !strings.Contains(r.stderr, "chown root:root "+logDir) {
		t.Errorf("hostctl run on the user's log dir: exit %d\n%s\nwant refused: log.dir: %s is owned by %s ... chown root:root", r.code, r.stderr, logDir, u.name)
	}
	if _, err := os.Lstat(target); err == nil {
		t.Errorf("hostctl (root) followed the link at the restart and wrote %s", target)
	}
}

// supOOM reads /proc/PID/oom_score_adj.
func supOOM(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/oom_score_adj")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOOMScoreAdjThroughTheDaemon: hostctl lowers its own oom_score_adj
// below its programs', which start at their own (0, or oom_score_adj), not
// at hostctl's. The daemon is started at 300 (raising needs no privilege):
// it lowers itself to -900 where it may (CAP_SYS_RESOURCE; a container may
// not give it even to root), else it says so and stays at 300; the
// programs start at their values either way.
func TestOOMScoreAdjThroughTheDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("hostctl lowers its oom_score_adj only as root")
	}
	self, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte("300"), 0); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, `
[program.plain]
command = "sleep 1000"
start_secs = "0s"

[program.cache]
command = "sleep 1000"
start_secs = "0s"
oom_score_adj = 500
`, daemonOpts{})
	if err := os.WriteFile("/proc/self/oom_score_adj", self, 0); err != nil {
		t.Fatal(err)
	}
	own := supOOM(t, d.cmd.Process.Pid)
	switch own {
	case -900:
	case 300:
		d.waitLog(t, 10*time.Second, "cannot lower hostctl's own oom_score_adj")
		t.Logf("no CAP_SYS_RESOURCE here: hostctl stayed at 300 and said so")
	default:
		t.Errorf("hostctl's own oom_score_adj is %d, want -900 (or 300 where it may not lower it)", own)
	}
	st := d.status(t)
	for name, want := range map[string]int{"plain": 0, "cache": 500} {
		if got := supOOM(t, st[name].PID); got != want {
			t.Errorf("%s (pid %d): oom_score_adj %d, want %d (hostctl's own: %d)", name, st[name].PID, got, want, own)
		}
	}
}
