package alert

import (
	"crypto/x509"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hostctl/hostctl/supervisor/logfile"
	"github.com/hostctl/hostctl/supervisor/trust"
)

// Config is the [alerts] section of hostctl.toml. Every field has a
// default (DefaultConfig); without any [[alerts.sink]], alerts are still
// kept (hostctl alerts, the dashboard, GET /v1/alerts) but sent nowhere.
type Config struct {
	// Sinks are the [[alerts.sink]] tables: where alerts go.
	Sinks []SinkConfig `toml:"sink"`

	// Repeat re-sends the trigger of an alert that still lasts this long
	// after it was last sent; 0 never repeats. Default: 4h.
	Repeat time.Duration `toml:"repeat"`
	// RetryFor is how long a failed delivery is retried (with exponential
	// backoff from 1s to 1m) before it is logged and counted in
	// hostctl_alerts_failed_total. Default: 10m.
	RetryFor time.Duration `toml:"retry_for"`
	// Settle is how long a program must run (and pass its health check,
	// if it has one) after a health or memory restart, or a crash loop,
	// before that alert resolves. Default: 1m.
	Settle time.Duration `toml:"settle"`

	// CrashLoopRestarts and CrashLoopWindow: a program that restarts
	// automatically more than CrashLoopRestarts times within
	// CrashLoopWindow is in a crash loop. Defaults: 5 in 10m.
	CrashLoopRestarts int           `toml:"crash_loop_restarts"`
	CrashLoopWindow   time.Duration `toml:"crash_loop_window"`

	// MemoryAvailableBelow alerts when the machine's available memory
	// (MemAvailable in /proc/meminfo) is below this: a percentage of
	// MemTotal ("10%") or a size ("500MB"); "" turns it off. Default: "10%".
	MemoryAvailableBelow string `toml:"memory_available_below"`
	// DiskFreeBelow alerts when a watched filesystem has less free space
	// (available to unprivileged users) than this: a percentage of its
	// size or a size; "" turns it off. Default: "10%".
	DiskFreeBelow string `toml:"disk_free_below"`
	// DiskPaths are watched besides the log dir (always watched): for
	// example the database's or the media files' directory.
	DiskPaths []string `toml:"disk_paths"`
	// CheckInterval is how often host memory, disk space, certificates and
	// upstreams are checked. Default: 30s.
	CheckInterval time.Duration `toml:"check_interval"`
	// TLSExpiresWithin alerts for a certificate that expires sooner than
	// this (normally renewed 30 days before). Default: 14d.
	TLSExpiresWithin time.Duration `toml:"tls_expires_within"`
	// Started sends a "hostctl started" alert at start, resolved once
	// every autostart program is up, so that a reboot or a crash of
	// hostctl is noticed. Default: true.
	Started bool `toml:"started"`

	// LogRules are the [[alerts.log_rule]] tables: alert on what programs
	// print, at a rate, with an ignore list.
	LogRules []LogRule `toml:"log_rule"`

	// Heartbeats are the [[alerts.heartbeat]] tables: pings to an
	// outside monitor while hostctl is alive, so that a dead host is
	// noticed.
	Heartbeats []Heartbeat `toml:"heartbeat"`
}

// DefaultConfig returns [alerts] with every default.
func DefaultConfig() Config {
	return Config{
		Repeat:               4 * time.Hour,
		RetryFor:             10 * time.Minute,
		Settle:               time.Minute,
		CrashLoopRestarts:    5,
		CrashLoopWindow:      10 * time.Minute,
		MemoryAvailableBelow: "10%",
		DiskFreeBelow:        "10%",
		CheckInterval:        30 * time.Second,
		TLSExpiresWithin:     14 * 24 * time.Hour,
		Started:              true,
	}
}

// Sink types.
const (
	TypePagerDuty = "pagerduty"
	TypeWebhook   = "webhook"
	TypeSlack     = "slack"
	TypeEmail     = "email"
)

