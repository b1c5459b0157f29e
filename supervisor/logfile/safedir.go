package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/supervisor/trust"
)

// hostctl runs as root and creates, appends to and renames log files by
// name (through lumberjack), and deletes rotated ones (max_total,
// keep_free); the mill compresses and prunes them through a descriptor of
// the dir, never following a link (mill.go). A user who can change a log dir, or any dir
// above it, could swap a log file or a rotated backup for a link to
// /etc/cron.d/x and have root write there. So a log dir must be safe by
// OpenSSH's rule for the files it trusts: the dir and every dir above it
// owned by root (or hostctl's own user) and writable by no one else. A
// sticky dir that others can write (/tmp) is fine above a log dir, since
// no one but its owner can rename or delete what root created there, but
// never as the log dir itself.

// UnsafeDirError says why a log dir is not safe for root to write in.
type UnsafeDirError struct {
	// Dir is the log dir that was checked.
	Dir string
	// Path is the dir (or link) on the way to Dir that is the problem.
	Path string
	// Why is what is wrong with Path: "is owned by app (uid 1001), not
	// root", "is writable by group www-data (gid 33)", ...
	Why string
	// File is set when Path is a log file or a rotated file, not a dir.
	File bool
}

func (e *UnsafeDirError) Error() string { return e.Path + " " + e.Why }

// Advice says what to do about it, for a config error.
func (e *UnsafeDirError) Advice() string {
	if e.File {
		return fmt.Sprintf("hostctl (root) never writes through a link or to a file with other names; remove %s if it is not yours, and check who could change %s", e.Path, e.Dir)
	}
	return fmt.Sprintf("hostctl (root) creates, rotates and deletes log files there by name, so whoever can change %s could make root write any file; "+
		"make it root's and writable by root only (chown root:root %s && chmod go-w %s), or log elsewhere (such as /var/log/hostctl)",
		e.Path, e.Path, e.Path)
}

// DirProblem is a config error's message for an error of CheckDir: what
// is wrong and, for an unsafe dir, what to do.
func DirProblem(err error) string {
	if ue, ok := errors.AsType[*UnsafeDirError](err); ok {
		return ue.Error() + ": " + ue.Advice()
	}
	return err.Error()
}

// CheckDir returns nil when dir is safe to hold log files that hostctl,
// as root, manages by name, and otherwise an *UnsafeDirError (or the
// error that stopped the check). dir must be absolute. The dir need not
// exist yet: hostctl creates what is missing (as root, mode 0755), and
// checks again once it exists. Symbolic links on the way are followed,
// each checked like a dir (root's) and its target like any path.
func CheckDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("%q is not an absolute path", dir)
	}
	return checkDir(filepath.Clean(dir), nil)
}

// GroupWritableAbove returns the system groups that may write a dir
// above dir (CheckDir accepts them; see checkMode), so that the config
// can refuse a program whose user is in one of them: that user could
// change the log dir. nil when there is none, or dir is not safe.
func GroupWritableAbove(dir string) []uint32 {
	var gids []uint32
	if !filepath.IsAbs(dir) || checkDir(filepath.Clean(dir), &gids) != nil {
		return nil
	}
	return gids
}

// checkDir is CheckDir: trust.Walk, the one walk of the supervisor tree,
// with the log dir's rule at each step. It adds the groups it let write a
// dir above the log dir to groupWritable.
func checkDir(dir string, groupWritable *[]uint32) error {
	unsafe := func(p, format string, a ...any) error {
		return &UnsafeDirError{Dir: dir, Path: p, Why: fmt.Sprintf(format, a...)}
	}
	// Missing: hostctl creates the rest, and checks again.
	_, err := trust.Walk(dir, true, func(s trust.Step) error {
		if s.Info.Mode()&fs.ModeSymlink != 0 {
			// A link in a safe dir cannot be changed, but it is safe only
			// if it is root's (a sticky dir lets others add links) and
			// where it points is safe too (Walk goes on there).
			if uid := fileUID(s.Info); !trustedUID(uid) {
				return unsafe(s.Path, "is a symbolic link owned by %s, not root", userName(uid))
			}
			if s.Links >= trust.MaxLinks {
				return unsafe(s.Path, "has too many levels of symbolic links")
			}
			return nil
		}
		if !s.Info.IsDir() {
			return unsafe(s.Path, "is not a directory")
		}
		return checkMode(dir, s.Path, s.Info, s.Final, groupWritable)
	})
	return err
}

// checkMode checks one dir on the way to a log dir (final: the log dir
// itself), adding the system group it lets write it to groupWritable.
func checkMode(orig, path string, fi fs.FileInfo, final bool, groupWritable *[]uint32) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner information", path)
	}
	if !trustedUID(st.Uid) {
		return &UnsafeDirError{Dir: orig, Path: path, Why: fmt.Sprintf("is owned by %s, not root", userName(st.Uid))}
	}
	perm := fi.Mode().Perm()
	if perm&0o022 == 0 || !final && fi.Mode()&fs.ModeSticky != 0 {
		return nil
	}
	if !final && perm&0o002 == 0 && st.Gid < systemGIDMax {
		// Above the log dir, a system group may write: Ubuntu ships
		// /var/log as root:syslog 0775. Its members are system daemons
		// (rsyslog) that could replace every log under it anyway; the
		// log dir itself must still be root's alone, and the config
		// refuses a program whose user is in that group
		// (GroupWritableAbove).
		if groupWritable != nil {
			*groupWritable = append(*groupWritable, st.Gid)
		}
		return nil
	}
	why := "is writable by group " + groupName(st.Gid) + " (mode " + strconv.FormatUint(uint64(perm), 8) + ")"
	if perm&0o002 != 0 {
		why = "is writable by everyone (mode " + strconv.FormatUint(uint64(perm), 8) + ")"
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		why += ": sticky, which is fine above a log dir but not for the log dir itself"
	}
	return &UnsafeDirError{Dir: orig, Path: path, Why: why}
}

