// Package fleet reads the programs of several hostctl daemons (the
// webservers behind a front) through their TCP admin APIs, all at once and
// each within a bounded time: `hostctl status --fleet`. It owns the
// [fleet] section of hostctl.toml.
package fleet

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/client"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/control"
	"github.com/hostctl/hostctl/supervisor/trust"
)

// Config is the [fleet] section: the hostctl daemons that
// `hostctl status --fleet` shows.
//
//	[fleet]
//	timeout = "5s"
//
//	[[fleet.host]]
//	name = "web1"
//	url = "https://10.0.0.11:9001"
//	token_file = "/etc/hostctl/web1.token"
//	ca_file = "/etc/hostctl/web1-ca.crt"
type Config struct {
	// Hosts are the [[fleet.host]] tables, shown in this order.
	Hosts []Host `toml:"host"`
	// Timeout bounds the whole answer of each host (connecting included);
	// a host that has not answered by then is shown as not answering.
	// Default 5s.
	Timeout time.Duration `toml:"timeout"`
}

// Host is one [[fleet.host]]: a hostctl daemon with a TCP admin listener
// ([admin] listen and token_file on that host).
type Host struct {
	// Name is shown in the HOST column. Required, unique.
	Name string `toml:"name"`
	// URL is the host's admin listener, "https://10.0.0.11:9001" (its
	// [admin] listen with TLS). Required. An http:// URL whose host is
	// not loopback needs Insecure: the token would cross the network in
	// clear.
	URL string `toml:"url"`
	// TokenFile holds that host's admin token (the contents of its
	// [admin] token_file), or its read-only token (read_token_file),
	// which is all status --fleet needs. Required.
	TokenFile string `toml:"token_file" trust:"secret"`
	// CAFile is the CA that an https URL's certificate is signed by (with
	// [admin] tls = "internal" on that host: its state dir's
	// admin-tls/ca.crt). Default: the system's CAs.
	CAFile string `toml:"ca_file" trust:"config"`
	// Insecure allows an http:// URL to a host that is not loopback.
	Insecure bool `toml:"insecure"`

	token string         // read from TokenFile by Provision
	roots *x509.CertPool // read from CAFile by Provision
}

// DefaultTimeout is Config.Timeout's default.
const DefaultTimeout = 5 * time.Second

// DefaultConfig returns [fleet] with its defaults and no hosts.
func DefaultConfig() Config { return Config{Timeout: DefaultTimeout} }

// FieldError is one problem in [fleet], at a key path such as
// "fleet.host[1].url".
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Field returns the key path and the message apart, for the config
// reader to put the key's line in front.
func (e *FieldError) Field() (key, msg string) { return e.Key, e.Msg }

// Validate returns every problem in c, each a *FieldError whose key
// starts with prefix ("fleet"). It reads nothing: Provision has read the
// tokens and CA files.
func (c *Config) Validate(prefix string) []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &FieldError{Key: prefix + key, Msg: fmt.Sprintf(format, a...)})
	}
	if c.Timeout <= 0 {
		bad(".timeout", "must be more than 0 (for example \"5s\")")
	}
	seen := map[string]int{}
	for i := range c.Hosts {
		h := &c.Hosts[i]
		k := func(f string) string { return fmt.Sprintf(".host[%d].%s", i, f) }
		switch {
		case h.Name == "":
			bad(k("name"), "required: the name shown for this host (for example \"web1\")")
		case strings.ContainsFunc(h.Name, func(r rune) bool { return r <= ' ' }):
			bad(k("name"), "%q must not contain spaces", h.Name)
		default:
			if j, dup := seen[h.Name]; dup {
				bad(k("name"), "%q is also the name of %s.host[%d]", h.Name, prefix, j)
			}
			seen[h.Name] = i
		}
		if h.URL == "" {
			bad(k("url"), "required: the host's admin listener, for example \"https://10.0.0.11:9001\" (its [admin] listen)")
		} else if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			bad(k("url"), "%q is not an http:// or https:// URL without a path (for example \"https://10.0.0.11:9001\")", h.URL)
		} else if u.Scheme == "http" && !h.Insecure && !control.LoopbackHost(u.Hostname()) {
			bad(k("url"), "%q is plain HTTP to another machine: the token would cross the network in clear; use https:// (that host's [admin] tls or cert_file, and ca_file here), or on a private network you trust write insecure = true", h.URL)
		} else if u.Scheme == "http" && h.CAFile != "" {
			bad(k("ca_file"), "is for an https:// url")
		}
		if h.TokenFile == "" {
			bad(k("token_file"), "required: a file holding the host's admin token (its [admin] token_file)")
		}
	}
	return errs
}

