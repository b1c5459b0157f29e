package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
