package check

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/user"
	"regexp"
	"strconv"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
	"github.com/hostctl/hostctl/supervisor"
	"github.com/hostctl/hostctl/supervisor/trust"
)

// Config is one [check.NAME] table: a probe of a service hostctl does not
// run, how often, and who is told when it is down. Exactly one of TCP,
// HTTP, Exec.
type Config struct {
	// Name is NAME: the alert's key is "check_failed:NAME". Set by the
	// config reader.
	Name string `toml:"-"`
	// TCP is "host:port" that must accept a connection ("db:5432").
	TCP string `toml:"tcp"`
	// HTTP is an http:// or https:// URL that must answer GET with one of
	// Status (and Body, when set). Redirects are not followed.
	HTTP string `toml:"http"`
	// Status are the HTTP status codes that pass, one code or a list.
	// Default: any 2xx or 3xx.
	Status Codes `toml:"status"`
	// Body: the answer's body (its first 1 MiB) must contain this string,
	// or one of these strings (a list). Default: any body.
	Body Strings `toml:"body"`
	// Exec is a command (shell-split, or a list) that must exit 0.
	Exec supervisor.Command `toml:"exec"`
	// User is the user Exec runs as. Required with Exec: an exec check
	// never runs as root unless user = "root" is written.
	User string `toml:"user"`
	// Interval between two probes. Default 30s.
	Interval time.Duration `toml:"interval"`
	// Timeout of one probe. Default 5s.
	Timeout time.Duration `toml:"timeout"`
	// Failures is how many probes in a row must fail before the check is
	// down and alerts. Default 3.
	Failures int `toml:"failures"`
	// Notes is free text for the person on call (what the service is,
	// what to do when it is down); it goes with the alert and `hostctl
	// status NAME` shows it.
	Notes string `toml:"notes"`
	// Severity of the alert: critical, error, warning or info. Default
	// error.
	Severity alert.Severity `toml:"severity"`
}

// Default returns a [check.NAME] table's defaults.
func Default(name string) Config {
	return Config{Name: name, Interval: 30 * time.Second, Timeout: 5 * time.Second, Failures: 3, Severity: alert.Error}
}

// Codes is a list of HTTP status codes; in TOML one integer or an array.
type Codes []int

// UnmarshalTOML accepts an integer or an array of integers.
func (c *Codes) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		*c = Codes{int(v)}
		return nil
	case []any:
		out := make(Codes, 0, len(v))
		for _, e := range v {
			n, ok := e.(int64)
			if !ok {
				return fmt.Errorf("must be a status code or a list of them (example: 200 or [200, 204])")
			}
			out = append(out, int(n))
		}
		*c = out
		return nil
	}
	return fmt.Errorf("must be a status code or a list of them (example: 200 or [200, 204])")
}

// Strings is a list of strings; in TOML one string or an array.
type Strings []string

// UnmarshalTOML accepts a string or an array of strings.
func (s *Strings) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		*s = Strings{v}
		return nil
	case []any:
		out := make(Strings, 0, len(v))
		for _, e := range v {
			str, ok := e.(string)
			if !ok {
				return fmt.Errorf("must be a string or a list of strings (example: [%q, %q])", `"status":"green"`, `"status":"yellow"`)
			}
			out = append(out, str)
		}
		*s = out
		return nil
	}
	return fmt.Errorf("must be a string or a list of strings (example: [%q, %q])", `"status":"green"`, `"status":"yellow"`)
}