// systemGIDMax bounds the system groups (Debian's and Ubuntu's policy,
// and login.defs' SYS_GID_MAX default: 0-999), whose members are system
// daemons, never a login user or a uid from useradd without --system.
const systemGIDMax = 1000

// trustedUID: root, and the user hostctl runs as (a hostctl that is not
// root can only write where that user can anyway).
func trustedUID(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

func fileUID(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return ^uint32(0) // unknown: not trusted
}

func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username + " (uid " + id + ")"
	}
	return "uid " + id
}

func groupName(gid uint32) string {
	id := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(id); err == nil {
		return g.Name + " (gid " + id + ")"
	}
	return "gid " + id
}

// dirError adds what to do to an *UnsafeDirError.
func dirError(err error) error {
	if ue, ok := errors.AsType[*UnsafeDirError](err); ok {
		return fmt.Errorf("%w: %s", ue, ue.Advice())
	}
	return err
}

// mkdirSafe creates dir, and what is missing above it (mode 0755), once
// what exists is known to be safe, and checks it again once it all
// exists: a dir that was missing in a sticky dir such as /tmp could have
// been created by someone else first.
func mkdirSafe(dir string) error {
	if err := CheckDir(dir); err != nil {
		return dirError(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating log dir: %w", err)
	}
	return dirError(CheckDir(dir))
}

// unsafeRecheck is how often a stream whose dir is not safe checks it
// again (when it has output to write).
const unsafeRecheck = 10 * time.Second

// errUnsafe is what ensureWritable returns while the dir is not safe;
// the reason is in Stream.unsafe.
var errUnsafe = errors.New("log dir not safe")

// checkFiles checks what must hold before anything opens, creates or
// renames the log's files by name: the first open, a rotation, a reopen,
// an open after one failed. So: the dir is still safe (CheckDir), and the log file and
// its rotated files are regular files with one name each, if they exist
// (in a dir that was unsafe for a while, someone may have left links).
func (s *Stream) checkFiles() error {
	dir, base := filepath.Split(s.path)
	dir = filepath.Clean(dir)
	if err := CheckDir(dir); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if name != base {
			if _, ok := parseBackup(base, name); !ok {
				continue
			}
		}
		path := filepath.Join(dir, name)
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			what := "is not a regular file"
			if fi.Mode()&fs.ModeSymlink != 0 {
				what = "is a symbolic link"
			}
			return &UnsafeDirError{Dir: dir, Path: path, Why: what, File: true}
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			return &UnsafeDirError{Dir: dir, Path: path, Why: fmt.Sprintf("has %d hard links", st.Nlink), File: true}
		}
	}
	return nil
}

// ensureWritable returns nil when the file may be written: the dir is
// safe (checked again every unsafeRecheck while it is not) and lumberjack
// has the file open, which it is let to do only right after checkFiles.
// It returns errUnsafe while the dir is not safe. Every write to fw goes
// through it. Writer goroutine.
func (s *Stream) ensureWritable() error {
	if s.unsafe != "" {
		if time.Now().Before(s.unsafeRetry) {
			return errUnsafe
		}
		if err := s.checkFiles(); err != nil {
			s.unsafeRetry = time.Now().Add(unsafeRecheck)
			s.unsafe = "log dir not safe: " + err.Error()
			return errUnsafe
		}
		s.log.Warn("log dir is safe again; writing this log again")
		s.unsafe = ""
		s.openGen()
	}
	if s.fwOpen {
		return nil
	}
	if err := s.checkFiles(); err != nil {
		s.becomeUnsafe(err)
		return errUnsafe
	}
	// An empty write makes lumberjack open the file now, just after the
	// check (it opens by name whenever it has no file).
	if _, err := s.fw.Write(nil); err != nil {
		return err
	}
	s.fwOpen = true
	return nil
}

// becomeUnsafe stops writing the log: the dir, or a file in it, is no
// longer safe for root to act on by name (err says why). Output is
// dropped and counted (Dropped: the log_dropped alert) until a check
// finds it safe again. Writer goroutine.
func (s *Stream) becomeUnsafe(err error) {
	if s.fwOpen {
		if cerr := s.fw.Close(); cerr != nil {
			s.log.Warn("closing log file", zap.Error(cerr))
		}
		s.fwOpen = false
	}
	if s.unsafe == "" {
		s.log.Error("log dir is not safe for root to write in: dropping this log's output until it is", zap.Error(dirError(err)))
	}
	s.unsafe = "log dir not safe: " + err.Error()
	s.unsafeRetry = time.Now().Add(unsafeRecheck)
}
