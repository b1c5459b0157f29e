package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

var probeClient = &http.Client{
	Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: noRedirects,
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// unixClient returns a client that sends every request to the unix socket
// at path, whatever the URL's host (which stays the Host header).
func unixClient(path string) *http.Client {
	var d net.Dialer
	return &http.Client{
		Transport: &http.Transport{
			DisableKeepAlives: true,
			Proxy:             nil,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", path)
			},
		},
		CheckRedirect: noRedirects,
	}
}

// runProbe tries the probe every interval until it passes (nil) or ctx ends.
// An exec probe runs as the program (attr).
func runProbe(ctx context.Context, r *ProbeConfig, attr procAttr) error {
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, r.Timeout)
		err := probeOnce(actx, r, attr)
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

// statusError is an HTTP probe's answer outside 2xx.
type statusError int

func (e statusError) Error() string { return fmt.Sprintf("status %d", int(e)) }

// checkOnce runs one health check and returns nil or why it failed, in a
// few words for `hostctl status`: "GET /healthz: 500", "GET /healthz:
// connection refused", "connect 127.0.0.1:8000: timed out after 5s",
// "check.sh: exit status 1". An exec check runs as the program (attr).
func checkOnce(ctx context.Context, h *HealthConfig, attr procAttr) error {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	err := probeOnce(ctx, h.probe(), attr)
	if err == nil {
		return nil
	}
	what := ""
	switch {
	case h.HTTP != "":
		what = "GET " + h.HTTP
		if u, perr := url.Parse(h.HTTP); perr == nil {
			what = "GET " + u.RequestURI()
		}
	case h.TCP != "":
		what = "connect " + h.TCP
	default:
		what = filepath.Base(h.Exec[0])
	}
	var se statusError
	var errno syscall.Errno
	var ue *url.Error
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%s: %d", what, int(se))
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%s: timed out after %s", what, h.Timeout)
	case errors.As(err, &errno):
		return fmt.Errorf("%s: %s", what, errno.Error())
	case errors.As(err, &ue): // its text repeats the method and URL
		return fmt.Errorf("%s: %s", what, ue.Err.Error())
	}
	return fmt.Errorf("%s: %s", what, strings.TrimPrefix(err.Error(), "probe "))
}

func probeOnce(ctx context.Context, r *ProbeConfig, attr procAttr) error {
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
		client := probeClient
		if r.Socket != "" {
			client = unixClient(r.Socket)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return statusError(resp.StatusCode)
		}
		return nil
	case len(r.Exec) > 0:
		return execProbe(ctx, r.Exec, attr)
	}
	return errors.New("empty probe")
}

// execProbe runs the command through the spawner (so a reap-all hostctl
// never steals its exit status) as the program (attr), in its own process
// group, killed on timeout.
func execProbe(ctx context.Context, argv []string, attr procAttr) error {
	done := make(chan exitInfo, 1)
	null := devNullFd()
	pid, err := attr.start(theSpawner(), argv, [3]uintptr{null, null, null}, func(ei exitInfo) { done <- ei })
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
