package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

var probeClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// runProbe tries the probe every interval until it passes (nil) or ctx ends.
func runProbe(ctx context.Context, r *ProbeConfig, dir string, env []string) error {
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, r.Timeout)
		err := probeOnce(actx, r, dir, env)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func probeOnce(ctx context.Context, r *ProbeConfig, dir string, env []string) error {
	switch {
	case r.TCP != "":
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", r.TCP)
		if err != nil {
			return err
		}
		return c.Close()
	case r.HTTP != "":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.HTTP, nil)
		if err != nil {
			return err
		}
		resp, err := probeClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	case len(r.Exec) > 0:
		return execProbe(ctx, r.Exec, dir, env)
	}
	return errors.New("empty probe")
}

// execProbe runs the command through the spawner (so a reap-all hostctl
// never steals its exit status) in its own process group, killed on timeout.
func execProbe(ctx context.Context, argv []string, dir string, env []string) error {
	argv0, err := lookPath(argv[0], dir)
	if err != nil {
		return err
	}
	done := make(chan exitInfo, 1)
	attr := &syscall.ProcAttr{Dir: dir, Env: env, Files: []uintptr{devNullFd(), devNullFd(), devNullFd()},
		Sys: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}}
	pid, err := theSpawner().start(argv0, argv, attr, func(ei exitInfo) { done <- ei })
	if err != nil {
		return err
	}
	select {
	case ei := <-done:
		if es := exitStatusOf(ei.status); es.Code != 0 {
			return fmt.Errorf("probe %s", es)
		}
		return nil
	case <-ctx.Done():
		syscall.Kill(-pid, syscall.SIGKILL)
		<-done
		return ctx.Err()
	}
}

var (
	devNullOnce sync.Once
	devNull     *os.File
)

// devNullFd is a /dev/null descriptor shared by probe processes.
func devNullFd() uintptr {
	devNullOnce.Do(func() {
		f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			panic(err)
		}
		devNull = f
	})
	return devNull.Fd()
}
