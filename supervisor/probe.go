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
	return describeProbeErr(ctx, err, h.TCP, h.HTTP, h.Exec, h.Timeout)
}

// describeProbeErr says why a probe with this target (one of tcp, http,
// exec) failed, in a few words (see checkOnce); nil stays nil. ctx is
// the probe's, its deadline timeout.
func describeProbeErr(ctx context.Context, err error, tcp, httpURL string, exec Command, timeout time.Duration) error {
	if err == nil {
		return nil
	}
	what := ""
	switch {
	case httpURL != "":
		what = "GET " + httpURL
		if u, perr := url.Parse(httpURL); perr == nil {
			what = "GET " + u.RequestURI()
		}
	case tcp != "":
		what = "connect " + tcp
	default:
		what = filepath.Base(exec[0])
	}
	var se statusError
	var errno syscall.Errno
	var ue *url.Error
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%s: %d", what, int(se))
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%s: timed out after %s", what, timeout)
	case errors.As(err, &errno):
		return fmt.Errorf("%s: %s", what, errno.Error())
	case errors.As(err, &ue): // its text repeats the method and URL
		return fmt.Errorf("%s: %s", what, ue.Err.Error())
	}
	return fmt.Errorf("%s: %s", what, strings.TrimPrefix(err.Error(), "probe "))
}

func probeOnce(ctx context.Context, r *ProbeConfig, attr procAttr) error {
	return probeTarget(ctx, r.TCP, r.HTTP, r.Socket, r.Exec, accept2xx, attr)
}

// accept2xx is a ready probe's and a health check's rule for an HTTP
// answer: 2xx.
func accept2xx(resp *http.Response) error {
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return statusError(resp.StatusCode)
	}
	return nil
}

// probeTarget tries one of tcp, http (sent to socket when set; accept
// judges the answer, whose body it may read) or exec (run as attr) once.
func probeTarget(ctx context.Context, tcp, httpURL, socket string, exec Command, accept func(*http.Response) error, attr procAttr) error {
	switch {
	case tcp != "":
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", tcp)
		if err != nil {
			return err
		}
		return c.Close()
	case httpURL != "":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, httpURL, nil)
		if err != nil {
			return err
		}
		client := probeClient
		if socket != "" {
			client = unixClient(socket)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return accept(resp)
	case len(exec) > 0:
		return execProbe(ctx, exec, attr)
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
