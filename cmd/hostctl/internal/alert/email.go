package alert

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// email sends each event as a plain-text mail through an SMTP server:
// STARTTLS (required unless starttls = false), then AUTH PLAIN when a
// username is set.
type email struct {
	host     string
	port     int
	from     *mail.Address
	to       []*mail.Address
	username string
	password string
	startTLS bool
	rootCAs  *x509.CertPool
	now      func() time.Time
}

func newEmail(c SinkConfig) (*email, error) {
	if c.Host == "" || c.Port == 0 || c.StartTLS == nil {
		return nil, errors.New(c.String() + ": host, port or starttls not set (the config was not validated)")
	}
	e := &email{host: c.Host, port: c.Port, username: c.Username, password: c.password,
		startTLS: *c.StartTLS, rootCAs: c.rootCAs, now: time.Now}
	var err error
	if e.from, err = mail.ParseAddress(c.From); err != nil {
		return nil, fmt.Errorf("%s: from: %w", c.String(), err)
	}
	for _, t := range c.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("%s: to: %w", c.String(), err)
		}
		e.to = append(e.to, a)
	}
	return e, nil
}

// Send delivers ev in one SMTP session. An SMTP answer 5xx (a rejected
// recipient, bad credentials, a message refused) and a server without
// STARTTLS when starttls = true are permanent; 4xx answers and network
// trouble are worth retrying. When some recipients are refused, the
// others still get the mail and the error names the refused ones.
func (e *email) Send(ctx context.Context, ev Event) error {
	msg, err := e.message(ev)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(e.host, strconv.Itoa(e.port))
	where := "smtp " + addr
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// A cancel without a deadline ends the session too.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	fail := func(step string, err error) error {
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("%s: %s: no answer in time: %w", where, step, err)
		}
		var te *textproto.Error
		if errors.As(err, &te) {
			err = fmt.Errorf("%s: %s: the server answered %d %s", where, step, te.Code, cut(te.Msg, maxAnswer))
			if te.Code >= 500 {
				return permanent(err)
			}
			return err
		}
		var ce *tls.CertificateVerificationError
		if errors.As(err, &ce) {
			// Retrying cannot make a certificate trusted.
			return permanent(fmt.Errorf("%s: %s: %w (set ca_file to the relay's CA)", where, step, err))
		}
		return fmt.Errorf("%s: %s: %w", where, step, err)
	}

	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		return fail("greeting", err)
	}
	defer c.Close()
	if err := c.Hello(heloName(ev.Host)); err != nil {
		return fail("EHLO", err)
	}
	tlsOn := false
	if e.startTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return permanent(fmt.Errorf("%s does not offer STARTTLS, and starttls = true: not sending in clear text "+
				"(use the server's submission port, usually 587, or set starttls = false for a relay on this host or network)", where))
		}
		cfg := &tls.Config{ServerName: e.host, RootCAs: e.rootCAs, MinVersion: tls.VersionTLS12}
		if err := c.StartTLS(cfg); err != nil {
			return fail("STARTTLS", err)
		}
		tlsOn = true
	}
	if e.username != "" {
		if !tlsOn && !isLocalhost(e.host) {
			return permanent(fmt.Errorf("%s: not sending the password without TLS: set starttls = true", where))
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return permanent(fmt.Errorf("%s does not offer AUTH, but username is set (remove username and password_file, or use the submission port)", where))
		}
		if err := c.Auth(smtp.PlainAuth("", e.username, e.password, e.host)); err != nil {
			return fail(fmt.Sprintf("AUTH PLAIN as %q", e.username), err)
		}
	}
	if err := c.Mail(e.from.Address); err != nil {
		return fail("MAIL FROM", err)
	}
	var refused []string
	for _, to := range e.to {
		if err := c.Rcpt(to.Address); err != nil {
			err = fail(fmt.Sprintf("RCPT TO %s", to.Address), err)
			if !IsPermanent(err) {
				return err
			}
			refused = append(refused, err.Error())
		}
	}
	if len(refused) == len(e.to) {
		return permanent(fmt.Errorf("every recipient refused: %s", strings.Join(refused, "; ")))
	}
	w, err := c.Data()
	if err != nil {
		return fail("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fail("DATA", err)
	}
	if err := w.Close(); err != nil {
		return fail("end of DATA", err)
	}
	c.Quit() // the mail is accepted; a failed QUIT changes nothing
	if len(refused) > 0 {
		return permanent(fmt.Errorf("sent, but some recipients were refused: %s", strings.Join(refused, "; ")))
	}
	return nil
}

