package alert

// The heartbeat: [[alerts.heartbeat]] pings an outside monitor while
// hostctl is alive, so that a host that died (powered off, a kernel
// panic, a network cut, hostctl hung) is noticed by someone else: the
// monitor alerts when the pings stop.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/supervisor/trust"
)

// Heartbeat is one [[alerts.heartbeat]] table: ping URL every Interval.
type Heartbeat struct {
	// Name identifies the heartbeat in logs, metrics and `hostctl
	// alerts`. Required, unique.
	Name string `toml:"name"`
	// Kind is the monitor's service, which gives the fail and start
	// forms of URL (see Kinds): "healthchecks", "cronitor",
	// "uptime_kuma", "betterstack", or "" (default) for any other
	// monitor, where FailURL and StartURL say what to send.
	Kind string `toml:"kind"`
	// URL is the monitor's ping URL (http:// or https://), as the service
	// shows it. It usually carries a secret token: hostctl shows only its
	// scheme and host. Required.
	URL string `toml:"url"`
	// URLFile holds the ping URL instead of URL, so that the token stays
	// out of a config file that others can read (the app's user, who
	// could otherwise ping the monitor from anywhere and hide a dead
	// host). Read once at load and at every reload.
	URLFile string `toml:"url_file" trust:"secret"`
	// Interval is the time between pings: the period set in the monitor
	// (which alerts after the period plus its grace time without a ping).
	// Required, at least 1s.
	Interval time.Duration `toml:"interval"`
	// Timeout bounds one ping (a monitor that does not answer in time is
	// a failed ping; the next one is still sent on schedule). At most
	// Interval. Default: 10s, or Interval if shorter.
	Timeout time.Duration `toml:"timeout"`
	// OnAlert is what is sent while a critical alert is active: "fail"
	// (the fail form: the monitor alerts at once) or "pause" (nothing:
	// the monitor alerts after its grace time). Default: "fail" when
	// there is a fail form, else "pause".
	OnAlert string `toml:"on_alert"`
	// FailURL and StartURL replace the kind's fail and start forms: a
	// whole http(s) URL, a path suffix appended to URL's path ("/fail"),
	// or query parameters set in URL's query ("?state=fail"). The start
	// form is sent once when hostctl starts, before the first ping.
	FailURL  string `toml:"fail_url"`
	StartURL string `toml:"start_url"`

	// Set by Validate: the URL of each form ("" when there is none).
	success, fail, start string
	failMsg              bool // set the fail form's "msg" to the alert (uptime_kuma)
}

// Heartbeat kinds: the services whose fail and start forms hostctl
// knows. Each was checked against the service's documentation:
//
//   - healthchecks: Healthchecks.io (and its self-hosted version). A ping
//     is a GET of the ping URL; "/fail" appended signals a failure;
//     "/start" appended signals a start
//     (https://healthchecks.io/docs/http_api/,
//     https://healthchecks.io/docs/signaling_failures/,
//     https://healthchecks.io/docs/measuring_script_run_time/).
//   - cronitor: Cronitor's Telemetry API: a heartbeat is a GET of
//     https://cronitor.link/p/API_KEY/MONITOR; "?state=fail" is a failure
//     that alerts at once, "?state=run" a start
//     (https://cronitor.io/docs/telemetry-api).
//   - uptime_kuma: an Uptime Kuma push monitor, /api/push/TOKEN:
//     "?status=up&msg=OK" is a success, "?status=down&msg=..." a failure
//     that marks it down at once; msg is shown in its history. There is
//     no start form (https://github.com/louislam/uptime-kuma/wiki/Internal-API,
//     push monitors; the URL the web interface shows already carries
//     "?status=up&msg=OK&ping=", whose status and msg hostctl replaces).
//   - betterstack: a Better Stack (Better Uptime) heartbeat,
//     https://uptime.betterstack.com/api/v1/heartbeat/TOKEN; "/fail"
//     appended reports a failure. There is no start form
//     (https://betterstack.com/docs/uptime/cron-and-heartbeat-monitor/).
const (
	KindHealthchecks = "healthchecks"
	KindCronitor     = "cronitor"
	KindUptimeKuma   = "uptime_kuma"
	KindBetterStack  = "betterstack"
)

