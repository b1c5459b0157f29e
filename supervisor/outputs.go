package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
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

// LogOpener opens the log stream for one process's stdout or stderr.
// stream is "stdout" or "stderr"; path is the resolved file path.
type LogOpener interface {
	OpenLog(proc *ProcessConfig, stream, path string) (LogStream, error)
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

func openOutputs(cfg *ProcessConfig, logDir string, opener LogOpener) (*outputs, error) {
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
	o.stdoutPath = path(cfg.Program.StdoutLog, ".out.log")
	if !cfg.Program.RedirectStderr {
		o.stderrPath = path(cfg.Program.StderrLog, ".err.log")
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
	case cfg.Program.RedirectStderr:
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
// group, with Pdeathsig, as its user (attr) and with its outputs.
func (s *Supervisor) startProcess(p *process, attr procAttr) (int, error) {
	stdout, stderr := p.out.files()
	return attr.start(s.spawner, p.argv, [3]uintptr{p.out.devnull.Fd(), stdout.Fd(), stderr.Fd()}, func(ei exitInfo) {
		p.send(event{kind: evExit, exit: ei})
	})
}
