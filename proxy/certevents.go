package proxy

import (
	"time"

	"go.uber.org/zap/zapcore"
)

// Certificate outcomes come from the log entries CertMagic writes when an
// attempt to obtain or renew a certificate ends (certmagic v0.25.6
// config.go, Config.obtainCert and Config.renewCert). Caddy's log core
// for the Proxy (logCore, logging.go) sees them on the goroutine that
// manages the certificate, whatever level Options.Logger keeps:
//
//	logger "tls.obtain" or "tls.renew" (Caddy's "tls" logger, named by CertMagic)
//	  "certificate obtained successfully"     identifier, issuer
//	  "certificate renewed successfully"      identifier, issuer
//	  "could not get certificate from issuer" identifier, issuer, error
//
// hostctl configures one issuer per automation policy, so the third is
// one per failed attempt; CertMagic retries on its own with growing
// intervals (up to 30 days for an obtain).
//
// The same outcomes are Caddy events ("cert_obtained", "cert_failed", with
// identifier, renewal, error, issuers), but subscribing to them from
// Caddy's events app is racy in Caddy 2.11.9: the app adds configured
// subscriptions in Start while a certificate goroutine, started by the
// http app when it starts first, reads them in ShouldEmit; and Emit calls
// the TLS app's value-receiver CaddyModule, copying the app's struct while
// TLS.Start still writes it. Apps start in map order; with a handler
// subscribed that way, go test -race reported one or the other in 8 of 9
// runs of TestCertEventFailed.

// CertEvent is the outcome of one attempt to obtain or renew a certificate,
// from an ACME server (tls = "auto") or the local CA (tls = "internal").
type CertEvent struct {
	// Name is the host name the certificate is for (CertMagic's identifier).
	Name string
	// Renewal is true when an existing certificate was being renewed,
	// false for a first obtain.
	Renewal bool
	// Obtained is true when the certificate was issued and stored; false
	// when the attempt failed (Caddy retries on its own, with growing
	// intervals, and reports each failed attempt).
	Obtained bool
	// Error is why the attempt failed, as the issuer said it (for ACME,
	// often the server's problem document); empty when Obtained.
	Error string
	// Time is when the attempt ended.
	Time time.Time
}

// Messages and logger names of the log entries that become CertEvents.
const (
	certLogObtain   = "tls.obtain"
	certLogRenew    = "tls.renew"
	certMsgObtained = "certificate obtained successfully"
	certMsgRenewed  = "certificate renewed successfully"
	certMsgFailed   = "could not get certificate from issuer"
)

// isCertEntry reports whether e (with Caddy's logger name, before
// logCore adds "caddy.") is a certificate outcome.
func isCertEntry(e zapcore.Entry) bool {
	switch e.LoggerName {
	case certLogObtain:
		return e.Message == certMsgObtained || e.Message == certMsgFailed
	case certLogRenew:
		return e.Message == certMsgRenewed || e.Message == certMsgFailed
	}
	return false
}

// certEventOf converts an entry that isCertEntry accepted, with its fields.
func certEventOf(e zapcore.Entry, fields []zapcore.Field) CertEvent {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	ev := CertEvent{
		Renewal:  e.LoggerName == certLogRenew,
		Obtained: e.Message != certMsgFailed,
		Time:     e.Time,
	}
	ev.Name, _ = enc.Fields["identifier"].(string)
	if !ev.Obtained {
		ev.Error, _ = enc.Fields["error"].(string)
		if ev.Error == "" {
			ev.Error = "unknown error"
		}
	}
	return ev
}

// certCore is added to the checked entries that are certificate outcomes:
// its Write passes them to OnCertEvent.
type certCore struct {
	onCert func(CertEvent)
}

func (c certCore) Enabled(zapcore.Level) bool        { return true }
func (c certCore) With([]zapcore.Field) zapcore.Core { return c }
func (c certCore) Sync() error                       { return nil }

func (c certCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(e, c)
}

func (c certCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	c.onCert(certEventOf(e, fields))
	return nil
}

var _ zapcore.Core = certCore{}
