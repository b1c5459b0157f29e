package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// LogStream is where one of a program's output streams goes: a pipe owned
// by hostctl whose write end is handed to every process of the program.
// *logfile.Stream implements it.
type LogStream interface {
	WriteEnd() *os.File
	Path() string
	Dropped() uint64
	Tail(n int) ([]byte, error)
	// LastLine is the last complete line written to the file, "" when none.
	LastLine() string
	Follow(ctx context.Context, lastLines int, fn func(line []byte) error) error
	Close() error
}

// LogOpener opens the log stream for one program's stdout or stderr.
// stream is "stdout" or "stderr"; path is the resolved file path.
type LogOpener interface {
	OpenLog(prog *ProgramConfig, stream, path string) (LogStream, error)
}

// outputs are a program's stdout and stderr destinations. They live as long
// as the program's config, across process restarts.
type outputs struct {
	stdout, stderr         LogStream // nil when discarded
	stdoutPath, stderrPath string
	devnull                *os.File
}

func (o *outputs) files() (stdout, stderr *os.File) {
	stdout, stderr = o.devnull, o.devnull
	if o.stdout != nil {
		stdout = o.stdout.WriteEnd()
	}
	if o.stderr != nil {
		stderr = o.stderr.WriteEnd()
	}
	return stdout, stderr
}

func (o *outputs) close() error {
	var errs []error
	if o.stdout != nil {
		errs = append(errs, o.stdout.Close())
	}
	if o.stderr != nil && o.stderr != o.stdout {
		errs = append(errs, o.stderr.Close())
	}
	if o.devnull != nil {
		errs = append(errs, o.devnull.Close())
	}
	return errors.Join(errs...)
}

// Dropped is the number of output bytes dropped because the disk could not
// keep up or was full.
func (o *outputs) dropped() uint64 {
	var n uint64
	if o.stdout != nil {
		n += o.stdout.Dropped()
	}
	if o.stderr != nil && o.stderr != o.stdout {
		n += o.stderr.Dropped()
	}
	return n
}

func openOutputs(cfg *ProgramConfig, logDir string, opener LogOpener) (*outputs, error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	o := &outputs{devnull: devnull}
	path := func(v, suffix string) string {
		switch {
		case v == "none":
			return ""
		case v != "":
			return v
		case logDir == "":
			return ""
		}
		return logDir + "/" + cfg.Name + suffix
	}
	o.stdoutPath = path(cfg.StdoutLog, ".out.log")
	if !cfg.RedirectStderr {
		o.stderrPath = path(cfg.StderrLog, ".err.log")
	}
	if opener == nil {
		o.stdoutPath, o.stderrPath = "", ""
		return o, nil
	}
	if o.stdoutPath != "" {
		if o.stdout, err = opener.OpenLog(cfg, "stdout", o.stdoutPath); err != nil {
			o.close()
			return nil, fmt.Errorf("stdout log: %w", err)
		}
	}
	switch {
	case cfg.RedirectStderr:
		o.stderr, o.stderrPath = o.stdout, o.stdoutPath
	case o.stderrPath != "":
		if o.stderr, err = opener.OpenLog(cfg, "stderr", o.stderrPath); err != nil {
			o.close()
			return nil, fmt.Errorf("stderr log: %w", err)
		}
	}
	return o, nil
}

// startProcess forks and execs the program's command in its own process
// group, with Pdeathsig, its user and its outputs.
func (s *Supervisor) startProcess(p *program) (int, error) {
	cfg := p.cfg
	argv := p.argv
	argv0, err := lookPath(argv[0], cfg.Directory)
	if err != nil {
		return 0, err
	}
	if cfg.Umask != "" {
		// The umask is process-wide in Go; set it in a tiny shell that then
		// execs the program (same pid).
		argv = append([]string{"/bin/sh", "-c", "umask " + cfg.Umask + ` && exec "$@"`, "sh", argv0}, argv[1:]...)
		argv0 = "/bin/sh"
	}
	stdout, stderr := p.out.files()
	sys := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if cfg.User != "" || cfg.Group != "" {
		cred, err := credentialFor(cfg.User, cfg.Group)
		if err != nil {
			return 0, err
		}
		sys.Credential = cred
	}
	attr := &syscall.ProcAttr{
		Dir:   cfg.Directory,
		Env:   p.env,
		Files: []uintptr{p.out.devnull.Fd(), stdout.Fd(), stderr.Fd()},
		Sys:   sys,
	}
	pid, err := s.spawner.start(argv0, argv, attr, func(ei exitInfo) {
		p.send(event{kind: evExit, exit: ei})
	})
	if err != nil {
		return 0, fmt.Errorf("cannot execute %q: %w", argv0, err)
	}
	return pid, nil
}

func credentialFor(userName, groupName string) (*syscall.Credential, error) {
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), NoSetGroups: true}
	if userName != "" {
		u, err := lookupUser(userName)
		if err != nil {
			return nil, err
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		cred.Uid, cred.Gid = uint32(uid), uint32(gid)
		gids, err := u.GroupIds()
		if err == nil {
			cred.NoSetGroups = false
			for _, g := range gids {
				if n, err := strconv.ParseUint(g, 10, 32); err == nil {
					cred.Groups = append(cred.Groups, uint32(n))
				}
			}
		}
	}
	if groupName != "" {
		g, err := LookupGroup(groupName)
		if err != nil {
			return nil, err
		}
		gid, _ := strconv.ParseUint(g.Gid, 10, 32)
		cred.Gid = uint32(gid)
	}
	return cred, nil
}