// Provision reads each host's token and CA file once, through read
// (trust.ReadFile's rule), and returns the problems, each a *FieldError
// whose key starts with prefix ("fleet"). Call it after decoding and
// before Validate.
func (c *Config) Provision(prefix string, read trust.Reader) []error {
	var errs []error
	for i := range c.Hosts {
		h := &c.Hosts[i]
		bad := func(f string, err error) {
			errs = append(errs, &FieldError{Key: fmt.Sprintf("%s.host[%d].%s", prefix, i, f), Msg: err.Error()})
		}
		if h.CAFile != "" {
			b, err := read(h.CAFile, trust.Config)
			if err != nil {
				bad("ca_file", trust.Describe(h.CAFile, err))
			} else if h.roots = x509.NewCertPool(); !h.roots.AppendCertsFromPEM(b) {
				bad("ca_file", fmt.Errorf("%q holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")", h.CAFile))
			}
		}
		if h.TokenFile != "" {
			var err error
			if h.token, err = trust.ReadSecret(read, h.TokenFile); err != nil {
				bad("token_file", err)
			}
		}
	}
	return errs
}

// Reason says why a host is missing from the table.
type Reason string

// Reasons.
const (
	Refused  Reason = "refused"   // nothing listens at the URL
	Timeout  Reason = "timeout"   // no answer within the timeout
	BadToken Reason = "bad token" // the host refused the token (401)
	BadCert  Reason = "tls"       // its certificate was not accepted
	Failed   Reason = "error"     // anything else: the message says
)

// HostStatus is one host's answer, or why there is none.
type HostStatus struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// OK is true when the host answered; Programs is then its programs.
	OK       bool              `json:"ok"`
	Programs []apitype.Process `json:"programs"`
	// Reason and Error say why not, when OK is false.
	Reason Reason `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
	// Took is how long the host took to answer or to fail.
	Took time.Duration `json:"took_ns"`
}

// Status asks every host of c for its programs, all at once, each within
// c.Timeout, and returns the answers in c's order. It returns when every
// host has answered or failed: within about c.Timeout, whatever the hosts
// do.
func Status(ctx context.Context, c Config) []HostStatus {
	out := make([]HostStatus, len(c.Hosts))
	var wg sync.WaitGroup
	for i, h := range c.Hosts {
		wg.Go(func() { out[i] = hostStatus(ctx, h, c.Timeout) })
	}
	wg.Wait()
	return out
}

func hostStatus(ctx context.Context, h Host, timeout time.Duration) HostStatus {
	st := HostStatus{Name: h.Name, URL: h.URL}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl := &client.Client{URL: h.URL, Token: h.token, RootCAs: h.roots}
	t0 := time.Now()
	progs, err := cl.Programs(ctx)
	st.Took = time.Since(t0)
	if err == nil {
		st.OK, st.Programs = true, progs
		return st
	}
	st.Reason, st.Error = classify(err, timeout)
	return st
}

// classify turns a client error into a reason and a message for a person.
func classify(err error, timeout time.Duration) (Reason, string) {
	var ae *client.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout, fmt.Sprintf("no answer within %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused, "connection refused (is hostctl running there, with [admin] listen at this address?)"
	case errors.As(err, &ae) && ae.StatusCode == http.StatusUnauthorized:
		return BadToken, "the host refused the token (401): token_file must hold that host's [admin] token_file"
	}
	if why := client.CertError(err); why != "" {
		return BadCert, why + " (ca_file)"
	}
	return Failed, err.Error()
}