func isLocalhost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// heloName is the name hostctl gives in EHLO: the host name when it is a
// valid one, else "localhost".
func heloName(h string) string {
	if h == "" || strings.ContainsFunc(h, func(r rune) bool {
		return !(r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) {
		return "localhost"
	}
	return h
}

// maxSubject is roughly where mail clients cut a subject anyway.
const maxSubject = 150

// subject is "[hostctl HOST] TRIGGER: summary" or, for a resolve, how it
// cleared ("[hostctl HOST] RESOLVED: gunicorn is RUNNING again (was:
// gunicorn is FATAL ...)"), on one line: "RESOLVED: gunicorn is FATAL"
// read as if it still were.
func subject(ev Event) string {
	what, text := "TRIGGER", ev.Alert.Summary // a repeat too: mail filters match on it; the body says it is a reminder
	if ev.Action == Resolve {
		what = "RESOLVED"
		if ev.ResolveSummary != "" {
			text = ev.ResolveSummary + " (was: " + ev.Alert.Summary + ")"
		}
	}
	s := fmt.Sprintf("[hostctl %s] %s: %s", ev.Host, what, text)
	return cut(strings.Join(strings.Fields(s), " "), maxSubject)
}

// message is the whole mail, headers and quoted-printable body, with CRLF
// line ends.
func (e *email) message(ev Event) ([]byte, error) {
	var b bytes.Buffer
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("Date", e.now().Format(time.RFC1123Z))
	hdr("From", e.from.String())
	tos := make([]string, len(e.to))
	for i, a := range e.to {
		tos[i] = a.String()
	}
	hdr("To", strings.Join(tos, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", subject(ev)))
	hdr("Message-ID", messageID(heloName(ev.Host)))
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(emailBody(ev))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func messageID(host string) string {
	r := make([]byte, 8)
	rand.Read(r)
	return fmt.Sprintf("<%d.%s@%s>", time.Now().UnixNano(), hex.EncodeToString(r), host)
}

// emailBody is the text for a person woken up by it: what broke, where,
// since when, the facts, the log, and what to type.
func emailBody(ev Event) string {
	a := ev.Alert
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	local := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") }
	if ev.Action == Resolve {
		p("RESOLVED: %s\n\n", a.Summary)
		if ev.ResolveSummary != "" {
			p("How it cleared: %s\n", ev.ResolveSummary)
		}
		p("Host:           %s\n", ev.Host)
		if !a.Since.IsZero() {
			p("Lasted:         %s (from %s to %s)\n", ago(ev.Time.Sub(a.Since)), local(a.Since), local(ev.Time))
		}
		p("\nNothing to do; this ends the alert sent at %s.\n", local(a.Since))
	} else {
		p("%s\n\n", a.Summary)
		if ev.Repeat {
			p("This is a reminder: the problem still lasts (notice %d).\n\n", a.Notified)
		}
		p("Host:     %s\n", ev.Host)
		if a.Program != "" {
			p("Program:  %s\n", a.Program)
		}
		if !a.Since.IsZero() {
			p("Since:    %s (%s ago)\n", local(a.Since), ago(ev.Time.Sub(a.Since)))
		}
		p("Severity: %s\n", a.Severity)
		if len(a.Details) > 0 {
			p("\nDetails:\n")
			for _, k := range slices.Sorted(maps.Keys(a.Details)) {
				p("  %s: %v\n", k, a.Details[k])
			}
		}
		if len(a.LastLines) > 0 {
			p("\nLast log lines:\n")
			for _, l := range a.LastLines {
				p("    %s\n", l)
			}
		}
		if a.Command != "" {
			p("\nWhat to do:\n  %s\n", a.Command)
		}
	}
	p("\n-- \nhostctl on %s; alert %s (%s)\n", ev.Host, a.Key, a.Condition)
	return b.String()
}

// ago rounds d for a person: "45s", "12m", "3h12m", "2d4h".
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}
