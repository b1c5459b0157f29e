package alert

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The webhook's signature headers (sent when the sink has a secret_file).
const (
	SignatureHeader = "X-Hostctl-Signature"
	TimestampHeader = "X-Hostctl-Timestamp"
)

// MaxSignatureAge is how far VerifySignature lets X-Hostctl-Timestamp be
// from the receiver's clock, either way. Every delivery attempt, retries
// included, is signed afresh, so a genuine request is never older than the
// network delay plus clock skew.
const MaxSignatureAge = 5 * time.Minute

// webhook POSTs every event as JSON to a URL of the user's choice. The
// body is an interface: receivers parse it, so fields are only ever added.
//
//	{
//	  "action":          "trigger" or "resolve",
//	  "key":             the alert's key ("fatal:gunicorn"), stable per condition and subject,
//	  "dedup_key":       "HOST/KEY": the same for a trigger, its repeats and its resolve,
//	  "condition":       "fatal", "disk_free", ... (see Conditions),
//	  "program":         the program's name; absent when the alert is about the host,
//	  "severity":        "critical", "error", "warning" or "info",
//	  "summary":         one line for a person,
//	  "host":            the host name,
//	  "time":            when the event happened (RFC 3339, nanoseconds, UTC),
//	  "since":           when the alert was triggered (same format),
//	  "repeat":          true for a reminder of an alert that still lasts,
//	  "details":         an object of extra facts (may be empty),
//	  "last_lines":      the last lines of the program's log (may be empty),
//	  "command":         what to type to look closer or fix it (may be ""),
//	  "resolve_summary": how it cleared; only with "action": "resolve"
//	}
//
// With a secret_file, each request also carries
//
//	X-Hostctl-Timestamp: 1718000000                (unix seconds when it was signed)
//	X-Hostctl-Signature: sha256=HEX
//
// where HEX is the lower-case hex HMAC-SHA256, keyed with the secret, of
// the timestamp's decimal digits, one ".", and the exact body bytes
// ("1718000000.{...}"). Because the timestamp is signed, a receiver that
// rejects old timestamps (VerifySignature allows MaxSignatureAge) cannot
// be fed a recorded request again later. Receivers must compute the HMAC
// over the raw body as received, before any JSON parsing.
type webhook struct {
	http    *httpPoster
	headers http.Header
	secret  []byte
	now     func() time.Time
}

func newWebhook(c SinkConfig) (*webhook, error) {
	if c.URL == "" {
		return nil, errors.New(c.String() + ": no url")
	}
	h := http.Header{}
	var secrets []string
	for k, v := range c.Headers {
		h.Set(k, v)
		secrets = append(secrets, v)
	}
	secrets = append(secrets, string(c.secret))
	return &webhook{http: newHTTPPoster(c.URL, secrets...), headers: h, secret: c.secret, now: time.Now}, nil
}

type webhookBody struct {
	Action         Action         `json:"action"`
	Key            string         `json:"key"`
	DedupKey       string         `json:"dedup_key"`
	Condition      string         `json:"condition"`
	Program        string         `json:"program,omitempty"`
	Severity       Severity       `json:"severity"`
	Summary        string         `json:"summary"`
	Host           string         `json:"host"`
	Time           string         `json:"time"`
	Since          string         `json:"since"`
	Repeat         bool           `json:"repeat"`
	Details        map[string]any `json:"details"`
	LastLines      []string       `json:"last_lines"`
	Command        string         `json:"command"`
	ResolveSummary string         `json:"resolve_summary,omitempty"`
}

func webhookPayload(ev Event) ([]byte, error) {
	a := ev.Alert
	b := webhookBody{
		Action:    ev.Action,
		Key:       a.Key,
		DedupKey:  ev.DedupKey(),
		Condition: a.Condition,
		Program:   a.Program,
		Severity:  a.Severity,
		Summary:   a.Summary,
		Host:      ev.Host,
		Time:      ev.Time.UTC().Format(time.RFC3339Nano),
		Since:     a.Since.UTC().Format(time.RFC3339Nano),
		Repeat:    ev.Repeat,
		Details:   a.Details,
		LastLines: a.LastLines,
		Command:   a.Command,
	}
	if b.Details == nil {
		b.Details = map[string]any{}
	}
	if b.LastLines == nil {
		b.LastLines = []string{}
	}
	if ev.Action == Resolve {
		b.ResolveSummary = ev.ResolveSummary
	}
	out, err := json.Marshal(b)
	if err != nil {
		return nil, permanent(fmt.Errorf("webhook: encoding the event: %w", err))
	}
	return out, nil
}

// Send posts ev; any 2xx is success. See httpStatusError for which other
// answers are permanent.
func (w *webhook) Send(ctx context.Context, ev Event) error {
	body, err := webhookPayload(ev)
	if err != nil {
		return err
	}
	h := w.headers.Clone()
	if len(w.secret) > 0 {
		ts := strconv.FormatInt(w.now().Unix(), 10)
		h.Set(TimestampHeader, ts)
		h.Set(SignatureHeader, "sha256="+hex.EncodeToString(signature(w.secret, ts, body)))
	}
	_, err = w.http.post(ctx, body, h)
	return err
}

func signature(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature checks a webhook request from hostctl: header's
// X-Hostctl-Signature must be the HMAC-SHA256 with secret of
// X-Hostctl-Timestamp, ".", and body (the raw request body), and the
// timestamp must be within MaxSignatureAge of now. It returns nil when the
// request is genuine and fresh.
func VerifySignature(secret, body []byte, header http.Header) error {
	return verifySignature(secret, body, header, time.Now())
}

func verifySignature(secret, body []byte, header http.Header, now time.Time) error {
	if len(secret) == 0 {
		return errors.New("no secret to verify with")
	}
	ts := header.Get(TimestampHeader)
	sig := header.Get(SignatureHeader)
	if ts == "" || sig == "" {
		return fmt.Errorf("missing %s or %s header", SignatureHeader, TimestampHeader)
	}
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return fmt.Errorf("%s does not start with \"sha256=\"", SignatureHeader)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%s is not hex", SignatureHeader)
	}
	if !hmac.Equal(got, signature(secret, ts, body)) {
		return errors.New("signature does not match (wrong secret, or the body or timestamp was changed)")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%s %q is not unix seconds", TimestampHeader, ts)
	}
	if age := now.Sub(time.Unix(sec, 0)); age > MaxSignatureAge || age < -MaxSignatureAge {
		return fmt.Errorf("%s is %v away from now (more than %v): a replayed or delayed request, or a clock off", TimestampHeader, age.Round(time.Second), MaxSignatureAge)
	}
	return nil
}