// Kinds lists the heartbeat kinds, for config validation and docs.
var Kinds = []string{KindHealthchecks, KindCronitor, KindUptimeKuma, KindBetterStack}

// heartbeatForms are a kind's forms, written as FailURL and StartURL
// are; success "" is URL as given.
var heartbeatForms = map[string]struct{ success, fail, start string }{
	KindHealthchecks: {fail: "/fail", start: "/start"},
	KindCronitor:     {fail: "?state=fail", start: "?state=run"},
	KindUptimeKuma:   {success: "?status=up&msg=OK", fail: "?status=down&msg=critical+alert"},
	KindBetterStack:  {fail: "/fail"},
	"":               {},
}

// On-alert choices.
const (
	OnAlertFail  = "fail"
	OnAlertPause = "pause"
)

// Ping forms, as HeartbeatStatus.LastForm shows them.
const (
	FormSuccess = "success"
	FormFail    = "fail"
	FormStart   = "start"
	FormPaused  = "paused" // nothing sent: a critical alert is active and on_alert = "pause"
)

// MinHeartbeatInterval is the shortest interval a heartbeat may have.
const MinHeartbeatInterval = time.Second

// defaultHeartbeatTimeout is the timeout of a heartbeat without one,
// unless its interval is shorter.
const defaultHeartbeatTimeout = 10 * time.Second

// timeout is the bound of one ping.
func (h *Heartbeat) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return min(defaultHeartbeatTimeout, h.Interval)
}

// onAlert is OnAlert with its default.
func (h *Heartbeat) onAlert() string {
	switch {
	case h.OnAlert != "":
		return h.OnAlert
	case h.fail != "":
		return OnAlertFail
	}
	return OnAlertPause
}

// Where is URL without what may be secret: scheme and host only
// ("https://hc-ping.com/…").
func (h *Heartbeat) Where() string { return redactURL(h.URL) }

// redactURL keeps a URL's scheme and host: its path and query may carry
// a token.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(the configured url)"
	}
	s := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		s += "/…"
	}
	return s
}

// provision reads URLFile into URL (Config.Provision).
func (h *Heartbeat) provision(fe *fieldErrors, key string, read trust.Reader) {
	if h.URLFile == "" {
		return
	}
	if h.URL != "" {
		fe.add(key+".url_file", "set url or url_file, not both")
		return
	}
	v, err := trust.ReadSecret(read, h.URLFile)
	if err != nil {
		fe.add(key+".url_file", "%v", err)
		return
	}
	h.URL = v
}

