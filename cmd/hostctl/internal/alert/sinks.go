package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// newSink returns the Sink for c, which must have passed Config.Validate
// (it reads the secret files into c).
func newSink(c SinkConfig) (Sink, error) {
	switch c.Type {
	case TypePagerDuty:
		return newPagerDuty(c)
	case TypeWebhook:
		return newWebhook(c)
	case TypeSlack:
		return newSlack(c)
	case TypeEmail:
		return newEmail(c)
	}
	return nil, fmt.Errorf("%s: unknown sink type %q", c.String(), c.Type)
}

// permanentError marks a failure that retrying cannot fix: the receiver
// refused the event (bad key, bad request, rejected recipient) or the
// configuration cannot work (no STARTTLS offered).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent marks err as not worth retrying; nil stays nil.
func permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err (or an error it wraps) was marked by a
// sink as one that retrying cannot fix. Any other error may go away on a
// retry (connection refused, timeout, 429, 5xx).
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// maxAnswer is how much of a receiver's answer body an error quotes.
const maxAnswer = 200

// httpPoster is what the HTTP sinks share: one client that follows no
// redirect (a redirect would resend the alert, and its secret, to a place
// nobody configured) and the secrets to keep out of every error.
type httpPoster struct {
	url     string
	client  *http.Client
	secrets []string // never in an error: redacted from the receiver's answer
}

func newHTTPPoster(rawURL string, secrets ...string) *httpPoster {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	p := &httpPoster{
		url: rawURL,
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	// The URL itself can be a secret (a Slack webhook's path is its
	// token), so only its scheme and host appear in errors.
	p.secrets = append(p.secrets, rawURL)
	if u, err := url.Parse(rawURL); err == nil {
		if u.RawQuery != "" {
			p.secrets = append(p.secrets, u.RawQuery)
		}
		if len(u.Path) > 1 {
			p.secrets = append(p.secrets, u.Path)
		}
	}
	for _, s := range secrets {
		// Shorter values ("1", "yes") are no secret, and replacing them
		// would garble the answer.
		if len(s) >= 4 {
			p.secrets = append(p.secrets, s)
		}
	}
	return p
}

// where names the receiver in errors: scheme and host, never the path or
// query, which may carry a token.
func (p *httpPoster) where() string {
	u, err := url.Parse(p.url)
	if err != nil || u.Host == "" {
		return "the configured url"
	}
	return u.Scheme + "://" + u.Host
}

// post sends body as JSON with the extra headers and returns the answer's
// body (at most 4 KiB) after a 2xx status. Any other answer is an error
// that gives the status and the start of the body; see httpStatusError for
// which are permanent.
func (p *httpPoster) post(ctx context.Context, body []byte, header http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return nil, permanent(fmt.Errorf("POST to %s: cannot build the request (check url)", p.where()))
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hostctl")
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("POST to %s: no answer in time (%v)", p.where(), context.Cause(ctx))
		}
		// *url.Error repeats the whole URL: keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("POST to %s: %s", p.where(), p.redact(err.Error()))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return answer, nil
	}
	return answer, httpStatusError(fmt.Sprintf("POST to %s", p.where()), resp, p.quote(answer))
}

// httpStatusError says what the receiver answered and whether a retry may
// help: 408, 425, 429 and 5xx may pass later; a redirect (not followed)
// and every other 4xx (400, 401, 403, 404, 410, 413, 422 ...) mean the
// request or the configuration is wrong, so they are permanent.
func httpStatusError(what string, resp *http.Response, quoted string) error {
	msg := fmt.Sprintf("%s: the receiver answered %s", what, resp.Status)
	if quoted != "" {
		msg += ": " + quoted
	}
	switch code := resp.StatusCode; {
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500:
		return errors.New(msg)
	case code >= 300 && code < 400:
		return permanent(errors.New(msg + " (a redirect, not followed: set url to the final address)"))
	default:
		return permanent(errors.New(msg))
	}
}

// quote returns up to maxAnswer bytes of a receiver's answer as one
// quoted line, with any secret the receiver echoed replaced.
func (p *httpPoster) quote(answer []byte) string {
	s := strings.TrimSpace(string(answer))
	if s == "" {
		return ""
	}
	s = p.redact(s)
	if len(s) > maxAnswer {
		cut := maxAnswer
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return fmt.Sprintf("%q", s)
}

func (p *httpPoster) redact(s string) string {
	for _, sec := range p.secrets {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	return s
}

// cut shortens s to at most n runes, ending in "…" when it was longer.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