// PagerDutyURL is the Events API v2 endpoint; EU accounts use
// https://events.eu.pagerduty.com/v2/enqueue.
const PagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// SinkConfig is one [[alerts.sink]] table. Which keys apply depends on
// Type; a key that does not apply to the type is an error.
type SinkConfig struct {
	// Name identifies the sink in logs, metrics and `hostctl alerts test`.
	// Required, unique.
	Name string `toml:"name"`
	// Type is pagerduty, webhook, slack or email. Required.
	Type string `toml:"type"`

	// URL: pagerduty (default PagerDutyURL), webhook and slack (required).
	URL string `toml:"url"`
	// RoutingKey or RoutingKeyFile (pagerduty, one required): the
	// integration key of a PagerDuty service (Events API v2).
	RoutingKey     string `toml:"routing_key"`
	RoutingKeyFile string `toml:"routing_key_file" trust:"secret"`
	// Headers (webhook) are added to every request
	// ("Authorization" = "Bearer ...").
	Headers map[string]string `toml:"headers"`
	// SecretFile (webhook) holds a secret: every request then carries
	// "X-Hostctl-Timestamp: UNIX" and "X-Hostctl-Signature: sha256=HEX",
	// the HMAC-SHA256 with that secret of the timestamp, ".", and the body,
	// so that the receiver can check where it came from and when (see
	// VerifySignature).
	SecretFile string `toml:"secret_file" trust:"secret"`

	// SMTP (email): Host (required), Port (default 587; 25 for a local
	// relay, 465 is not supported: use 587 with STARTTLS), From and To
	// (required), Username and PasswordFile (optional, both or neither),
	// StartTLS (default true; false only for a relay on the same host or
	// network, since the password and alert text would cross it in clear).
	Host         string   `toml:"host"`
	Port         int      `toml:"port"`
	From         string   `toml:"from"`
	To           []string `toml:"to"`
	Username     string   `toml:"username"`
	PasswordFile string   `toml:"password_file" trust:"secret"`
	StartTLS     *bool    `toml:"starttls"`
	// CAFile (email, optional) is a PEM file of the certificates to trust
	// for the server's STARTTLS certificate instead of the system's roots:
	// for a relay with a private CA or a self-signed certificate.
	CAFile string `toml:"ca_file" trust:"config"`

	// Conditions limits the sink to these conditions (e.g. ["fatal",
	// "disk_free"] for a pager, everything to email); default: all.
	Conditions []string `toml:"conditions"`
	// Timeout bounds one delivery attempt. Default: 10s.
	Timeout time.Duration `toml:"timeout"`

	// Secrets read from the files at validation; never printed.
	routingKey string
	secret     []byte
	password   string
	rootCAs    *x509.CertPool // from CAFile; nil: the system's roots
}

// DefaultSinkConfig returns a sink table's defaults (the config reader
// fills each [[alerts.sink]] from it).
func DefaultSinkConfig() SinkConfig {
	return SinkConfig{Timeout: 10 * time.Second}
}

// String names the sink for logs: `pagerduty "oncall"`.
func (c *SinkConfig) String() string { return fmt.Sprintf("%s %q", c.Type, c.Name) }

// Wants reports whether the sink takes events of condition cond.
func (c *SinkConfig) Wants(cond string) bool {
	return len(c.Conditions) == 0 || cond == CondTest || slices.Contains(c.Conditions, cond)
}

