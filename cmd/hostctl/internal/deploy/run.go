package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/hostctl/hostctl/supervisor"
)

// tailLines is how many of a failed step's last lines its error carries.
const tailLines = 20

// command returns argv as the app's user, in dir, in its own process
// group, which ctx's end kills whole (supervisor.Cmd: through hostctl's
// spawner, so that the daemon, which reaps every child, does not steal
// its exit status).
func (r *runner) command(dir string, env []string, argv ...string) *supervisor.Cmd {
	return &supervisor.Cmd{Args: argv, Dir: dir, Env: env, Cred: r.cred}
}

// cmd runs argv as the app's user in dir with stdin, its output to out;
// a failure carries its last lines.
func (r *runner) cmd(ctx context.Context, dir string, stdin io.Reader, out io.Writer, argv ...string) error {
	t := &tail{}
	c := r.command(dir, r.env, argv...)
	c.Stdin = stdin
	c.Stdout = io.MultiWriter(out, t)
	c.Stderr = c.Stdout
	if err := r.run(ctx, c); err != nil {
		return fmt.Errorf("%s: %s%s", argv[0], exitText(err), t.text())
	}
	return nil
}

// step runs one build step: /bin/sh -c COMMAND as the app's user in the
// release dir, with RELEASE and RELEASE_DIR, within its timeout.
func (r *runner) step(ctx context.Context, s Step, id, dir string, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	env := append(append([]string{}, r.env...), "RELEASE="+id, "RELEASE_DIR="+dir)
	t := &tail{}
	c := r.command(dir, env, "/bin/sh", "-c", s.Command)
	c.Stdout = io.MultiWriter(out, t)
	c.Stderr = c.Stdout
	err := r.run(ctx, c)
	if err == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("timed out after %s (its process group was killed)%s", s.Timeout, t.text())
	}
	return fmt.Errorf("%s%s", exitText(err), t.text())
}

// run runs c, its process group recorded in the state dir while it
// runs: if hostctl dies meanwhile (kill -9), nothing would enforce the
// step's timeout; the next deploy kills what is left of the group.
func (r *runner) run(ctx context.Context, c *supervisor.Cmd) error {
	var pgid int
	c.Started = func(pid int) {
		pgid = pid
		r.pgroups.Add(pgid, "deploy: "+strings.Join(c.Args, " "))
	}
	err := c.Run(ctx)
	if pgid != 0 {
		r.pgroups.Remove(pgid)
	}
	return err
}

// exitText is "exit status 3", "killed by SIGKILL (exit status 137)",
// or the error.
func exitText(err error) string { return err.Error() }

// tail keeps the last tailLines lines written to it.
type tail struct {
	mu    sync.Mutex // guards lines and part: stdout and stderr both write
	lines []string
	part  []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.add(string(t.part[:i]))
		t.part = t.part[i+1:]
	}
	if len(t.part) > 4096 { // a line without end: keep its start
		t.add(string(t.part[:4096]))
		t.part = nil
	}
	return len(p), nil
}

func (t *tail) add(line string) {
	t.lines = append(t.lines, line)
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
}

// text is "; last lines:\n..." or "" without output.
func (t *tail) text() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if len(t.part) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(t.part))
	}
	if len(lines) == 0 {
		return ""
	}
	return "; last lines:\n  " + strings.Join(lines, "\n  ")
}
