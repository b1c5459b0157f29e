package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// Cmd is a command hostctl runs besides its programs (a deploy's git, its
// build and before_switch steps). It goes through the spawner, like the
// programs and exec probes: a hostctl that reaps every child (PID 1, a
// child subreaper) would otherwise reap it before os/exec's Wait could
// ("waitid: no child processes"). It runs in its own process group, which
// ctx's end kills whole (SIGKILL to -pgid).
type Cmd struct {
	// Args is the command and its arguments; Args[0] is looked up in PATH
	// (hostctl's), or relative to Dir when it has a slash.
	Args []string
	// Dir is the working directory; "" is hostctl's.
	Dir string
	// Env is the whole environment.
	Env []string
	// Cred runs it as that user; nil as hostctl.
	Cred *syscall.Credential
	// Stdin is its standard input; nil is /dev/null.
	Stdin io.Reader
	// Stdout and Stderr receive its output; nil discards. When Stderr ==
	// Stdout (compared with ==: give a pointer or another comparable
	// writer), both go through one pipe, in the order written.
	Stdout, Stderr io.Writer
	// Started, if set, is called with its pid (its process group) once it
	// runs.
	Started func(pid int)
	// WaitDelay bounds the wait for its output once it has exited (a
	// child that left the group may hold the pipes open). Default 5s.
	WaitDelay time.Duration
}

// CmdExitError is a Cmd that exited with a status other than 0.
type CmdExitError struct{ Status ExitStatus }

func (e *CmdExitError) Error() string {
	if e.Status.Signal != "" {
		return fmt.Sprintf("killed by SIG%s (exit status %d)", e.Status.Signal, e.Status.Code)
	}
	return fmt.Sprintf("exit status %d", e.Status.Code)
}

// Run starts c, waits for it to exit and for its output, and returns nil,
// a *CmdExitError, or why it could not start. When ctx ends first its
// process group is killed and Run returns once it has exited.
func (c *Cmd) Run(ctx context.Context) error {
	if len(c.Args) == 0 {
		return errors.New("no command")
	}
	var closeAfter []*os.File // the child's ends, closed once it started
	var copies sync.WaitGroup
	var readEnds []*os.File
	defer func() {
		for _, f := range closeAfter {
			f.Close()
		}
	}()
	null := devNullFd()
	stdio := [3]uintptr{null, null, null}
	if c.Stdin != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		closeAfter = append(closeAfter, r)
		stdio[0] = r.Fd()
		// Not waited for: a reader that never ends must not hold Run.
		go func() {
			io.Copy(w, c.Stdin)
			w.Close()
		}()
	}
	output := func(wr io.Writer) (uintptr, error) {
		r, w, err := os.Pipe()
		if err != nil {
			return 0, err
		}
		closeAfter = append(closeAfter, w)
		readEnds = append(readEnds, r)
		copies.Add(1)
		go func() {
			defer copies.Done()
			io.Copy(wr, r)
		}()
		return w.Fd(), nil
	}
	var err error
	if c.Stdout != nil {
		if stdio[1], err = output(c.Stdout); err != nil {
			return err
		}
	}
	switch {
	case c.Stderr != nil && c.Stderr == c.Stdout:
		stdio[2] = stdio[1]
	case c.Stderr != nil:
		if stdio[2], err = output(c.Stderr); err != nil {
			return err
		}
	}
	done := make(chan exitInfo, 1)
	attr := procAttr{cred: c.Cred, dir: c.Dir, env: c.Env}
	pid, err := attr.start(theSpawner(), c.Args, stdio, func(ei exitInfo) { done <- ei })
	for _, f := range closeAfter {
		f.Close()
	}
	closeAfter = nil
	if err != nil {
		for _, r := range readEnds {
			r.Close()
		}
		return err
	}
	if c.Started != nil {
		c.Started(pid)
	}
	var ei exitInfo
	select {
	case ei = <-done:
	case <-ctx.Done():
		syscall.Kill(-pid, syscall.SIGKILL)
		ei = <-done
	}
	wait := c.WaitDelay
	if wait <= 0 {
		wait = 5 * time.Second
	}
	copied := make(chan struct{})
	go func() { copies.Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(wait):
		for _, r := range readEnds {
			r.Close()
		}
		<-copied
	}
	for _, r := range readEnds {
		r.Close()
	}
	if es := exitStatusOf(ei.status); es.Code != 0 {
		return &CmdExitError{Status: es}
	}
	return nil
}