// validate checks the heartbeat and resolves its forms. Its messages
// never quote the URL: it may carry a token.
func (h *Heartbeat) validate(fe *fieldErrors, key string) {
	k := func(f string) string { return key + "." + f }
	if h.Name == "" {
		fe.add(k("name"), "required: a name for this heartbeat (e.g. \"healthchecks\")")
	}
	forms, ok := heartbeatForms[h.Kind]
	if !ok {
		fe.add(k("kind"), "%q is not a heartbeat kind (one of: %s; or leave it out and set fail_url and start_url)", h.Kind, strings.Join(Kinds, ", "))
	}
	urlKey := "url"
	if h.URLFile != "" {
		urlKey = "url_file" // what it holds
	}
	base, err := parseHTTPURL(h.URL)
	switch {
	case h.URL == "" && h.URLFile == "":
		fe.add(k("url"), "required: the monitor's ping URL (e.g. \"https://hc-ping.com/UUID\"), or url_file, a file that holds it")
	case h.URL == "":
		// Provision could not read url_file, and said why.
	case err != nil:
		fe.add(k(urlKey), "%v", err)
	}
	switch {
	case h.Interval == 0:
		fe.add(k("interval"), "required: the time between pings, the period set in the monitor (e.g. \"1m\")")
	case h.Interval < MinHeartbeatInterval:
		fe.add(k("interval"), "%s is too short: at least %s", h.Interval, MinHeartbeatInterval)
	}
	switch {
	case h.Timeout < 0:
		fe.add(k("timeout"), "must not be negative (default: 10s, or the interval if shorter)")
	case h.Timeout > 0 && h.Interval > 0 && h.Timeout > h.Interval:
		fe.add(k("timeout"), "%s is longer than the interval (%s): a ping must end before the next one is due", h.Timeout, h.Interval)
	}
	if base == nil {
		return
	}
	form := func(field, spec, preset string) string {
		if spec == "" {
			spec = preset
		}
		if spec == "" {
			return ""
		}
		u, err := applyForm(base, spec)
		if err != nil {
			fe.add(k(field), "%v", err)
			return ""
		}
		return u
	}
	h.success = form("url", "", forms.success)
	if h.success == "" {
		h.success = h.URL
	}
	h.fail = form("fail_url", h.FailURL, forms.fail)
	h.start = form("start_url", h.StartURL, forms.start)
	h.failMsg = h.Kind == KindUptimeKuma && h.FailURL == ""
	switch h.OnAlert {
	case "", OnAlertPause:
	case OnAlertFail:
		if h.fail == "" {
			what := "this heartbeat has no kind"
			if h.Kind != "" {
				what = fmt.Sprintf("kind %q has no fail form", h.Kind)
			}
			fe.add(k("on_alert"), "%q needs a fail form and %s: set fail_url, or on_alert = \"pause\"", h.OnAlert, what)
		}
	default:
		fe.add(k("on_alert"), "%q is not fail or pause", h.OnAlert)
	}
}

// parseHTTPURL parses an http(s) URL with a host; its error never quotes
// the URL.
func parseHTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL (check its spelling; the URL is not shown here since it may carry a token)")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		if u.Scheme == "" {
			return nil, errors.New("must be an http:// or https:// URL (it has no scheme)")
		}
		return nil, fmt.Errorf("must be an http:// or https:// URL, not %s://", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("must be an http:// or https:// URL with a host")
	}
	if u.User != nil {
		return nil, errors.New("must not carry a user or password (user@host): put the token where the service says")
	}
	return u, nil
}

