// Package client is the typed client of hostctl's admin API: what the CLI,
// the fleet view and tests use to talk to a running hostctl, over its unix
// socket or a TCP listener (with a token, and TLS). The zero Client talks
// to the default socket. Errors are typed: *NotRunningError when nothing
// answers, *APIError for an error answer (its Code says which).
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

// DefaultSocket is the socket a Client without Socket or URL talks to.
const DefaultSocket = apitype.DefaultSocket

// Client talks to a running hostctl. The zero value uses DefaultSocket.
// A Client is safe for concurrent use once made.
type Client struct {
	// Socket is the unix socket of the admin API. Used when URL is empty;
	// default DefaultSocket.
	Socket string
	// URL is the base URL of a TCP admin listener ("http://127.0.0.1:9001",
	// "https://10.0.0.11:9001").
	URL string
	// Token is sent as "Authorization: Bearer Token" when not empty (the
	// TCP listener requires it).
	Token string
	// RootCAs are the CAs that an https URL's certificate must be signed
	// by (LoadCAFile); nil: the system's.
	RootCAs *x509.CertPool
	// HTTPClient, if set, is used as is (Socket is then ignored).
	HTTPClient *http.Client

	once sync.Once
	hc   *http.Client
	base string
}

// NotRunningError means nothing answers at the address: hostctl is not
// running there (or the address is wrong).
type NotRunningError struct {
	Addr string // the socket path or URL tried
	Err  error
}

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("hostctl is not running (nothing answers at %s: %v)", e.Addr, errMsg(e.Err))
}

func (e *NotRunningError) Unwrap() error { return e.Err }

func errMsg(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// APIError is an error answer of the API.
type APIError struct {
	StatusCode int
	// Code is machine-readable: one of apitype's Code constants.
	Code    string
	Message string
	// Errors lists each problem when there are several (config_invalid).
	Errors []string
}

func (e *APIError) Error() string { return e.Message }

// IsUnknownProgram reports whether err says a program name is not configured.
func IsUnknownProgram(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == apitype.CodeUnknownProgram
}

// Addr is the socket path or URL the client talks to.
func (c *Client) Addr() string {
	if c.URL != "" {
		return c.URL
	}
	if c.Socket != "" {
		return c.Socket
	}
	return DefaultSocket
}

func (c *Client) init() {
	c.once.Do(func() {
		switch {
		case c.HTTPClient != nil:
			c.hc = c.HTTPClient
			c.base = strings.TrimRight(c.URL, "/")
		case c.URL != "":
			c.hc = &http.Client{Transport: &http.Transport{
				Proxy:               nil,
				DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
				TLSClientConfig:     &tls.Config{RootCAs: c.RootCAs, MinVersion: tls.VersionTLS12},
				TLSHandshakeTimeout: 5 * time.Second,
				MaxIdleConnsPerHost: 4,
			}}
			c.base = strings.TrimRight(c.URL, "/")
		default:
			path := c.Addr()
			c.hc = &http.Client{Transport: &http.Transport{
				Proxy: nil,
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, "unix", path)
				},
				MaxIdleConnsPerHost: 4,
			}}
			// The host name is never resolved: every dial goes to the socket.
			c.base = "http://hostctl.sock"
		}
	})
}

// do sends a request and decodes a JSON answer into out (unless nil). It
// returns the response with its body open when out is nil and stream is set.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the answer of %s %s: %w", method, path, err)
	}
	return nil
}

// send sends a request; a non-2xx answer becomes an *APIError.
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	c.init()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if isNotRunning(err) {
			return nil, &NotRunningError{Addr: c.Addr(), Err: err}
		}
		return nil, fmt.Errorf("talking to hostctl at %s: %w", c.Addr(), err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var eb apitype.ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
		}
		return nil, &APIError{StatusCode: resp.StatusCode, Code: eb.Code, Message: eb.Error, Errors: eb.Errors}
	}
	return resp, nil
}

