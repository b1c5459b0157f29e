package supervisor

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hostctl/hostctl/supervisor/internal/testuser"
)

// TestPlantedGroupRecordsKillNothing is issue 19's planted pgroup file:
// root SIGKILLs the process groups that StateDir/pgroups names at start,
// so a local user who can put a record there can have root kill any
// process group (or, here, shows it with a group of its own). Each case
// forges a record naming the user's own live process group, as the user,
// and checks that hostctl refuses the dir or ignores the record: the
// process is neither killed nor about to be.
func TestPlantedGroupRecordsKillNothing(t *testing.T) {
	u := testuser.Ensure(t)
	base, err := os.MkdirTemp("", "hct-pgroups-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	shared := filepath.Join(base, "tmp") // a /tmp of its own
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}

	// victim starts a process group of the user's and forges, as the
	// user, the record hostctl would have written for it (its start time
	// included, so the pid-reuse guard passes) in shared/forged-PID.
	victim := func(t *testing.T) (pid int, record string) {
		cmd := u.Command("sleep", "1000")
		cmd.SysProcAttr.Setpgid = true
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		st, err := readProcStat(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		record = fmt.Sprintf("%d forged", st.startTime)
		u.Shell(t, fmt.Sprintf("echo '%s' > %s/forged-%d", record, shared, cmd.Process.Pid))
		return cmd.Process.Pid, record
	}

	// run makes a supervisor on state and kills survivors, as hostctl
	// does at start. It returns New's error.
	run := func(t *testing.T, state string) error {
		s, err := New(nil, Options{StateDir: state, Logger: nopLogger()})
		if err != nil {
			return err
		}
		if n := s.KillSurvivors(); n != 0 {
			t.Errorf("killed %d processes", n)
		}
		return nil
	}
	goodState := func(t *testing.T) string {
		state := filepath.Join(t.TempDir(), "state")
		if err := os.MkdirAll(filepath.Join(state, "pgroups"), 0o700); err != nil {
			t.Fatal(err)
		}
		return state
	}

	t.Run("in a state dir the user made first", func(t *testing.T) {
		pid, record := victim(t)
		rec := strconv.Itoa(pid)
		state := filepath.Join(shared, "hostctl-demo", "state")
		u.Shell(t, fmt.Sprintf("mkdir -p %s/pgroups && echo '%s' > %s/pgroups/%s", state, record, state, rec))
		err := run(t, state)
		if err == nil || !strings.Contains(err.Error(), u.Name) {
			t.Errorf("New on a state dir the user made: %v; want a refusal naming the user", err)
		} else {
			t.Logf("refused: %v", err)
		}
		notKilled(t, pid)
	})
	t.Run("a link in a good dir", func(t *testing.T) {
		pid, _ := victim(t)
		rec := strconv.Itoa(pid)
		state := goodState(t)
		link := filepath.Join(state, "pgroups", rec)
		if err := os.Symlink(filepath.Join(shared, "forged-"+rec), link); err != nil {
			t.Fatal(err)
		}
		if err := run(t, state); err != nil {
			t.Fatal(err)
		}
		notKilled(t, pid)
		if _, err := os.Lstat(link); err == nil {
			t.Errorf("the planted link is still there")
		}
	})
	t.Run("the user's file in a good dir", func(t *testing.T) {
		pid, record := victim(t)
		rec := strconv.Itoa(pid)
		state := goodState(t)
		path := filepath.Join(state, "pgroups", rec)
		if err := os.WriteFile(path, []byte(record+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
		if err := run(t, state); err != nil {
			t.Fatal(err)
		}
		notKilled(t, pid)
	})
	t.Run("a record others can write", func(t *testing.T) {
		pid, record := victim(t)
		rec := strconv.Itoa(pid)
		state := goodState(t)
		path := filepath.Join(state, "pgroups", rec)
		if err := os.WriteFile(path, []byte(record+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := run(t, state); err != nil {
			t.Fatal(err)
		}
		notKilled(t, pid)
	})
	t.Run("a pgroups dir others can write", func(t *testing.T) {
		pid, record := victim(t)
		rec := strconv.Itoa(pid)
		// Root's dirs, which the user may pass through.
		state, err := os.MkdirTemp(base, "state-")
		if err != nil {
			t.Fatal(err)
		}
		pg := filepath.Join(state, "pgroups")
		if err := os.Mkdir(pg, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(state, 0o711); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(pg, 0o777); err != nil {
			t.Fatal(err)
		}
		u.Shell(t, fmt.Sprintf("echo '%s' > %s/%s", record, pg, rec))
		if err := run(t, state); err == nil {
			t.Errorf("New accepted a world-writable pgroups dir")
		}
		notKilled(t, pid)
	})
}

// notKilled fails t if pid has exited or has a SIGKILL pending. No wait
// is needed: KillSurvivors sends its signals before it returns, and the
// kernel marks a SIGKILL pending (ShdPnd, SigPnd in /proc/PID/status) as
// it is sent, until the process is gone; a zombie (Z) or gone process was
// killed.
func notKilled(t *testing.T, pid int) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("the user's process %d is gone: %v", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "State":
			if strings.HasPrefix(v, "Z") || strings.HasPrefix(v, "X") {
				t.Fatalf("the user's process %d was killed (state %s)", pid, v)
			}
		case "SigPnd", "ShdPnd":
			mask, err := strconv.ParseUint(v, 16, 64)
			if err == nil && mask&(1<<(9-1)) != 0 {
				t.Fatalf("the user's process %d has a SIGKILL pending (%s %s)", pid, k, v)
			}
		}
	}
}
