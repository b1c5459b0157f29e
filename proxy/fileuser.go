package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Static files and error pages belong to the app, whose user hostctl does
// not trust, and hostctl runs as root. nginx's answer is to read them in
// worker processes that run as www-data: a link the app's user plants
// then reaches only what www-data could read anyway. hostctl reads them
// the same way, in one process: on a few OS threads whose filesystem
// credentials (fsuid, fsgid, supplementary groups) are those of the file
// user (Config.FileUser, default www-data). Linux keeps credentials per
// thread; the raw syscalls below change only the calling thread's, where
// Go's syscall.Setgroups and friends change every thread's. A goroutine
// locked to such a thread opens the files; the *os.File it hands back is
// read by any goroutine (reading an open file checks no permission).
//
// Changing the fsuid from 0 drops the effective capabilities that bypass
// file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER...);
// the thread also drops them itself and checks, in case securebits keep
// them. The Go runtime never runs another goroutine on a locked thread,
// and creates new threads from a clean template thread while a locked one
// asks for one, so the changed credentials stay on these threads. They are
// never unlocked: when their goroutine returns, the runtime ends the
// thread with it.

// fileIdentity is whom files are opened as.
type fileIdentity struct {
	name     string
	uid, gid int
	groups   []int // supplementary groups
}

func (id fileIdentity) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d:%d", id.uid, id.gid)
	for _, g := range id.groups {
		fmt.Fprintf(&b, ",%d", g)
	}
	return b.String()
}

// defaultFileUsers are tried in order when file_user is not set.
var defaultFileUsers = []string{"www-data", "nobody"}

// lookupFileUser resolves file_user (name; "" for the default) to the
// user's ids and supplementary groups. A user whose groups cannot be read
// is an error: opening with root's groups instead would fail open. So is
// uid 0, which reads everything.
func lookupFileUser(name string) (fileIdentity, error) {
	var u *user.User
	var err error
	if name == "" {
		for _, n := range defaultFileUsers {
			if u, err = user.Lookup(n); err == nil {
				break
			}
		}
		if u == nil {
			return fileIdentity{}, fmt.Errorf("neither %s exists: set file_user to an unprivileged user that may read the static files and error pages", strings.Join(defaultFileUsers, " nor "))
		}
	} else if u, err = user.Lookup(name); err != nil {
		return fileIdentity{}, fmt.Errorf("unknown user %q", name)
	}
	id := fileIdentity{name: u.Username}
	if id.uid, err = strconv.Atoi(u.Uid); err != nil {
		return fileIdentity{}, fmt.Errorf("user %q: uid %q is not a number", u.Username, u.Uid)
	}
	if id.gid, err = strconv.Atoi(u.Gid); err != nil {
		return fileIdentity{}, fmt.Errorf("user %q: gid %q is not a number", u.Username, u.Gid)
	}
	if id.uid == 0 {
		return fileIdentity{}, fmt.Errorf("%q is uid 0, which reads every file: a link in a static dir would reach any file on the host; use an unprivileged user such as www-data", u.Username)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return fileIdentity{}, fmt.Errorf("user %q: reading its groups: %v", u.Username, err)
	}
	for _, g := range gids {
		n, err := strconv.Atoi(g)
		if err != nil {
			return fileIdentity{}, fmt.Errorf("user %q: group id %q is not a number", u.Username, g)
		}
		if n == 0 {
			return fileIdentity{}, fmt.Errorf("user %q is in group 0 (root): use a user outside it", u.Username)
		}
		if !slices.Contains(id.groups, n) {
			id.groups = append(id.groups, n)
		}
	}
	slices.Sort(id.groups)
	return id, nil
}

// openerThreads is how many threads of each file user's pool open files.
// Opens are short (a path walk in the page cache) and a thread that waits
// for a disk holds only that request.
const openerThreads = 4

// fileOpener runs functions on threads that have a file user's filesystem
// credentials. A nil *fileOpener runs them on the caller's goroutine, as
// the process: hostctl does not run as root (it then opens as itself).
type fileOpener struct {
	id   fileIdentity
	reqs chan *openCall
	quit chan struct{} // closed by the last release: the threads end
	refs int           // guarded by openersMu
}

// errOpenerStopped is do's error after the last release (a request that
// outlived its config's grace period).
var errOpenerStopped = errors.New("the file opener is stopped")

