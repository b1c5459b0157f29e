package trust

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hostctl/hostctl/supervisor/internal/testuser"
)

// world returns a root-owned 0755 dir that the attacker can reach, with
// shared/ inside: a sticky, world-writable dir like /tmp.
func world(t *testing.T) (root, shared string) {
	t.Helper()
	root, err := os.MkdirTemp("", "hct-trust-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	shared = filepath.Join(root, "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	return root, shared
}

func write(t *testing.T, path, body string, mode fs.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return path
}

func mkdir(t *testing.T, path string, mode fs.FileMode) string {
	t.Helper()
	if err := os.Mkdir(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReadFile attacks ReadFile's rule from every side a local user has:
// a file or a directory of theirs on the way, a write bit for them, a link
// they planted in a shared dir. Each refusal names the path at fault.
func TestReadFile(t *testing.T) {
	u := testuser.Ensure(t)
	root, shared := world(t)
	secret := write(t, filepath.Join(root, "secret"), "s3cret-token-0123456789\n", 0o600)
	rootDir := mkdir(t, filepath.Join(root, "etc"), 0o755)
	linkToSecret := filepath.Join(rootDir, "link")
	if err := os.Symlink(secret, linkToSecret); err != nil {
		t.Fatal(err)
	}

	// The attacker's own file, made by the attacker in the shared dir.
	u.Shell(t, "umask 077 && echo attacker-token-0123456789 > "+shared+"/token")
	// A root file inside a dir the attacker made (they can swap it).
	u.Shell(t, "mkdir -m 755 "+shared+"/app")
	inUserDir := filepath.Join(shared, "app", "token")
	write(t, inUserDir, "root-token-0123456789\n", 0o600)
	// A link the attacker planted in the shared dir, to a root file whose
	// contents they know (the hostname is world-readable).
	u.Shell(t, "ln -s /etc/hostname "+shared+"/hostname-token")
	// A link in a dir the attacker owns.
	u.Shell(t, "ln -s /etc/hostname "+shared+"/app/via-link")
	// A root dir under the shared one: trusted (like /tmp/hostctl-xyz made
	// by root); a file given to the attacker in a root dir: not.
	rootInShared := mkdir(t, filepath.Join(shared, "rootdir"), 0o700)
	okInShared := write(t, filepath.Join(rootInShared, "token"), "fine\n", 0o600)
	given := write(t, filepath.Join(rootDir, "given"), "x\n", 0o600)
	if err := os.Chown(given, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	groupDir := mkdir(t, filepath.Join(root, "groupw"), 0o775)
	inGroupDir := write(t, filepath.Join(groupDir, "token"), "x\n", 0o600)
	fifo := filepath.Join(rootDir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		path    string
		kind    Kind
		refused string // the path the error must name; "" = accepted
		warn    bool
	}{
		{name: "root 0600 secret", path: secret, kind: Secret},
		{name: "through a root link", path: linkToSecret, kind: Secret},
		{name: "root 0644 secret warns", path: write(t, filepath.Join(root, "readable"), "x\n", 0o644), kind: Secret, warn: true},
		{name: "root 0644 config", path: write(t, filepath.Join(root, "cfg"), "x\n", 0o644), kind: Config},
		{name: "world-writable", path: write(t, filepath.Join(root, "ww"), "x\n", 0o666), kind: Config, refused: filepath.Join(root, "ww")},
		{name: "group-writable", path: write(t, filepath.Join(root, "gw"), "x\n", 0o620), kind: Secret, refused: filepath.Join(root, "gw")},
		{name: "the attacker's file", path: shared + "/token", kind: Secret, refused: shared + "/token"},
		{name: "given to the attacker", path: given, kind: Secret, refused: given},
		{name: "in the attacker's dir", path: inUserDir, kind: Secret, refused: shared + "/app"},
		{name: "attacker's link in a shared dir", path: shared + "/hostname-token", kind: Secret, refused: shared + "/hostname-token"},
		{name: "link in the attacker's dir", path: shared + "/app/via-link", kind: Secret, refused: shared + "/app"},
		{name: "root dir in a shared dir", path: okInShared, kind: Secret},
		{name: "group-writable dir", path: inGroupDir, kind: Secret, refused: groupDir},
		{name: "a FIFO", path: fifo, kind: Secret, refused: fifo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, warn, err := ReadFile(tc.path, tc.kind)
			if tc.refused != "" {
				var te *Error
				if !errors.As(err, &te) || te.Path != tc.refused {
					t.Fatalf("ReadFile(%s) = %q, %v; want a refusal naming %s", tc.path, data, err, tc.refused)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil || len(data) == 0 {
				t.Fatalf("ReadFile(%s): %q, %v", tc.path, data, err)
			}
			if (warn != "") != tc.warn {
				t.Errorf("warning %q, want one: %v", warn, tc.warn)
			}
		})
	}

	t.Run("relative path", func(t *testing.T) {
		t.Chdir(root)
		if _, _, err := ReadFile("secret", Secret); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, _, err := ReadFile(filepath.Join(root, "none"), Secret); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want not exist", err)
		}
	})
}

// TestPrivateDir: a dir someone else made first, or can write, is refused
// and left as it is; a missing one is made with the exact mode.
func TestPrivateDir(t *testing.T) {
	u := testuser.Ensure(t)
	root, shared := world(t)

	made := filepath.Join(shared, "hostctl-demo", "state")
	if err := PrivateDir(made, 0o700, -1); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{made, filepath.Dir(made)} {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want mode 0700", d, fi.Mode(), err)
		}
	}
	if err := PrivateDir(made, 0o700, -1); err != nil {
		t.Errorf("again: %v", err)
	}

	u.Shell(t, "mkdir -p "+shared+"/planted/state && chmod 700 "+shared+"/planted/state")
	group := mkdir(t, filepath.Join(root, "group"), 0o770)
	worldw := mkdir(t, filepath.Join(root, "world"), 0o777)
	given := mkdir(t, filepath.Join(root, "given"), 0o700)
	if err := os.Chown(given, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, dir, refused string }{
		{"made by the attacker first", shared + "/planted", shared + "/planted"},
		{"below the attacker's dir", shared + "/planted/state", shared + "/planted"},
		{"created below the attacker's dir", shared + "/planted/new", shared + "/planted"},
		{"group-writable", group, group},
		{"world-writable, not sticky", worldw, worldw},
		{"shared like /tmp", shared, shared},
		{"owned by the attacker", given, given},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := PrivateDir(tc.dir, 0o700, -1)
			var te *Error
			if !errors.As(err, &te) || te.Path != tc.refused {
				t.Fatalf("PrivateDir(%s) = %v; want a refusal naming %s", tc.dir, err, tc.refused)
			}
			if !strings.Contains(err.Error(), "run: ch") && !strings.Contains(err.Error(), "remove it") {
				t.Errorf("%v: says nothing of what to do", err)
			}
			t.Logf("refused: %v", err)
		})
	}
	if _, err := os.Lstat(shared + "/planted/new"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("PrivateDir created a dir below the attacker's: %v", err)
	}
}

// TestOwnFiles: what hostctl reads back from its state dir must be what it
// wrote; what it writes never goes through a name planted there.
func TestOwnFiles(t *testing.T) {
	u := testuser.Ensure(t)
	root, shared := world(t)
	state := mkdir(t, filepath.Join(root, "state"), 0o700)
	victim := write(t, filepath.Join(root, "victim"), "precious\n", 0o600)

	// Links at the old fixed temp name and at the file itself.
	path := filepath.Join(state, "drain.json")
	for _, name := range []string{path + ".tmp", path} {
		if err := os.Symlink(victim, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ReadOwnFile(path); err == nil {
		t.Errorf("ReadOwnFile read through a symbolic link")
	}
	if err := WriteOwnFile(path, []byte(`{"draining":true}`), 0o640); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("written through a planted link: victim holds %q", b)
	}
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o640 {
		t.Fatalf("%s: %v, %v; want a regular file, mode 0640", path, fi.Mode(), err)
	}
	if b, err := ReadOwnFile(path); err != nil || string(b) != `{"draining":true}` {
		t.Errorf("ReadOwnFile = %q, %v", b, err)
	}
	ents, _ := os.ReadDir(state)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}

	// The attacker's own file, and a file others can write.
	u.Shell(t, "echo '1 x' > "+shared+"/record")
	writable := write(t, filepath.Join(state, "writable"), "1 x\n", 0o666)
	for _, p := range []string{shared + "/record", writable} {
		var te *Error
		if _, err := ReadOwnFile(p); !errors.As(err, &te) {
			t.Errorf("ReadOwnFile(%s) = %v, want a refusal", p, err)
		}
	}
}