// FieldError is a problem with one config key.
type FieldError struct {
	Key string // key path, like "alerts.sink[0].url"
	Msg string // what is wrong and what to do
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Field returns the key path and the message apart, so that the config
// file reader can put the key's line in front.
func (e *FieldError) Field() (key, msg string) { return e.Key, e.Msg }

type fieldErrors struct {
	prefix string
	errs   []error
}

// unique records that section[i] is named name, or says which earlier
// entry of section has that name already ("" is no name: never a clash).
func (fe *fieldErrors) unique(seen map[string]int, section string, i int, name string) {
	if name == "" {
		return
	}
	if j, dup := seen[name]; dup {
		fe.add(fmt.Sprintf("%s[%d].name", section, i), "%q is also the name of %s[%d]; names must be unique", name, section, j)
		return
	}
	seen[name] = i
}

func (fe *fieldErrors) add(key, format string, a ...any) {
	fe.errs = append(fe.errs, &FieldError{Key: fe.prefix + "." + key, Msg: fmt.Sprintf(format, a...)})
}

// Provision fills what the sinks leave to defaults (an email sink's port
// and starttls) and reads their secret and CA files, and the heartbeats'
// url_file, once, through read
// (trust.ReadFile's rule), so that a missing or unreadable one is
// reported before anything starts; it returns those problems, each a
// *FieldError whose key starts with prefix ("alerts"). Call it after
// decoding and before Validate.
func (c *Config) Provision(prefix string, read trust.Reader) []error {
	fe := &fieldErrors{prefix: prefix}
	for i := range c.Sinks {
		c.Sinks[i].provision(fe, fmt.Sprintf("sink[%d]", i), read)
	}
	for i := range c.Heartbeats {
		c.Heartbeats[i].provision(fe, fmt.Sprintf("heartbeat[%d]", i), read)
	}
	return fe.errs
}

// Validate returns every problem in c, each a *FieldError whose key starts
// with prefix ("alerts"). It reads nothing: Provision has read the files.
func (c *Config) Validate(prefix string) []error {
	fe := &fieldErrors{prefix: prefix}
	if c.Repeat < 0 {
		fe.add("repeat", "must not be negative (0 never repeats)")
	}
	if c.RetryFor <= 0 {
		fe.add("retry_for", "must be positive (example: \"10m\")")
	}
	if c.Settle < 0 {
		fe.add("settle", "must not be negative")
	}
	if c.CrashLoopRestarts < 1 {
		fe.add("crash_loop_restarts", "must be at least 1")
	}
	if c.CrashLoopWindow <= 0 {
		fe.add("crash_loop_window", "must be positive (example: \"10m\")")
	}
	if c.CheckInterval < time.Second {
		fe.add("check_interval", "must be at least 1s")
	}
	if c.TLSExpiresWithin <= 0 {
		fe.add("tls_expires_within", "must be positive (example: \"14d\")")
	}
	for _, k := range []struct{ key, v string }{{"memory_available_below", c.MemoryAvailableBelow}, {"disk_free_below", c.DiskFreeBelow}} {
		if _, err := logfile.ParseKeepFree(k.v); err != nil {
			fe.add(k.key, "%v", err)
		}
	}
	for i, p := range c.DiskPaths {
		if !strings.HasPrefix(p, "/") {
			fe.add(fmt.Sprintf("disk_paths[%d]", i), "%q must be an absolute path", p)
		}
	}
	names := map[string]int{}
	for i := range c.Sinks {
		s := &c.Sinks[i]
		key := fmt.Sprintf("sink[%d]", i)
		if s.Name == "" {
			fe.add(key+".name", "required: a name for this sink (e.g. \"oncall\")")
		} else {
			fe.unique(names, "sink", i, s.Name)
		}
		s.validate(fe, key)
	}
	rules := map[string]int{}
	for i := range c.LogRules {
		r := &c.LogRules[i]
		key := fmt.Sprintf("log_rule[%d]", i)
		fe.unique(rules, "log_rule", i, r.Name)
		r.validate(fe, key)
	}
	beats := map[string]int{}
	for i := range c.Heartbeats {
		h := &c.Heartbeats[i]
		key := fmt.Sprintf("heartbeat[%d]", i)
		fe.unique(beats, "heartbeat", i, h.Name)
		h.validate(fe, key)
	}
	return fe.errs
}

// applyRule is a type-specific key and the types it applies to.
type applyRule struct {
	key   string
	types []string
	set   func(*SinkConfig) bool
}

// applies lists the type-specific keys and the types they apply to.
var applies = []applyRule{
	{"url", []string{TypePagerDuty, TypeWebhook, TypeSlack}, func(s *SinkConfig) bool { return s.URL != "" }},
	{"routing_key", []string{TypePagerDuty}, func(s *SinkConfig) bool { return s.RoutingKey != "" }},
	{"routing_key_file", []string{TypePagerDuty}, func(s *SinkConfig) bool { return s.RoutingKeyFile != "" }},
	{"headers", []string{TypeWebhook}, func(s *SinkConfig) bool { return len(s.Headers) > 0 }},
	{"secret_file", []string{TypeWebhook}, func(s *SinkConfig) bool { return s.SecretFile != "" }},
	{"host", []string{TypeEmail}, func(s *SinkConfig) bool { return s.Host != "" }},
	{"port", []string{TypeEmail}, func(s *SinkConfig) bool { return s.Port != 0 }},
	{"from", []string{TypeEmail}, func(s *SinkConfig) bool { return s.From != "" }},
	{"to", []string{TypeEmail}, func(s *SinkConfig) bool { return len(s.To) > 0 }},
	{"username", []string{TypeEmail}, func(s *SinkConfig) bool { return s.Username != "" }},
	{"password_file", []string{TypeEmail}, func(s *SinkConfig) bool { return s.PasswordFile != "" }},
	{"starttls", []string{TypeEmail}, func(s *SinkConfig) bool { return s.StartTLS != nil }},
	{"ca_file", []string{TypeEmail}, func(s *SinkConfig) bool { return s.CAFile != "" }},
}

func (s *SinkConfig) validate(fe *fieldErrors, key string) {
	k := func(f string) string { return key + "." + f }
	types := []string{TypePagerDuty, TypeWebhook, TypeSlack, TypeEmail}
	if !slices.Contains(types, s.Type) {
		fe.add(k("type"), "%q is not a sink type (one of: %s)", s.Type, strings.Join(types, ", "))
		return
	}
	for _, a := range applies {
		if a.set(s) && !slices.Contains(a.types, s.Type) {
			fe.add(k(a.key), "does not apply to a %s sink (only to %s)", s.Type, strings.Join(a.types, ", "))
		}
	}
	if s.Timeout <= 0 {
		fe.add(k("timeout"), "must be positive (example: \"10s\")")
	}
	for i, c := range s.Conditions {
		if !slices.Contains(Conditions, c) {
			fe.add(fmt.Sprintf("%s[%d]", k("conditions"), i), "%q is not a condition (one of: %s)", c, strings.Join(Conditions, ", "))
		}
	}
	checkURL := func(required bool) {
		if s.URL == "" {
			if required {
				fe.add(k("url"), "required: the URL to POST alerts to")
			}
			return
		}
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fe.add(k("url"), "%q is not an http:// or https:// URL", s.URL)
		}
	}
	switch s.Type {
	case TypePagerDuty:
		checkURL(false)
		switch {
		case s.RoutingKey != "" && s.RoutingKeyFile != "":
			fe.add(k("routing_key"), "set routing_key or routing_key_file, not both")
		case s.RoutingKeyFile != "" || s.RoutingKey != "":
		default:
			fe.add(k("routing_key_file"), "required: a file holding the integration key of a PagerDuty service (Events API v2), or routing_key")
		}
	case TypeWebhook:
		checkURL(true)
		for h := range s.Headers {
			if h == "" || strings.ContainsAny(h, " :\r\n") {
				fe.add(k("headers"), "%q is not a header name", h)
			}
		}
	case TypeSlack:
		checkURL(true)
	case TypeEmail:
		if s.Host == "" {
			fe.add(k("host"), "required: the SMTP server's host name")
		}
		if s.Port < 1 || s.Port > 65535 {
			fe.add(k("port"), "%d is not a port", s.Port)
		} else if s.Port == 465 {
			fe.add(k("port"), "465 (implicit TLS) is not supported: use 587 with starttls")
		}
		if s.From == "" {
			fe.add(k("from"), "required: the sender address")
		} else if _, err := mail.ParseAddress(s.From); err != nil {
			fe.add(k("from"), "%q is not an email address", s.From)
		}
		if len(s.To) == 0 {
			fe.add(k("to"), "required: a list of recipient addresses")
		}
		for i, to := range s.To {
			if _, err := mail.ParseAddress(to); err != nil {
				fe.add(fmt.Sprintf("%s[%d]", k("to"), i), "%q is not an email address", to)
			}
		}
		if (s.Username == "") != (s.PasswordFile == "") {
			fe.add(k("password_file"), "username and password_file go together")
		}
		if s.CAFile != "" && s.StartTLS != nil && !*s.StartTLS {
			fe.add(k("ca_file"), "applies only with starttls = true")
		}
	}
}