// LoadCAFile reads the PEM certificates of a CA file into a pool, for
// Client.RootCAs.
func LoadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// CertError says, for a person, why the TLS certificate of an https URL
// was not accepted and what to do; "" when err is not about that.
func CertError(err error) string {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return "its certificate is not signed by a CA this client trusts: give its CA file (with [admin] tls = \"internal\" on that host: its STATE_DIR/admin-tls/ca.crt)"
	case errors.As(err, &he):
		names := append(append([]string{}, he.Certificate.DNSNames...), fmt.Sprint(he.Certificate.IPAddresses))
		return fmt.Sprintf("its certificate is not for %s (it is for %s): use one of those, or add the name to that host's [admin] names", he.Host, strings.Join(names, " "))
	case errors.As(err, &ci):
		return "its certificate is not valid: " + ci.Error()
	}
	return ""
}

func isNotRunning(err error) bool {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" {
		return false
	}
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

// Health checks that the daemon answers.
func (c *Client) Health(ctx context.Context) (apitype.Healthz, error) {
	var h apitype.Healthz
	err := c.do(ctx, "GET", "/healthz", nil, &h)
	return h, err
}

// Programs returns the named programs (all when none), sorted by name.
func (c *Client) Programs(ctx context.Context, names ...string) ([]apitype.Process, error) {
	q := url.Values{}
	for _, n := range names {
		q.Add("name", n)
	}
	path := "/v1/programs"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out []apitype.Process
	err := c.do(ctx, "GET", path, nil, &out)
	return out, err
}

// Program returns one program.
func (c *Client) Program(ctx context.Context, name string) (apitype.Process, error) {
	var out apitype.Process
	err := c.do(ctx, "GET", "/v1/programs/"+url.PathEscape(name), nil, &out)
	return out, err
}

// Start starts the named programs (["all"] for every one) and waits up to
// wait for each to be RUNNING (0: does not wait).
func (c *Client) Start(ctx context.Context, names []string, wait time.Duration) ([]apitype.ActionResult, error) {
	return c.action(ctx, "start", apitype.ActionRequest{Names: names, WaitSeconds: wait.Seconds()})
}

// Stop stops the named programs and waits up to wait for each to be down.
func (c *Client) Stop(ctx context.Context, names []string, wait time.Duration) ([]apitype.ActionResult, error) {
	return c.action(ctx, "stop", apitype.ActionRequest{Names: names, WaitSeconds: wait.Seconds()})
}

// Restart restarts the named programs and waits up to wait for each to be
// RUNNING with a new process.
func (c *Client) Restart(ctx context.Context, names []string, wait time.Duration) ([]apitype.ActionResult, error) {
	return c.action(ctx, "restart", apitype.ActionRequest{Names: names, WaitSeconds: wait.Seconds()})
}

// Signal sends sig ("HUP", "SIGUSR1", "15") to the main process of each
// named program.
func (c *Client) Signal(ctx context.Context, sig string, names []string) ([]apitype.ActionResult, error) {
	return c.action(ctx, "signal", apitype.ActionRequest{Names: names, Signal: sig})
}

func (c *Client) action(ctx context.Context, kind string, req apitype.ActionRequest) ([]apitype.ActionResult, error) {
	var out apitype.ActionResponse
	err := c.do(ctx, "POST", "/v1/"+kind, req, &out)
	return out.Results, err
}

// Reload makes the daemon re-read its config file. An invalid file changes
// nothing: the error is an *APIError with Code apitype.CodeConfigInvalid and every
// problem in Errors.
func (c *Client) Reload(ctx context.Context) (apitype.ReloadResponse, error) {
	var out apitype.ReloadResponse
	err := c.do(ctx, "POST", "/v1/reload", struct{}{}, &out)
	return out, err
}

// Proxy returns the proxy's status, and whether a proxy is configured
// (false: the status is zero).
func (c *Client) Proxy(ctx context.Context) (apitype.ProxyStatus, bool, error) {
	var out apitype.ProxyResponse
	if err := c.do(ctx, "GET", "/v1/proxy", nil, &out); err != nil {
		return apitype.ProxyStatus{}, false, err
	}
	if !out.Configured || out.Status == nil {
		return apitype.ProxyStatus{}, false, nil
	}
	return *out.Status, true, nil
}