// FieldError is a problem at one key path of a check.
type FieldError struct {
	Key string // "check.db.tcp"
	Msg string
	// Machine: the problem is with this machine (an unknown user, a
	// missing command), not with the file.
	Machine bool
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Field returns the key path and the message apart.
func (e *FieldError) Field() (key, msg string) { return e.Key, e.Msg }

// OnMachine reports whether the problem is with this machine.
func (e *FieldError) OnMachine() bool { return e.Machine }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Validate checks the check at key ("check.db") and returns every
// problem. It reads nothing but the user database and PATH (an exec
// check's user and command, reported as problems with this machine), and
// for an exec check that runs as root the command's file, which must be
// one that only root can change (trust.ReadFile's rule).
func (c *Config) Validate(key string) []error {
	var errs []error
	bad := func(k, format string, a ...any) {
		errs = append(errs, &FieldError{Key: key + k, Msg: fmt.Sprintf(format, a...)})
	}
	machine := func(k, format string, a ...any) {
		errs = append(errs, &FieldError{Key: key + k, Msg: fmt.Sprintf(format, a...), Machine: true})
	}
	if !nameRE.MatchString(c.Name) {
		bad("", "%q is not a check name: letters, digits, '_', '.' and '-', starting with a letter or digit", c.Name)
	}
	n := 0
	if c.TCP != "" {
		n++
		host, port, err := net.SplitHostPort(c.TCP)
		if p, perr := strconv.ParseUint(port, 10, 16); err != nil || host == "" || perr != nil || p == 0 {
			bad(".tcp", "%q is not host:port (example: \"db:5432\")", c.TCP)
		}
	}
	if c.HTTP != "" {
		n++
		u, err := url.Parse(c.HTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(".http", "%q is not an http:// or https:// URL (example: \"http://127.0.0.1:9200/_cluster/health\")", c.HTTP)
		}
	}
	if len(c.Exec) > 0 {
		n++
	}
	if n != 1 {
		bad("", "give exactly one of tcp, http, exec (found %d)", n)
	}
	if c.HTTP == "" {
		if len(c.Status) > 0 {
			bad(".status", "applies only to an http check")
		}
		if len(c.Body) > 0 {
			bad(".body", "applies only to an http check")
		}
	}
	for i, s := range c.Status {
		if s < 100 || s > 599 {
			bad(fmt.Sprintf(".status[%d]", i), "%d is not an HTTP status code (100 to 599)", s)
		}
	}
	for i, b := range c.Body {
		if b == "" {
			bad(fmt.Sprintf(".body[%d]", i), "empty: every body contains it; leave body out instead")
		}
	}
	asRoot := false
	switch {
	case len(c.Exec) == 0 && c.User != "":
		bad(".user", "applies only to an exec check (the user its command runs as)")
	case len(c.Exec) > 0 && c.User == "":
		bad(".user", "required with exec: the user the command runs as (example: \"nobody\"); an exec check never runs as root by default, write user = \"root\" if it must")
	case len(c.Exec) > 0:
		u, err := user.Lookup(c.User)
		if err != nil {
			u, err = user.LookupId(c.User)
		}
		if err != nil {
			machine(".user", "unknown user %q (create it, e.g. useradd --system %s, or fix the name)", c.User, c.User)
		} else {
			asRoot = u.Uid == "0"
		}
	}
	if len(c.Exec) > 0 {
		path, err := supervisor.CheckExecutable(c.Exec[0])
		switch {
		case err != nil:
			machine(".exec", "%v", err)
		case asRoot:
			// Root runs it: whoever can change the file (the app's user,
			// if it lives with the app) would run their own code as root.
			// It must pass the rule of the config file itself.
			if _, _, err := trust.ReadFile(path, trust.Config); err != nil {
				if _, ok := errors.AsType[*trust.Error](err); ok {
					bad(".exec", "runs as root (user = %q), but %v; run it as a user that may change it, or make it root's alone", c.User, err)
				} else {
					machine(".exec", "%v", err)
				}
			}
		}
	}
	if c.Interval <= 0 {
		bad(".interval", "must be longer than zero (example: \"30s\")")
	}
	if c.Timeout <= 0 {
		bad(".timeout", "must be longer than zero (example: \"5s\")")
	}
	if c.Failures < 1 {
		bad(".failures", "%d: must be 1 or more (the probes in a row that must fail before the check is down)", c.Failures)
	}
	switch c.Severity {
	case alert.Critical, alert.Error, alert.Warning, alert.Info:
	default:
		bad(".severity", "%q is not critical, error, warning or info", c.Severity)
	}
	return errs
}

// Probe is the check's probe, for supervisor.ServiceProbe's code.
func (c *Config) Probe() *supervisor.ServiceProbe {
	return &supervisor.ServiceProbe{TCP: c.TCP, HTTP: c.HTTP, Status: c.Status, Body: c.Body, Exec: c.Exec, User: c.User, Timeout: c.Timeout}
}

// Target is what the check probes, in a few words: "tcp db:5432", "GET
// https://...", "exec check-db as postgres".
func (c *Config) Target() string {
	switch {
	case c.TCP != "":
		return "tcp " + c.TCP
	case c.HTTP != "":
		return "GET " + c.HTTP
	case len(c.Exec) > 0:
		return "exec " + c.Exec[0] + " as " + c.User
	}
	return ""
}