// provision fills the sink's defaults and reads its files (Provision).
func (s *SinkConfig) provision(fe *fieldErrors, key string, read trust.Reader) {
	k := func(f string) string { return key + "." + f }
	applies := func(f string) bool {
		i := slices.IndexFunc(applies, func(a applyRule) bool { return a.key == f })
		return i >= 0 && slices.Contains(applies[i].types, s.Type)
	}
	secret := func(f, path string) string {
		if path == "" || !applies(f) {
			return ""
		}
		v, err := trust.ReadSecret(read, path)
		if err != nil {
			fe.add(k(f), "%v", err)
		}
		return v
	}
	s.routingKey = s.RoutingKey
	if s.RoutingKeyFile != "" && s.RoutingKey == "" {
		s.routingKey = secret("routing_key_file", s.RoutingKeyFile)
	}
	if v := secret("secret_file", s.SecretFile); v != "" {
		s.secret = []byte(v)
	}
	if s.Username != "" {
		s.password = secret("password_file", s.PasswordFile)
	}
	if s.Type != TypeEmail {
		return
	}
	if s.Port == 0 {
		s.Port = 587
	}
	if s.StartTLS == nil {
		t := true
		s.StartTLS = &t
	}
	if s.CAFile != "" {
		b, err := read(s.CAFile, trust.Config)
		if err != nil {
			fe.add(k("ca_file"), "%v", trust.Describe(s.CAFile, err))
		} else if pool := x509.NewCertPool(); !pool.AppendCertsFromPEM(b) {
			fe.add(k("ca_file"), "%q holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")", s.CAFile)
		} else {
			s.rootCAs = pool
		}
	}
}
