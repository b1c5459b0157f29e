package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

// gunicorn and two celery workers in [group.web], beat on its own. The
// celery workers restart one at a time (rolling), and each says its
// ${INSTANCE} from argv and from its environment.
const instancesPrograms = `
[program.gunicorn]
command = ["/bin/sh", "-c", "echo ready; exec sleep 1000"]
start_secs = "200ms"

[program.celery]
command = ["/bin/sh", "-c", "echo worker $WORKER arg=$1; exec sleep 1000", "celery", "${INSTANCE}"]
environment = { WORKER = "w${INSTANCE}" }
instances = 2
rolling = true
start_secs = "300ms"

[program.beat]
command = ["/bin/sh", "-c", "exec sleep 1000"]
start_secs = "200ms"

[group.web]
programs = ["gunicorn", "celery"]
`

// TestInstancesThroughTheCLI: status shows GROUP:NAME for the grouped
// programs and one line per instance; restart, stop, signal and tail take
// a program, a process, a group and GROUP:* as supervisorctl does.
func TestInstancesThroughTheCLI(t *testing.T) {
	d := startDaemon(t, instancesPrograms, daemonOpts{})

	r := d.hostctl(t, "status")
	if r.code != 0 {
		t.Fatalf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, re := range []string{`(?m)^web:gunicorn +RUNNING`, `(?m)^web:celery_0 +RUNNING`, `(?m)^web:celery_1 +RUNNING`, `(?m)^beat +RUNNING`} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("status has no line %s:\n%s", re, r.stdout)
		}
	}
	before := d.status(t)
	if c := before["celery_1"]; c.Program != "celery" || c.ProgramGroup != "web" || c.Instance != 1 {
		t.Errorf("status --json celery_1: program %q, process_group %q, instance %d", c.Program, c.ProgramGroup, c.Instance)
	}
	if b := before["beat"]; b.Program != "beat" || b.ProgramGroup != "beat" {
		t.Errorf("status --json beat: program %q, process_group %q", b.Program, b.ProgramGroup)
	}
	r = d.hostctl(t, "status", "celery")
	if r.code != 0 || strings.Count(r.stdout, "web:celery_") != 2 || strings.Contains(r.stdout, "gunicorn") {
		t.Errorf("status celery: exit %d, want both instances and nothing else:\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Each instance has its own log, with its own ${INSTANCE} (the line
	// reaches the file a little after RUNNING: waited for).
	for i := range 2 {
		d.waitTail(t, fmt.Sprintf("worker w%d arg=%d", i, i), fmt.Sprintf("web:celery_%d", i))
	}
	if r = d.hostctl(t, "tail", "celery"); r.code == 0 || !strings.Contains(r.stderr, "celery_0, celery_1") {
		t.Errorf("tail of a program with two instances: exit %d, stderr %q; want an error naming them", r.code, r.stderr)
	}

	// restart celery: both instances, one at a time; gunicorn untouched.
	mark := len(d.log())
	r = d.hostctl(t, "restart", "celery")
	if r.code != 0 || !strings.Contains(r.stdout, "web:celery_0: RUNNING (pid ") || !strings.Contains(r.stdout, "web:celery_1: RUNNING (pid ") {
		t.Fatalf("restart celery: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	after := d.status(t)
	for _, n := range []string{"celery_0", "celery_1"} {
		if after[n].PID == before[n].PID || after[n].State != apitype.Running {
			t.Errorf("restart celery: %s is %s pid %d (was %d)", n, after[n].State, after[n].PID, before[n].PID)
		}
	}
	if after["gunicorn"].PID != before["gunicorn"].PID || after["beat"].PID != before["beat"].PID {
		t.Errorf("restart celery touched another program")
	}
	if min := fewestRunning(t, d.log()[mark:], "celery_0", "celery_1"); min != 1 {
		t.Errorf("rolling restart of celery: %d instances RUNNING at the lowest, want 1 (never both down, one at a time)", min)
	}

	// restart web:* : every process of the group, not beat.
	before = after
	r = d.hostctl(t, "restart", "web:*")
	if r.code != 0 || strings.Count(r.stdout, ": RUNNING (pid ") != 3 {
		t.Fatalf("restart web:*: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	after = d.status(t)
	for _, n := range []string{"gunicorn", "celery_0", "celery_1"} {
		if after[n].PID == before[n].PID {
			t.Errorf("restart web:* did not restart %s", n)
		}
	}
	if after["beat"].PID != before["beat"].PID {
		t.Errorf("restart web:* restarted beat, which is not in web")
	}

	// signal, stop and start by every form of name.
	r = d.hostctl(t, "signal", "CONT", "celery")
	if r.code != 0 || strings.Count(r.stdout, "sent CONT to pid") != 2 {
		t.Errorf("signal CONT celery: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = d.hostctl(t, "stop", "web:celery_1")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "web:celery_1: STOPPED" {
		t.Errorf("stop web:celery_1: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if st := d.status(t); st["celery_1"].State != apitype.Stopped || st["celery_0"].State != apitype.Running {
		t.Errorf("after stop web:celery_1: celery_0 %s, celery_1 %s", st["celery_0"].State, st["celery_1"].State)
	}
	if r = d.hostctl(t, "start", "web"); r.code != 0 || !strings.Contains(r.stdout, "web:celery_1: RUNNING") {
		t.Errorf("start web: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = d.hostctl(t, "restart", "web:nope")
	if r.code != 4 || !strings.Contains(r.stderr, `"web:nope"`) {
		t.Errorf("restart web:nope: exit %d, stderr %q; want 4 and the name", r.code, r.stderr)
	}
}

// fewestRunning replays the daemon's JSON log of state changes and
// returns the fewest of procs RUNNING at once (all are RUNNING at the
// start of log).
func fewestRunning(t *testing.T, log string, procs ...string) int {
	t.Helper()
	state := map[string]string{}
	for _, p := range procs {
		state[p] = "RUNNING"
	}
	fewest := len(procs)
	for _, line := range strings.Split(log, "\n") {
		var e struct{ Msg, Program, To string }
		if json.Unmarshal([]byte(line), &e) != nil || e.Msg != "state" {
			continue
		}
		if _, ok := state[e.Program]; !ok {
			continue
		}
		state[e.Program] = e.To
		n := 0
		for _, s := range state {
			if s == "RUNNING" {
				n++
			}
		}
		fewest = min(fewest, n)
	}
	return fewest
}

// TestReloadChangesInstances: instances 2 -> 3 starts one more and leaves
// the two alone; 3 -> 2 stops the last.
func TestReloadChangesInstances(t *testing.T) {
	prog := func(n int) string {
		return fmt.Sprintf("\n[program.worker]\ncommand = [\"/bin/sh\", \"-c\", \"exec sleep 1000\"]\nstart_secs = \"200ms\"\ninstances = %d\n", n)
	}
	d := startDaemon(t, prog(2), daemonOpts{})
	before := d.status(t)
	writeConfig(t, d.dir, "", prog(3))
	r := d.hostctl(t, "reload")
	if r.code != 0 || !strings.Contains(r.stdout, "added:   worker_2") || !strings.Contains(r.stdout, "changed: -") {
		t.Fatalf("reload to 3 instances: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := d.hostctl(t, "start", "worker_2"); r.code != 0 {
		t.Fatalf("start worker_2: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mid := d.status(t)
	for _, n := range []string{"worker_0", "worker_1"} {
		if mid[n].PID != before[n].PID {
			t.Errorf("%s restarted by adding an instance: pid %d -> %d", n, before[n].PID, mid[n].PID)
		}
	}
	writeConfig(t, d.dir, "", prog(2))
	r = d.hostctl(t, "reload")
	if r.code != 0 || !strings.Contains(r.stdout, "removed: worker_2") {
		t.Fatalf("reload to 2 instances: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	after := d.status(t)
	if _, ok := after["worker_2"]; ok || len(groupMembers(mid["worker_2"].PID)) > 0 {
		t.Errorf("worker_2 still listed or its processes still alive after going back to 2 instances")
	}
	for _, n := range []string{"worker_0", "worker_1"} {
		if after[n].PID != before[n].PID {
			t.Errorf("%s restarted by removing an instance", n)
		}
	}
}

// TestRollingRestartOfAStoppedInstance: `hostctl restart` of a rolling
// program whose first instance is STOPPED restarts that one first (those
// not RUNNING go first) and reports every instance RUNNING with a new
// process. The roller sends each restart after the request was accepted:
// the STOPPED state the wait sees at first is not the restart's outcome.
func TestRollingRestartOfAStoppedInstance(t *testing.T) {
	d := startDaemon(t, `
[program.w]
command = ["/bin/sh", "-c", "exec sleep 1000"]
instances = 3
rolling = true
start_secs = "200ms"
`, daemonOpts{})
	if r := d.hostctl(t, "stop", "w_0"); r.code != 0 {
		t.Fatalf("stop w_0: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	before := d.status(t)
	r := d.hostctl(t, "restart", "w")
	if r.code != 0 || strings.Count(r.stdout, ": RUNNING (pid ") != 3 {
		t.Errorf("restart w with w_0 STOPPED: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	after := d.status(t)
	for _, n := range []string{"w_0", "w_1", "w_2"} {
		if after[n].State != apitype.Running || after[n].PID == before[n].PID {
			t.Errorf("after restart w: %s is %s pid %d (was %s pid %d)", n, after[n].State, after[n].PID, before[n].State, before[n].PID)
		}
	}
}
