package logfile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hostctl/hostctl/supervisor/internal/testuser"
)

// The attacks on log files: the app's user (hct-sup, a real unprivileged
// user) swaps a log file or a rotated backup for a link to a file of
// root's, and waits for hostctl (root) to write there at a rotation, a
// reopen (SIGUSR1) or a restart.

// secTree is a dir tree for the attacks: root/ (root's, 0755, so the user
// can reach log/), root/log/ (the log dir, root's 0755 until a test hands
// it to the user) and root/secret/ (root's 0700: nothing appears in it
// unless root puts it there, so a file there is root following a link).
type secTree struct {
	root, log, secret string
}

func newSecTree(t *testing.T) secTree {
	t.Helper()
	root, err := os.MkdirTemp("", "hostctl-logsec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	tr := secTree{root: root, log: filepath.Join(root, "log"), secret: filepath.Join(root, "secret")}
	for dir, mode := range map[string]os.FileMode{tr.root: 0o755, tr.log: 0o755, tr.secret: 0o700} {
		if err := os.MkdirAll(dir, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// targets are the files the attacker's links point at.
func (tr secTree) targets() []string {
	return []string{filepath.Join(tr.secret, "cron-x"), filepath.Join(tr.secret, "cron-gz"), filepath.Join(tr.secret, "cron-backup")}
}

// noTargets fails the test for every target that exists: root followed a
// link there.
func (tr secTree) noTargets(t *testing.T) {
	t.Helper()
	for _, f := range tr.targets() {
		if b, err := os.ReadFile(f); err == nil {
			t.Errorf("hostctl (root) followed a link and wrote %s: %q", f, b)
		}
	}
}

// attack makes the log dir the user's (the dir became unsafe after the
// start) and, as the user, swaps the log file at name for a link to
// secret/cron-x and plants a rotated backup of it that links to a file of
// root's, with a compressed name that links to secret/cron-gz (lumberjack
// compresses a plain backup into NAME.gz, chowning and truncating it
// first), and swaps an existing backup for a link to secret/cron-backup.
func (tr secTree) attack(t *testing.T, u testuser.User, name string) {
	t.Helper()
	if err := os.Chown(tr.log, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(tr.log, name)
	ext := filepath.Ext(name)
	planted := strings.TrimSuffix(log, ext) + "-2001-01-01T00-00-00.000" + ext
	script := `set -e
rm -f "$1"; ln -s "$2" "$1"
ln -s /etc/hostname "$3"; ln -s "$4" "$3.gz"
for b in "$5"-2*; do [ -e "$b" ] || continue; case "$b" in *2001-01-01*) continue;; esac; rm -f "$b"; ln -s "$6" "$b"; done
`
	u.MustRun(t, "/bin/sh", "-c", script, "sh", log, tr.targets()[0], planted, tr.targets()[1], strings.TrimSuffix(log, ext), tr.targets()[2])
}

// secManager is a Manager on tr.log with small files, compressed backups,
// and the log entries it writes.
func secManager(t *testing.T, dir string) (*Manager, *observer.ObservedLogs, error) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.KeepFree = ""
	core, logs := observer.New(zapcore.InfoLevel)
	m, err := NewManager(cfg, zap.New(core))
	if err != nil {
		return nil, logs, err
	}
	t.Cleanup(func() { m.Close() })
	return m, logs, nil
}

var secRotation = Rotation{MaxSize: 1000, MaxBackups: 5, Compress: true}

// startLog opens app.log in tr.log and writes past max_size once, so that
// a rotated backup exists before the attack.
func startLog(t *testing.T, tr secTree) (*Manager, *observer.ObservedLogs, *Stream) {
	t.Helper()
	m, logs, err := secManager(t, tr.log)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Open(filepath.Join(tr.log, "app.log"), secRotation, false)
	if err != nil {
		t.Fatal(err)
	}
	for range 15 {
		s.Write([]byte(testLine))
	}
	waitDir(t, tr.log, "a compressed backup", func(names []string) bool {
		for _, n := range backupNames(names, "app.log") {
			if strings.HasSuffix(n, ".gz") {
				return true
			}
		}
		return false
	})
	waitAccounted(t, s, 1500)
	// The attacks come after the rotations' compression, not during it
	// (TestLinksPlantedWhileCompressing attacks during it).
	waitMillIdle(t, s)
	return m, logs, s
}

// waitMillIdle waits until the stream's mill has finished every pass
// asked for so far.
func waitMillIdle(t *testing.T, s *Stream) {
	t.Helper()
	waitStream(t, s, "the mill idle", s.millIdle)
}

// waitUnsafe waits until the stream drops output because its dir is not
// safe (or root wrote a target: the attack worked).
func waitUnsafe(t *testing.T, tr secTree, s *Stream, logs *observer.ObservedLogs) {
	t.Helper()
	waitStream(t, s, "output dropped because the log dir is unsafe, or a target written", func() bool {
		for _, f := range tr.targets() {
			if _, err := os.Stat(f); err == nil {
				return true
			}
		}
		return s.Dropped() > 0
	})
	tr.noTargets(t)
	if n := logs.FilterMessage("log dir is not safe for root to write in: dropping this log's output until it is").Len(); n != 1 {
		t.Errorf("%d errors logged about the unsafe dir, want 1", n)
	}
}

func TestSwappedLogFileBeforeRotation(t *testing.T) {
	u := testuser.Ensure(t)
	tr := newSecTree(t)
	_, logs, s := startLog(t, tr)
	tr.attack(t, u, "app.log")
	for range 20 { // past max_size: a rotation
		s.Write([]byte(testLine))
	}
	waitUnsafe(t, tr, s, logs)
	// It goes on dropping (counted), and never follows the links.
	before := s.Dropped()
	s.Write([]byte(testLine))
	waitStream(t, s, "the next line dropped", func() bool { return s.Dropped() > before })
	tr.noTargets(t)
}

func TestSwappedLogFileBeforeReopen(t *testing.T) {
	u := testuser.Ensure(t)
	tr := newSecTree(t)
	m, logs, s := startLog(t, tr)
	tr.attack(t, u, "app.log")
	err := m.Reopen()
	var ue *UnsafeDirError
	if !errors.As(err, &ue) {
		t.Errorf("Reopen after the attack: %v, want an unsafe dir error", err)
	}
	s.Write([]byte(testLine))
	waitUnsafe(t, tr, s, logs)
}

// TestSwappedLogFileBeforeRestart: hostctl stops, the dir is handed to the
// user, who plants links; hostctl starting again refuses the dir (NewManager
// and Open) before it touches anything in it.
func TestSwappedLogFileBeforeRestart(t *testing.T) {
	u := testuser.Ensure(t)
	tr := newSecTree(t)
	m, _, _ := startLog(t, tr)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	tr.attack(t, u, "app.log")
	m2, _, err := secManager(t, tr.log)
	if err == nil || !strings.Contains(err.Error(), tr.log+" is owned by "+u.Name) {
		t.Errorf("NewManager after the attack: %v, want %s is owned by %s", err, tr.log, u.Name)
	}
	if m2 == nil { // a Manager elsewhere, opening a log in the attacked dir
		if m2, _, err = secManager(t, filepath.Join(tr.root, "other")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m2.Open(filepath.Join(tr.log, "app.log"), secRotation, false); err == nil || !strings.Contains(err.Error(), "is owned by "+u.Name) {
		t.Errorf("Open after the attack: %v, want the dir refused", err)
	}
	tr.noTargets(t)
}

// TestLinkedFilesStopTheLogInASafeDir: links left in a dir that is root's
// again (or put there by root) are not followed either: the log stops.
func TestLinkedFilesStopTheLogInASafeDir(t *testing.T) {
	u := testuser.Ensure(t)
	tr := newSecTree(t)
	_, logs, s := startLog(t, tr)
	tr.attack(t, u, "app.log")
	if err := os.Chown(tr.log, 0, 0); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		s.Write([]byte(testLine))
	}
	waitUnsafe(t, tr, s, logs)
	if _, err := s.m.Open(filepath.Join(tr.log, "app.log.2"), secRotation, false); err != nil {
		t.Errorf("another log in the dir, which is safe again: %v", err)
	}
}

// TestLinksPlantedWhileCompressing: a rotation's compression is pending
// (held by a test hook) while the log dir is the user's, who plants, in
// that order, a link at the new backup's NAME.gz to a file of root's, and
// a backup that links to /etc/hostname with its NAME.gz linking to
// another. Then the mill runs, with the dir still the user's or root's
// again. Root must never create, chown, truncate or write a link's
// target; where the dir is safe again, the real backup is compressed, as
// root's, with its mode.
func TestLinksPlantedWhileCompressing(t *testing.T) {
	u := testuser.Ensure(t)
	for _, tc := range []struct {
		name      string
		rootAgain bool
	}{{"dir still the user's", false}, {"dir root's again", true}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newSecTree(t)
			m, logs, err := secManager(t, tr.log)
			if err != nil {
				t.Fatal(err)
			}
			type gate struct{ held, release chan struct{} }
			var next atomic.Pointer[gate]
			m.millHook = func(*Stream) {
				if g := next.Swap(nil); g != nil {
					close(g.held)
					<-g.release
				}
			}
			s, err := m.Open(filepath.Join(tr.log, "app.log"), secRotation, false)
			if err != nil {
				t.Fatal(err)
			}
			s.Write([]byte(testLine))
			waitAccounted(t, s, uint64(len(testLine)))
			waitMillIdle(t, s)

			g := &gate{make(chan struct{}), make(chan struct{})}
			next.Store(g)
			released := false
			defer func() {
				if !released {
					close(g.release)
				}
			}()
			for range 11 { // past max_size (1000): one rotation
				s.Write([]byte(testLine))
			}
			select {
			case <-g.held:
			case <-time.After(deadline):
				t.Fatalf("no mill pass after a rotation within %s", deadline)
			}
			names := backupNames(listDir(t, tr.log), "app.log")
			if len(names) != 1 || strings.HasSuffix(names[0], ".gz") {
				t.Fatalf("backups while the compression is held: %v, want one, uncompressed", names)
			}
			backup := filepath.Join(tr.log, names[0])
			before, err := os.Stat(backup)
			if err != nil {
				t.Fatal(err)
			}

			if err := os.Chown(tr.log, u.UID, u.GID); err != nil {
				t.Fatal(err)
			}
			planted := filepath.Join(tr.log, "app-2001-01-01T00-00-00.000.log")
			gzReal, gzPlanted := filepath.Join(tr.secret, "gz-of-backup"), filepath.Join(tr.secret, "gz-of-planted")
			u.MustRun(t, "/bin/sh", "-c", `set -e; ln -s "$2" "$1.gz"; ln -s "$4" "$3.gz"; ln -s /etc/hostname "$3"`,
				"sh", backup, gzReal, planted, gzPlanted)
			if tc.rootAgain {
				if err := os.Chown(tr.log, 0, 0); err != nil {
					t.Fatal(err)
				}
			}
			released = true
			close(g.release)
			waitMillIdle(t, s)

			for _, f := range []string{gzReal, gzPlanted} {
				if _, err := os.Lstat(f); err == nil {
					t.Errorf("hostctl (root) followed a link and created %s", f)
				}
			}
			if fi, err := os.Lstat(planted); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the planted link: %v, %v; want it left alone", fi, err)
			}
			warned := logs.FilterMessage("compressing or pruning rotated log files").Len() > 0
			if !tc.rootAgain {
				if !warned {
					t.Errorf("no warning about the pass refused in the user's dir")
				}
				return
			}
			// Root's dir again: the real backup is compressed, as a file
			// of root's with the backup's mode; the planted link is not.
			fi, err := os.Lstat(backup + ".gz")
			if err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("%s.gz: %v, %v; want the compressed backup", backup, fi, err)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm() != before.Mode().Perm() {
				t.Errorf("%s.gz: uid %d mode %v, want root's with mode %v", backup, st.Uid, fi.Mode().Perm(), before.Mode().Perm())
			}
			if _, err := os.Lstat(backup); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s after compression: %v, want removed", backup, err)
			}
			if b := readLog(t, backup+".gz"); len(b) < 1000-len(testLine) {
				t.Errorf("%s.gz holds %d bytes, want the rotated file", backup, len(b))
			}
			if !warned {
				t.Errorf("no warning about the planted link left uncompressed")
			}
		})
	}
}

func TestCheckDir(t *testing.T) {
	u := testuser.Ensure(t)
	tr := newSecTree(t)
	mk := func(path string, uid int, mode os.FileMode) string {
		if err := os.MkdirAll(path, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, uid, 0); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// Ubuntu's /var/log is root:syslog 0775: a system group may write a
	// dir above the log dir, never the log dir, nor may another group.
	const adm = 4 // Debian's and Ubuntu's adm: a system group
	sysGW := mk(filepath.Join(tr.root, "sysgw"), 0, 0o775)
	otherGW := mk(filepath.Join(tr.root, "othergw"), 0, 0o775)
	if err := os.Chown(sysGW, 0, adm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(otherGW, 0, 1500); err != nil {
		t.Fatal(err)
	}
	sticky := mk(filepath.Join(tr.root, "sticky"), 0, 0o777|os.ModeSticky)
	userOwned := mk(filepath.Join(tr.root, "userowned"), u.UID, 0o755)
	linkToUser := filepath.Join(tr.root, "link-to-user")
	if err := os.Symlink(userOwned, linkToUser); err != nil {
		t.Fatal(err)
	}
	linkToLog := filepath.Join(tr.root, "link-to-log")
	if err := os.Symlink("log", linkToLog); err != nil {
		t.Fatal(err)
	}
	userLink := filepath.Join(sticky, "userlink")
	u.MustRun(t, "ln", "-s", tr.log, userLink)
	for _, tc := range []struct {
		name, dir string
		bad       string // the path CheckDir must name; "" for safe
	}{
		{"root's", tr.log, ""},
		{"missing under root's", filepath.Join(tr.log, "a", "b"), ""},
		{"owned by the user", userOwned, userOwned},
		{"root's under the user's", mk(filepath.Join(userOwned, "log"), 0, 0o755), userOwned},
		{"missing under the user's", filepath.Join(userOwned, "missing"), userOwned},
		{"group-writable", mk(filepath.Join(tr.root, "gw"), 0, 0o775), filepath.Join(tr.root, "gw")},
		{"root's under a system group's 0775 dir", mk(filepath.Join(sysGW, "log"), 0, 0o755), ""},
		{"a system group's 0775 dir as the log dir", sysGW, sysGW},
		{"root's under another group's 0775 dir", mk(filepath.Join(otherGW, "log"), 0, 0o755), otherGW},
		{"world-writable", mk(filepath.Join(tr.root, "ww"), 0, 0o777), filepath.Join(tr.root, "ww")},
		{"sticky as the log dir", sticky, sticky},
		{"root's under a sticky dir", mk(filepath.Join(sticky, "rootlog"), 0, 0o755), ""},
		{"the user's under a sticky dir", mk(filepath.Join(sticky, "userlog"), u.UID, 0o755), filepath.Join(sticky, "userlog")},
		{"root's link to root's", linkToLog, ""},
		{"root's link to the user's", linkToUser, userOwned},
		{"the user's link in a sticky dir", userLink, userLink},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckDir(tc.dir)
			if tc.bad == "" {
				if err != nil {
					t.Errorf("CheckDir(%s) = %v, want safe", tc.dir, err)
				}
				return
			}
			var ue *UnsafeDirError
			if !errors.As(err, &ue) || ue.Path != tc.bad {
				t.Errorf("CheckDir(%s) = %v, want %s named unsafe", tc.dir, err, tc.bad)
			}
		})
	}
}

// TestLogDirRefusedInConfig: the config names the log dir and says what to
// do; NewManager refuses it too.
func TestLogDirRefusedInConfig(t *testing.T) {
	u := testuser.Ensure(t)
	tr := newSecTree(t)
	userOwned := filepath.Join(tr.root, "userlog")
	if err := os.Mkdir(userOwned, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(userOwned, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	rootUnderUser := filepath.Join(userOwned, "log")
	if err := os.Mkdir(rootUnderUser, 0o755); err != nil {
		t.Fatal(err)
	}
	for dir, culprit := range map[string]string{userOwned: userOwned, rootUnderUser: userOwned} {
		cfg := DefaultConfig()
		cfg.Dir = dir
		errs := cfg.Validate("log")
		if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "log.dir: "+culprit+" is owned by "+u.Name) ||
			!strings.Contains(errs[0].Error(), "chown root:root "+culprit) {
			t.Errorf("log.dir = %s: %v, want log.dir: %s is owned by %s ... chown root:root", dir, errs, culprit, u.Name)
		}
		if _, _, err := secManager(t, dir); err == nil {
			t.Errorf("NewManager(%s) succeeded", dir)
		}
	}
}

// TestTailNeverFollowsLinks: the log readers (tail, follow after close,
// the newest backup) open files as root for API users: never through a
// link.
func TestTailNeverFollowsLinks(t *testing.T) {
	tr := newSecTree(t)
	secret := filepath.Join(tr.secret, "token")
	if err := os.WriteFile(secret, []byte("root's secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(tr.log, "app.log")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	if b, err := TailFile(link, 10); err == nil || strings.Contains(string(b), "secret") {
		t.Errorf("TailFile through a link: %q, %v; want an error", b, err)
	}
	os.Remove(link)
	if err := os.WriteFile(link, []byte("short\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(tr.log, "app-2001-01-01T00-00-00.000.log")); err != nil {
		t.Fatal(err)
	}
	if b, err := TailFile(link, 10); strings.Contains(string(b), "secret") {
		t.Errorf("TailFile read the backup through a link: %q, %v", b, err)
	}
}

// TestGroupWritableAbove: the system groups CheckDir lets write above a
// log dir are named, for the config to refuse a program in one of them.
func TestGroupWritableAbove(t *testing.T) {
	tr := newSecTree(t)
	gw := filepath.Join(tr.root, "gw")
	if err := os.Mkdir(gw, 0o775); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(gw, 0o775); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(gw, 0, 4); err != nil {
		t.Fatal(err)
	}
	if got := GroupWritableAbove(filepath.Join(gw, "log")); !slices.Equal(got, []uint32{4}) {
		t.Errorf("GroupWritableAbove under a root:adm 0775 dir = %v, want [4]", got)
	}
	if got := GroupWritableAbove(tr.log); got != nil {
		t.Errorf("GroupWritableAbove(%s) = %v, want none", tr.log, got)
	}
}

// TestRemoveBackupRechecksTheDir: Check lists rotated files in dirs found
// safe and removes the ones over a limit later; by then the dir may be
// the user's, who could have put any file of root's (or a link to a dir
// of root's on the way) under the backup's name. Nothing is removed then.
func TestRemoveBackupRechecksTheDir(t *testing.T) {
	u := testuser.Ensure(t)
	tr := newSecTree(t)
	backup := filepath.Join(tr.log, "app-2001-01-01T00-00-00.000.log")
	if err := os.WriteFile(backup, []byte("root's\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := removeBackup(filepath.Join(tr.log, "missing-2001-01-01T00-00-00.000.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("removing a missing backup: %v, want not found", err)
	}
	if err := os.Chown(tr.log, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	var ue *UnsafeDirError
	if err := removeBackup(backup); !errors.As(err, &ue) {
		t.Errorf("removing a backup in the user's dir: %v, want an unsafe dir error", err)
	}
	if _, err := os.Lstat(backup); err != nil {
		t.Errorf("the backup in the user's dir: %v, want it left", err)
	}
	if err := os.Chown(tr.log, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := removeBackup(backup); err != nil {
		t.Errorf("removing a backup in root's dir: %v", err)
	}
	if _, err := os.Lstat(backup); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the backup in root's dir after removing it: %v", err)
	}
}