// Log calls fn with the last lines lines of a program's stream ("stdout"
// or "stderr"; "" is stdout) and, with follow, with every new line until
// ctx ends (then it returns nil) or the program is removed.
func (c *Client) Log(ctx context.Context, name, stream string, lines int, follow bool, fn func(line string) error) error {
	q := url.Values{"lines": {strconv.Itoa(lines)}}
	if stream != "" {
		q.Set("stream", stream)
	}
	if follow {
		q.Set("follow", "true")
	}
	resp, err := c.send(ctx, "GET", "/v1/programs/"+url.PathEscape(name)+"/log?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var l apitype.LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("reading the log: %w", err)
		}
		if err := fn(l.Line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// Alerts returns the active alerts and the sinks' delivery counters.
func (c *Client) Alerts(ctx context.Context) (apitype.AlertsResponse, error) {
	var out apitype.AlertsResponse
	err := c.do(ctx, "GET", "/v1/alerts", nil, &out)
	return out, err
}

// Checks returns every [check.NAME] of the daemon's config, by name:
// the services hostctl does not run but probes. A daemon older than
// checks answers with an APIError whose Code is apitype.CodeNotFound.
func (c *Client) Checks(ctx context.Context) ([]apitype.Check, error) {
	var out apitype.ChecksResponse
	err := c.do(ctx, "GET", "/v1/checks", nil, &out)
	return out.Checks, err
}

// Releases returns the releases of the daemon's [deploy], the live one
// and the last deploys; Configured is false without [deploy]. A daemon
// older than it answers with an APIError whose Code is
// apitype.CodeNotFound.
func (c *Client) Releases(ctx context.Context) (apitype.ReleasesResponse, error) {
	var out apitype.ReleasesResponse
	err := c.do(ctx, "GET", "/v1/releases", nil, &out)
	return out, err
}

// TestAlerts sends a test alert to every sink and returns each sink's
// answer; it takes as long as the slowest sink (at most a minute). Without
// alerts in the daemon the error is an *APIError with Code apitype.CodeUnavailable.
func (c *Client) TestAlerts(ctx context.Context) (apitype.AlertsTestResponse, error) {
	var out apitype.AlertsTestResponse
	err := c.do(ctx, "POST", "/v1/alerts/test", struct{}{}, &out)
	return out, err
}

// History returns every program's samples of the last hour.
func (c *Client) History(ctx context.Context) (apitype.HistoryResponse, error) {
	var out apitype.HistoryResponse
	err := c.do(ctx, "GET", "/v1/history", nil, &out)
	return out, err
}

// Drain returns the drain state.
func (c *Client) Drain(ctx context.Context) (apitype.DrainStatus, error) {
	var out apitype.DrainStatus
	err := c.do(ctx, "GET", "/v1/drain", nil, &out)
	return out, err
}

// StartDrain makes the daemon drain: its health_path answers 503. With
// wait > 0 it answers once no request is in flight and none has arrived
// for quiet (0: the daemon's default), or after wait (TimedOut).
func (c *Client) StartDrain(ctx context.Context, wait, quiet time.Duration) (apitype.DrainStatus, error) {
	var out apitype.DrainStatus
	err := c.do(ctx, "POST", "/v1/drain", apitype.DrainRequest{WaitSeconds: wait.Seconds(), QuietSeconds: quiet.Seconds()}, &out)
	return out, err
}

// Undrain ends the drain. With wait > 0 it answers once health_path has
// answered 200 (a load balancer saw the host healthy), or after wait
// (TimedOut).
func (c *Client) Undrain(ctx context.Context, wait time.Duration) (apitype.DrainStatus, error) {
	var out apitype.DrainStatus
	err := c.do(ctx, "POST", "/v1/undrain", apitype.DrainRequest{WaitSeconds: wait.Seconds()}, &out)
	return out, err
}

// Deploy asks hostctl to deploy a new release and calls fn with each
// progress line as it comes; it returns the deploy's error (an
// *APIError for a request refused outright), nil once the release is
// live. ctx ending before the switch cancels the deploy.
func (c *Client) Deploy(ctx context.Context, req apitype.DeployRequest, fn func(apitype.DeployEvent)) error {
	resp, err := c.send(ctx, "POST", "/v1/deploy", req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var ev apitype.DeployEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("reading the deploy's progress: %w", err)
		}
		if ev.Result != "" {
			if ev.Result != apitype.DeployOK {
				return &DeployError{Msg: ev.Error}
			}
			return nil
		}
		fn(ev)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the deploy's progress: %w", err)
	}
	return errors.New("hostctl ended the deploy's progress without a result (did it stop?): see hostctl releases")
}

// DeployError is a deploy that failed; Msg says why.
type DeployError struct{ Msg string }

func (e *DeployError) Error() string { return e.Msg }
