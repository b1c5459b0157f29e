package proxy

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// threadCreds returns the Uid and Gid lines' fs ids, the Groups line and
// CapEff of the calling thread, which must be locked.
func threadCreds(t *testing.T) (fsuid, fsgid, groups, capEff string) {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		t.Error(err)
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch k {
		case "Uid":
			fsuid = f[3]
		case "Gid":
			fsgid = f[3]
		case "Groups":
			groups = strings.Join(f, " ")
		case "CapEff":
			capEff = f[0]
		}
	}
	return
}

// TestOpenerThreadCredentials: the opener's threads have the file user's
// fsuid, fsgid and groups and no capability that bypasses file
// permissions; the rest of the process keeps root's, including threads
// the runtime starts while an opener thread runs.
func TestOpenerThreadCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	o, release, err := acquireOpener("")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	u, _ := user.Lookup(o.id.name)
	var wantGroups []string
	for _, g := range o.id.groups {
		wantGroups = append(wantGroups, strconv.Itoa(g))
	}

	var fsuid, fsgid, groups, capEff string
	var spawned []string
	o.do(context.Background(), func() {
		fsuid, fsgid, groups, capEff = threadCreds(t)
		// Threads started from here come from the runtime's template
		// thread, not a copy of this one.
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range 8 {
			wg.Go(func() {
				runtime.LockOSThread() // a thread of its own, ended with the goroutine
				uid, _, _, _ := threadCreds(t)
				mu.Lock()
				spawned = append(spawned, uid)
				mu.Unlock()
			})
		}
		wg.Wait()
	})
	if fsuid != u.Uid || fsgid != u.Gid || groups != strings.Join(wantGroups, " ") {
		t.Errorf("opener thread: fsuid %s fsgid %s groups %q, want %s %s %q", fsuid, fsgid, groups, u.Uid, u.Gid, wantGroups)
	}
	capBits, err := strconv.ParseUint(capEff, 16, 64)
	if err != nil {
		t.Fatalf("CapEff %q: %v", capEff, err)
	}
	for _, c := range fsCaps {
		if capBits&(1<<c) != 0 {
			t.Errorf("opener thread: capability %d effective (CapEff %s)", c, capEff)
		}
	}
	for _, uid := range spawned {
		if uid != "0" {
			t.Errorf("a thread started from an opener thread has fsuid %s, want 0", uid)
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if uid, _, _, eff := threadCreds(t); uid != "0" || eff == capEff {
		t.Errorf("the test's own thread: fsuid %s CapEff %s, want root's", uid, eff)
	}
}

// TestFileUserLookup: the default is www-data (or nobody), root and
// unknown users are refused with a message that says what to do.
func TestFileUserLookup(t *testing.T) {
	id, err := lookupFileUser("")
	if err != nil {
		t.Fatal(err)
	}
	if id.name != "www-data" && id.name != "nobody" {
		t.Errorf("default file user %q", id.name)
	}
	for name, want := range map[string]string{
		"root":                 "uid 0",
		"no-such-user-hostctl": `unknown user "no-such-user-hostctl"`,
	} {
		if _, err := lookupFileUser(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("file_user %q: %v, want an error saying %q", name, err, want)
		}
	}
	errs := (&Config{Upstream: "127.0.0.1:1", FileUser: "root"}).Validate("proxy")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "proxy.file_user:") {
		t.Errorf("Validate with file_user = root: %v", errs)
	}
}

// BenchmarkOpen prints what opening a static file costs through the file
// user's threads against os.Open on the request's own goroutine (the
// file is in the page cache; open, fstat, close).
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	name := filepath.Join(dir, "site.css")
	os.WriteFile(name, []byte("body{}"), 0o644)
	b.Run("os.Open", func(b *testing.B) {
		for b.Loop() {
			f, err := os.Open(name)
			if err != nil {
				b.Fatal(err)
			}
			f.Stat()
			f.Close()
		}
	})
	for _, parallel := range []bool{false, true} {
		name := name
		b.Run("opener/parallel="+strconv.FormatBool(parallel), func(b *testing.B) {
			if os.Geteuid() != 0 {
				b.Skip("needs root")
			}
			o, release, err := acquireOpener("")
			if err != nil {
				b.Fatal(err)
			}
			defer release()
			os.Chmod(dir, 0o755)
			os.Chmod(filepath.Dir(dir), 0o755)
			ctx := context.Background()
			open := func() {
				var f *os.File
				var err error
				o.do(ctx, func() { f, err = openRegular(name) })
				if err != nil {
					b.Fatal(err)
				}
				f.Stat()
				f.Close()
			}
			if !parallel {
				for b.Loop() {
					open()
				}
				return
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					open()
				}
			})
		})
	}
}

// TestOpenerRetakesCredentials: an opener thread whose credentials were
// changed (as Go's syscall.Setuid would change every thread's) takes the
// file user's again before it opens anything.
func TestOpenerRetakesCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	o, release, err := acquireOpener("")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	// onEveryThread runs fn on each opener thread: the calls wait for
	// each other, so each holds a thread of its own.
	onEveryThread := func(fn func()) {
		var wg, all sync.WaitGroup
		all.Add(openerThreads)
		for range openerThreads {
			wg.Go(func() {
				if err := o.do(context.Background(), func() { all.Done(); all.Wait(); fn() }); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	onEveryThread(func() { syscall.RawSyscall(sysSetfsuid, 0, 0, 0) })
	var mu sync.Mutex
	var seen []string
	onEveryThread(func() {
		fsuid, _, _, _ := threadCreds(t)
		mu.Lock()
		seen = append(seen, fsuid)
		mu.Unlock()
	})
	for _, fsuid := range seen {
		if fsuid != strconv.Itoa(o.id.uid) {
			t.Errorf("an opener thread whose fsuid was set to 0 ran the next call with fsuid %s, want %d", fsuid, o.id.uid)
		}
	}
}

// TestOpenerReleaseEndsThreads: when the last user of an opener releases
// it, its threads end (the runtime destroys a thread whose goroutine
// exits locked), so no thread of the process keeps the file user's
// credentials; a call that comes after gets an error, not a hang.
func TestOpenerReleaseEndsThreads(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	id, err := lookupFileUser("")
	if err != nil {
		t.Fatal(err)
	}
	uid := strconv.Itoa(id.uid)
	// threadsAs counts the process's threads whose fsuid is uid.
	threadsAs := func() int {
		tasks, _ := os.ReadDir("/proc/self/task")
		n := 0
		for _, task := range tasks {
			b, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "status"))
			if err != nil {
				continue // ended meanwhile
			}
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) == 5 && f[0] == "Uid:" && f[4] == uid {
					n++
				}
			}
		}
		return n
	}
	// Openers of earlier tests end first.
	retryUntil(t, 10*time.Second, "earlier opener threads ended", func() error {
		if n := threadsAs(); n != 0 {
			return fmt.Errorf("%d threads with fsuid %s", n, uid)
		}
		return nil
	})
	o, release, err := acquireOpener("")
	if err != nil {
		t.Fatal(err)
	}
	if n := threadsAs(); n != openerThreads {
		t.Fatalf("%d threads with fsuid %s, want %d", n, uid, openerThreads)
	}
	release()
	retryUntil(t, 10*time.Second, "opener threads ended", func() error {
		if n := threadsAs(); n != 0 {
			return fmt.Errorf("%d threads with fsuid %s", n, uid)
		}
		return nil
	})
	if err := o.do(context.Background(), func() { t.Error("ran after release") }); err != errOpenerStopped {
		t.Errorf("do after release: %v, want errOpenerStopped", err)
	}
}