type openCall struct {
	fn   func()
	err  error // the thread could not run fn as the file user
	done chan struct{}
}

var (
	openersMu sync.Mutex
	openers   = map[string]*fileOpener{} // by fileIdentity.key
)

var openCallPool = sync.Pool{New: func() any { return &openCall{done: make(chan struct{}, 1)} }}

// acquireOpener returns the opener for the file user name ("" for the
// default) and a function that releases it; the last release ends its
// threads. When hostctl does not run as root the opener is nil.
func acquireOpener(name string) (*fileOpener, func(), error) {
	if os.Geteuid() != 0 {
		return nil, func() {}, nil
	}
	id, err := lookupFileUser(name)
	if err != nil {
		return nil, nil, err
	}
	openersMu.Lock()
	defer openersMu.Unlock()
	o := openers[id.key()]
	if o == nil {
		o = &fileOpener{id: id, reqs: make(chan *openCall), quit: make(chan struct{})}
		ready := make(chan error, openerThreads)
		for range openerThreads {
			go o.thread(ready)
		}
		for range openerThreads {
			if err := <-ready; err != nil {
				close(o.quit) // the threads that started end with it
				return nil, nil, fmt.Errorf("reading files as %s: %w", id.name, err)
			}
		}
		openers[id.key()] = o
	}
	o.refs++
	var once sync.Once
	return o, func() { once.Do(o.release) }, nil
}

func (o *fileOpener) release() {
	openersMu.Lock()
	defer openersMu.Unlock()
	o.refs--
	if o.refs == 0 {
		delete(openers, o.id.key())
		close(o.quit)
	}
}

// thread is one opener: it locks itself to its OS thread, takes the file
// user's credentials there and runs calls until quit is closed. It never
// unlocks the thread, so the runtime ends the thread when it returns.
// (hostctl itself never calls Go's syscall.Setuid, Setgroups and the
// like, which change every thread's credentials, these included; each
// call checks anyway.)
func (o *fileOpener) thread(ready chan<- error) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// The main thread is not ended but parked for good when a
		// goroutine locked to it returns: it would keep the file user's
		// credentials. Hand over to a goroutine on another thread (which
		// it must be: this one stays locked until it has started).
		started := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(started)
			o.serve(ready)
		}()
		<-started
		runtime.UnlockOSThread() // unchanged: it may serve others
		return
	}
	o.serve(ready)
}

// serve is thread's work, on a locked thread other than the main one.
func (o *fileOpener) serve(ready chan<- error) {
	if err := setThreadFileCreds(o.id); err != nil {
		ready <- err
		return
	}
	ready <- nil
	for {
		var c *openCall
		select {
		case c = <-o.reqs:
		case <-o.quit:
			return
		}
		c.err = nil
		if !o.credsIntact() {
			// Something changed every thread's credentials (Go's
			// syscall.Setuid and the like do): take the file user's
			// again, or refuse.
			if err := setThreadFileCreds(o.id); err != nil {
				c.err = fmt.Errorf("reading files as %s: %w", o.id.name, err)
				c.done <- struct{}{}
				continue
			}
		}
		c.fn()
		c.done <- struct{}{}
	}
}

// credsIntact reports whether the calling opener thread still has the
// file user's fsuid and fsgid (two raw syscalls, before each call).
func (o *fileOpener) credsIntact() bool {
	uid, _, _ := syscall.RawSyscall(sysSetfsuid, ^uintptr(0), 0, 0)
	gid, _, _ := syscall.RawSyscall(sysSetfsgid, ^uintptr(0), 0, 0)
	return int(uid) == o.id.uid && int(gid) == o.id.gid
}

// do runs fn as the file user and returns when it has returned, or
// ctx's error if ctx ends before a thread takes it, or an error without
// running fn if the thread can no longer take the file user's
// credentials. fn must only open, stat and read files.
func (o *fileOpener) do(ctx context.Context, fn func()) error {
	if o == nil {
		fn()
		return nil
	}
	c := openCallPool.Get().(*openCall)
	c.fn = fn
	select {
	case o.reqs <- c:
	case <-o.quit:
		c.fn = nil
		openCallPool.Put(c)
		return errOpenerStopped
	case <-ctx.Done():
		c.fn = nil
		openCallPool.Put(c)
		return ctx.Err()
	}
	<-c.done
	err := c.err
	c.fn = nil
	openCallPool.Put(c)
	return err
}