// applyForm turns a form ("https://...", "/fail", "?state=fail") into a
// URL from base.
func applyForm(base *url.URL, spec string) (string, error) {
	switch {
	case strings.HasPrefix(spec, "http://"), strings.HasPrefix(spec, "https://"):
		u, err := parseHTTPURL(spec)
		if err != nil {
			return "", err
		}
		return u.String(), nil
	case strings.HasPrefix(spec, "/"):
		u := *base
		u.Path = strings.TrimSuffix(u.Path, "/") + spec
		u.RawPath = ""
		return u.String(), nil
	case strings.HasPrefix(spec, "?"):
		set, err := url.ParseQuery(spec[1:])
		if err != nil {
			return "", errors.New("bad query parameters after \"?\" (not shown here: they may carry a token)")
		}
		u := *base
		q := u.Query()
		for name, vs := range set {
			q[name] = vs
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	what := fmt.Sprintf("%q", spec)
	if scheme, _, ok := strings.Cut(spec, "://"); ok {
		what = "a " + scheme + ":// URL" // the rest may carry a token
	}
	return "", fmt.Errorf("%s is not an http(s) URL, a path suffix (\"/fail\") or query parameters (\"?state=fail\")", what)
}

// HeartbeatStatus is one heartbeat as `hostctl alerts` and GET
// /v1/alerts show it.
type HeartbeatStatus struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
	// Where is the URL's scheme and host: never its path or query.
	Where    string        `json:"where"`
	Interval time.Duration `json:"interval"`
	OnAlert  string        `json:"on_alert"`
	// LastPing is when the last ping was sent (or skipped: LastForm
	// "paused"); zero before the first.
	LastPing time.Time `json:"last_ping,omitzero"`
	// LastForm is what it sent: success, fail, start, or paused (nothing
	// sent).
	LastForm string `json:"last_form,omitempty"`
	// LastError is the last ping's error, "" when it got through.
	LastError string `json:"last_error,omitempty"`
	// NextDue is when the next ping is due.
	NextDue time.Time `json:"next_due,omitzero"`
	// Sent and Failed count pings since hostctl started (the start form
	// included); Failed are those the monitor did not take.
	Sent   uint64 `json:"sent"`
	Failed uint64 `json:"failed"`
}

// heartbeatLogEvery is how often a heartbeat that keeps failing logs it:
// the first failure at once, then at most one line per this, with the
// count of failures since.
const heartbeatLogEvery = 10 * time.Minute

// beat is one heartbeat's goroutine and its status. The goroutine owns
// the schedule; the status is what others read.
type beat struct {
	cfg    Heartbeat
	log    *zap.Logger
	client *http.Client
	// secrets are kept out of every error: the forms' URLs, paths and
	// queries.
	secrets []string
	// critical reports whether a critical alert is active, and the
	// summary of the oldest.
	critical func() (bool, string)

	stop chan struct{} // closed to stop the goroutine (a reload replaced it, Close)
	done chan struct{}

	sent, failed atomic.Uint64
	mu           sync.Mutex // guards st
	st           HeartbeatStatus

	// Owned by the goroutine: rate-limited logging of failures.
	lastLog    time.Time
	suppressed int
	failing    bool
}

func newBeat(cfg Heartbeat, log *zap.Logger, critical func() (bool, string)) *beat {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	b := &beat{
		cfg: cfg,
		log: log.With(zap.String("heartbeat", cfg.Name), zap.String("where", cfg.Where())),
		client: &http.Client{
			Transport: tr,
			// A redirect would send the token to a place nobody
			// configured; it is an error that says to set the final URL.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		critical: critical,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		st:       HeartbeatStatus{Name: cfg.Name, Kind: cfg.Kind, Where: cfg.Where(), Interval: cfg.Interval, OnAlert: cfg.onAlert()},
	}
	for _, raw := range []string{cfg.URL, cfg.success, cfg.fail, cfg.start} {
		if raw == "" {
			continue
		}
		b.secrets = append(b.secrets, raw)
		if u, err := url.Parse(raw); err == nil {
			if len(u.Path) > 1 {
				b.secrets = append(b.secrets, u.Path, u.EscapedPath())
			}
			if u.RawQuery != "" {
				b.secrets = append(b.secrets, u.RawQuery)
			}
		}
	}
	// Longest first: a path is replaced whole, not after a prefix of it.
	slices.SortFunc(b.secrets, func(a, b string) int { return len(b) - len(a) })
	return b
}

// status returns a copy of the heartbeat's status.
func (b *beat) status() HeartbeatStatus {
	b.mu.Lock()
	st := b.st
	b.mu.Unlock()
	st.Sent, st.Failed = b.sent.Load(), b.failed.Load()
	return st
}

// nextDue is when the next ping is due (zero before the goroutine set it).
func (b *beat) nextDue() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st.NextDue
}

// run sends the pings until stop: the start form first when start is
// set (hostctl has just started; if the monitor does not take it, as
// right after a reboot when the network is not up yet, it is sent again
// before each ping until it does), then a ping at first and every
// Interval after. A ping never takes longer than the timeout (at most
// the interval), so the schedule holds whatever the monitor does; pings
// missed while hostctl could not run (stopped, suspended) are not made
// up: the next one is sent at once, then every Interval.
func (b *beat) run(first time.Time, start bool) {
	defer close(b.done)
	pendingStart := start && b.cfg.start != ""
	if pendingStart {
		pendingStart = !b.ping(FormStart, b.cfg.start)
	}
	due := first
	for {
		b.mu.Lock()
		b.st.NextDue = due
		b.mu.Unlock()
		t := time.NewTimer(time.Until(due))
		select {
		case <-b.stop:
			t.Stop()
			return
		case <-t.C:
		}
		if pendingStart {
			pendingStart = !b.ping(FormStart, b.cfg.start)
		}
		b.beat()
		now := time.Now()
		if due = due.Add(b.cfg.Interval); !due.After(now) {
			due = now.Add(b.cfg.Interval)
		}
	}
}

// beat sends the form that fits: fail (or nothing) while a critical
// alert is active, success otherwise.
func (b *beat) beat() {
	crit, summary := b.critical()
	switch {
	case !crit:
		b.ping(FormSuccess, b.cfg.success)
	case b.cfg.onAlert() == OnAlertPause:
		b.mu.Lock()
		b.st.LastPing, b.st.LastForm, b.st.LastError = time.Now(), FormPaused, ""
		b.mu.Unlock()
	default:
		u := b.cfg.fail
		if b.cfg.failMsg {
			u = withMsg(u, "critical alert: "+summary)
		}
		b.ping(FormFail, u)
	}
}

// withMsg sets the query parameter msg of raw (Uptime Kuma shows it).
func withMsg(raw, msg string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set("msg", cut(msg, 200))
	u.RawQuery = q.Encode()
	return u.String()
}

// ping sends one GET of u (form), bounded by the timeout and by stop,
// and reports whether the monitor took it.
func (b *beat) ping(form, u string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.timeout())
	defer cancel()
	go func() {
		select {
		case <-b.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	at := time.Now()
	err := b.get(ctx, u)
	b.mu.Lock()
	b.st.LastPing, b.st.LastForm = at, form
	if err != nil {
		b.st.LastError = err.Error()
	} else {
		b.st.LastError = ""
	}
	b.mu.Unlock()
	if err == nil {
		b.sent.Add(1)
		if b.failing {
			b.log.Info("heartbeat: pings get through again", zap.String("form", form))
		}
		b.failing, b.suppressed, b.lastLog = false, 0, time.Time{}
		b.log.Debug("heartbeat: sent", zap.String("form", form))
		return true
	}
	select {
	case <-b.stop:
		return false // stopped by a reload or Close: not the monitor's fault
	default:
	}
	b.failed.Add(1)
	b.failing = true
	if !b.lastLog.IsZero() && time.Since(b.lastLog) < heartbeatLogEvery {
		b.suppressed++
		return false
	}
	fields := []zap.Field{zap.String("form", form), zap.Error(err)}
	if b.suppressed > 0 {
		fields = append(fields, zap.Int("failed_since_last_line", b.suppressed))
	}
	b.log.Warn("heartbeat: ping failed (the next one is still sent on schedule; failures are logged at most every "+heartbeatLogEvery.String()+")", fields...)
	b.lastLog, b.suppressed = time.Now(), 0
	return false
}

// get sends one GET; any 2xx is success.
func (b *beat) get(ctx context.Context, u string) error {
	where := "GET " + redactURL(u)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%s: cannot build the request (check url)", where)
	}
	req.Header.Set("User-Agent", "hostctl")
	resp, err := b.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: no answer within %s", where, b.cfg.timeout())
		}
		// *url.Error repeats the whole URL: keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s: %s", where, b.redact(err.Error()))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return httpStatusError(where, resp, b.quote(answer))
}

func (b *beat) redact(s string) string {
	for _, sec := range b.secrets {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	return s
}

// quote is httpPoster.quote with the heartbeat's secrets.
func (b *beat) quote(answer []byte) string {
	p := httpPoster{secrets: b.secrets}
	return p.quote(answer)
}
