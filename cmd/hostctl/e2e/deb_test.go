package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDebianPackage builds the package as `make deb` does, checks its
// metadata and contents with dpkg-deb, installs it with dpkg into a
// scratch root (twice: the second is an upgrade, which keeps an edited
// conffile), runs the installed binary's check on the installed config
// in that root, then purges it. dpkg runs the maintainer scripts without
// a chroot (DPKG_ROOT) in a mount namespace where everything but the
// scratch root is read-only: a script that wrote to this machine's /etc
// or /var would fail the install.
func TestDebianPackage(t *testing.T) {
	for _, tool := range []string{"make", "git", "dpkg", "dpkg-deb", "unshare", "chroot", "groupadd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (Debian's dpkg, util-linux, coreutils, passwd, make, git)", tool)
		}
	}
	root := moduleRoot(t)
	out := t.TempDir()
	build := exec.Command("make", "--no-print-directory", "deb", "DEB_DIR="+out)
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "hostctl_*_amd64.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb made %v, want one hostctl_VERSION_amd64.deb", debs)
	}
	deb := debs[0]
	version := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(deb), "hostctl_"), "_amd64.deb")

	run := func(name string, args ...string) string {
		t.Helper()
		b, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
		}
		return string(b)
	}

	// Metadata.
	info := run("dpkg-deb", "--info", deb)
	for _, want := range []string{
		"Package: hostctl\n", "Version: " + version + "\n", "Architecture: amd64\n", "Section: admin\n",
		"Homepage: https://github.com/hostctl/hostctl\n", "Description: supervises a Python web app's programs and serves its site\n",
		" postinst ", " prerm ", " postrm ", " conffiles ",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
		}
	}
	if conf := run("dpkg-deb", "--info", deb, "conffiles"); conf != "/etc/hostctl/hostctl.toml\n" {
		t.Errorf("conffiles = %q, want only /etc/hostctl/hostctl.toml", conf)
	}
	// Contents, with modes and owners.
	contents := run("dpkg-deb", "--contents", deb)
	for _, want := range []string{
		`-rwxr-xr-x root/root +\d+ \S+ \S+ \./usr/bin/hostctl$`,
		`drwxr-x--- root/root +0 \S+ \S+ \./etc/hostctl/$`,
		`-rw-r----- root/root +\d+ \S+ \S+ \./etc/hostctl/hostctl\.toml$`,
		`-rw-r--r-- root/root +\d+ \S+ \S+ \./usr/lib/systemd/system/hostctl\.service$`,
		`-rw-r--r-- root/root +\d+ \S+ \S+ \./usr/share/bash-completion/completions/hostctl$`,
		`-rw-r--r-- root/root +\d+ \S+ \S+ \./usr/share/zsh/vendor-completions/_hostctl$`,
		`-rw-r--r-- root/root +\d+ \S+ \S+ \./usr/share/doc/hostctl/copyright$`,
	} {
		if !regexp.MustCompile(`(?m)` + want).MatchString(contents) {
			t.Errorf("dpkg-deb --contents has no line matching %s:\n%s", want, contents)
		}
	}

	// A scratch root: the files a fresh Debian has for dpkg and groupadd.
	scratch := t.TempDir()
	for path, text := range map[string]string{
		"etc/passwd":             "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":              "root:x:0:\n",
		"etc/shadow":             "root:*:20000:0:99999:7:::\n",
		"etc/gshadow":            "root:*::\n",
		"var/lib/dpkg/status":    "",
		"var/lib/dpkg/available": "",
	} {
		p := filepath.Join(scratch, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"} {
		if err := os.MkdirAll(filepath.Join(scratch, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// dpkg ARGS... on the scratch root, all else read-only.
	dpkg := func(args ...string) string {
		t.Helper()
		script := `set -e
root=$1; shift
mount --bind "$root" "$root"
mount -o remount,bind,ro /
exec dpkg --root="$root" --force-script-chrootless --log="$root/var/log/dpkg.log" "$@"`
		return run("unshare", append([]string{"--mount", "/bin/sh", "-c", script, "sh", scratch}, args...)...)
	}
	in := func(path string) string { return filepath.Join(scratch, path) }
	dpkg("--install", deb)

	server, err := os.ReadFile(filepath.Join(root, "configs", "server.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(in("etc/hostctl/hostctl.toml")); !bytes.Equal(got, server) {
		t.Errorf("/etc/hostctl/hostctl.toml is not configs/server.toml")
	}
	if !bytes.Contains(server, []byte("\ngroup = \"hostctl\"\n")) {
		t.Errorf("configs/server.toml does not give the admin socket to the hostctl group")
	}
	for path, want := range map[string]os.FileMode{
		"etc/hostctl":                            os.ModeDir | 0o750,
		"etc/hostctl/hostctl.toml":               0o640,
		"var/lib/hostctl":                        os.ModeDir | 0o700, // trust.PrivateDir: not writable by group or others
		"var/log/hostctl":                        os.ModeDir | 0o750, // logfile.CheckDir: not writable by others
		"usr/bin/hostctl":                        0o755,
		"usr/lib/systemd/system/hostctl.service": 0o644,
	} {
		fi, err := os.Lstat(in(path))
		if err != nil {
			t.Errorf("not installed: %v", err)
			continue
		}
		if fi.Mode() != want {
			t.Errorf("/%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	if g, _ := os.ReadFile(in("etc/group")); !regexp.MustCompile(`(?m)^hostctl:x:[1-9]\d{0,2}:$`).Match(g) {
		t.Errorf("postinst made no system group hostctl (gid below 1000):\n%s", g)
	}
	unit, _ := os.ReadFile(in("usr/lib/systemd/system/hostctl.service"))
	if !bytes.Contains(unit, []byte("\nExecStart=/usr/bin/hostctl run -c /etc/hostctl/hostctl.toml\n")) || bytes.Contains(unit, []byte("/usr/local/bin")) {
		t.Errorf("the unit does not start the package's /usr/bin/hostctl:\n%s", grep(string(unit), "hostctl run"))
	}
	if b, _ := os.ReadFile(in("usr/share/bash-completion/completions/hostctl")); !bytes.Contains(b, []byte("__start_hostctl")) {
		t.Errorf("the bash completion is not cobra's for hostctl")
	}
	if b, _ := os.ReadFile(in("usr/share/zsh/vendor-completions/_hostctl")); !bytes.HasPrefix(b, []byte("#compdef hostctl")) {
		t.Errorf("the zsh completion does not start with #compdef hostctl")
	}
	if st := run("dpkg", "--root="+scratch, "--status", "hostctl"); !strings.Contains(st, "Status: install ok installed\n") || !strings.Contains(st, "Version: "+version+"\n") {
		t.Errorf("dpkg --status hostctl in the scratch root:\n%s", st)
	}

	// The installed binary checks the installed config, in that root: the
	// group, the dirs and the config are the package's, nothing of this
	// machine's. (/run/hostctl, the socket's dir, is made by systemd at
	// start, as RuntimeDirectory=; check does not need it.)
	if b, err := exec.Command("chroot", scratch, "/usr/bin/hostctl", "check", "-c", "/etc/hostctl/hostctl.toml").CombinedOutput(); err != nil ||
		!strings.Contains(string(b), "/etc/hostctl/hostctl.toml: OK: 0 programs") {
		t.Errorf("hostctl check in the scratch root: %v\n%s", err, b)
	}
	if b, _ := exec.Command("chroot", scratch, "/usr/bin/hostctl", "version").CombinedOutput(); !strings.HasPrefix(string(b), "hostctl ") {
		t.Errorf("hostctl version: %s", b)
	}

	// An upgrade (here to the same version) keeps the administrator's
	// edit of the conffile and the dirs.
	edited := append(server, []byte("# edited by the administrator\n")...)
	if err := os.WriteFile(in("etc/hostctl/hostctl.toml"), edited, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in("var/lib/hostctl/kept"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dpkg("--install", deb)
	if got, _ := os.ReadFile(in("etc/hostctl/hostctl.toml")); !bytes.Equal(got, edited) {
		t.Errorf("the upgrade replaced the edited /etc/hostctl/hostctl.toml")
	}
	if _, err := os.Stat(in("var/lib/hostctl/kept")); err != nil {
		t.Errorf("the upgrade lost the state dir's files: %v", err)
	}

	// Purge: the files, the conffile, the state and the logs go; the group
	// stays (files may still be owned by it).
	dpkg("--purge", "hostctl")
	for _, path := range []string{"usr/bin/hostctl", "etc/hostctl/hostctl.toml", "var/lib/hostctl", "var/log/hostctl"} {
		if _, err := os.Lstat(in(path)); err == nil {
			t.Errorf("/%s is still there after dpkg --purge", path)
		}
	}
}

func grep(text, part string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, part) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