// fsCaps are the capabilities that bypass file permission checks, which
// the kernel drops from the effective set when the fsuid leaves 0.
var fsCaps = []uint{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH, unix.CAP_FOWNER,
	unix.CAP_FSETID, unix.CAP_LINUX_IMMUTABLE, unix.CAP_MAC_OVERRIDE, unix.CAP_MKNOD,
}

// setThreadFileCreds gives the calling thread, which must be locked, id's
// supplementary groups, fsgid and fsuid, drops fsCaps from its effective
// set, and checks each.
func setThreadFileCreds(id fileIdentity) error {
	groups := make([]uint32, len(id.groups))
	for i, g := range id.groups {
		groups[i] = uint32(g)
	}
	var gp unsafe.Pointer
	if len(groups) > 0 {
		gp = unsafe.Pointer(&groups[0])
	}
	if _, _, e := syscall.RawSyscall(sysSetgroups, uintptr(len(groups)), uintptr(gp), 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	syscall.RawSyscall(sysSetfsgid, uintptr(id.gid), 0, 0)
	syscall.RawSyscall(sysSetfsuid, uintptr(id.uid), 0, 0)
	// setfsuid and setfsgid return the previous id and no error: an
	// invalid id (-1) changes nothing and tells the current one.
	if got, _, _ := syscall.RawSyscall(sysSetfsgid, ^uintptr(0), 0, 0); int(got) != id.gid {
		return fmt.Errorf("setfsgid(%d) left fsgid %d", id.gid, int(got))
	}
	if got, _, _ := syscall.RawSyscall(sysSetfsuid, ^uintptr(0), 0, 0); int(got) != id.uid {
		return fmt.Errorf("setfsuid(%d) left fsuid %d", id.uid, int(got))
	}
	have := make([]uint32, len(groups)+1)
	n, _, e := syscall.RawSyscall(sysGetgroups, uintptr(len(have)), uintptr(unsafe.Pointer(&have[0])), 0)
	if e != 0 {
		return fmt.Errorf("getgroups: %w", e)
	}
	if have = have[:n]; !slices.Equal(have, groups) {
		return fmt.Errorf("setgroups(%v) left groups %v", groups, have)
	}
	return dropFileCaps()
}

// dropFileCaps removes fsCaps from the calling thread's effective set
// (capset applies to the calling thread only) and checks that they are
// gone.
func dropFileCaps() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	held := false
	for _, c := range fsCaps {
		if data[c/32].Effective&(1<<(c%32)) != 0 {
			held = true
			data[c/32].Effective &^= 1 << (c % 32)
		}
	}
	if !held {
		return nil
	}
	hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	for _, c := range fsCaps {
		if data[c/32].Effective&(1<<(c%32)) != 0 {
			return fmt.Errorf("capability %d still effective after capset", c)
		}
	}
	return nil
}

// errNotRegular is the error for a path that is not a regular file.
var errNotRegular = fs.ErrNotExist

// openRegular opens name for reading if it is a regular file outside
// /proc, without blocking (a FIFO planted in a static dir would block
// open(2) until a writer came) and without becoming the process's
// controlling terminal. /proc is refused whatever the permissions say:
// /proc/self is hostctl itself, whose own files (maps, fd/) a process may
// read where another user may not.
func openRegular(name string) (*os.File, error) {
	var fd int
	var err error
	for {
		fd, err = syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		syscall.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: name, Err: errNotRegular}
	}
	var sfs syscall.Statfs_t
	if err := syscall.Fstatfs(fd, &sfs); err != nil || sfs.Type == unix.PROC_SUPER_MAGIC {
		syscall.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// readFileAs reads the regular file name, at most limit bytes (a longer
// file is an error), as the file user of o.
func readFileAs(o *fileOpener, name string, limit int64) ([]byte, error) {
	var b []byte
	var err error
	derr := o.do(context.Background(), func() {
		var f *os.File
		if f, err = openRegular(name); err != nil {
			return
		}
		defer f.Close()
		b, err = io.ReadAll(io.LimitReader(f, limit+1))
		if err == nil && int64(len(b)) > limit {
			err = fmt.Errorf("%s is larger than %d bytes", name, limit)
		}
	})
	if derr != nil {
		return nil, derr
	}
	return b, err
}

// fileUserName names whom o opens files as, for messages.
func fileUserName(o *fileOpener) string {
	if o == nil {
		return "hostctl's own user"
	}
	return o.id.name
}
