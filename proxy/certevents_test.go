package proxy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestCertEventFailed points acme_ca at a closed port on 127.0.0.1: the
// first obtain fails at once, and OnCertEvent hears of it with the host
// name and the error. A second Proxy started after the first stops gets
// its own events, and the first none of them.
func TestCertEventFailed(t *testing.T) {
	up := newUpstream(t, nil)
	closed := freeAddr(t)
	cfg := Config{
		Listen: freeAddr(t), ListenTLS: freeAddr(t), Hosts: []string{acmeHost}, Upstream: up.addr,
		ACMECA: "https://" + closed + "/directory",
	}
	checkFailed := func(t *testing.T, certs <-chan CertEvent, since time.Time) {
		t.Helper()
		ev := waitCertEvent(t, certs, time.Minute, "failed", func(e CertEvent) bool { return !e.Obtained })
		t.Logf("failed event: %+v", ev)
		if ev.Name != acmeHost || ev.Renewal || ev.Time.Before(since) || ev.Time.After(time.Now()) {
			t.Errorf("OnCertEvent got %+v; want %s failed, not a renewal, at a time since Apply", ev, acmeHost)
		}
		if !strings.Contains(ev.Error, closed) || !strings.Contains(ev.Error, "connection refused") {
			t.Errorf("event error %q; want it to name %s and say connection refused", ev.Error, closed)
		}
	}

	start := time.Now()
	p1, _, certs1 := startACMEProxy(t, t.TempDir(), cfg)
	checkFailed(t, certs1, start)
	if err := p1.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for len(certs1) > 0 { // events from before Stop
		<-certs1
	}

	start = time.Now()
	_, _, certs2 := startACMEProxy(t, t.TempDir(), cfg)
	checkFailed(t, certs2, start)
	select {
	case e := <-certs1:
		t.Errorf("the stopped first Proxy got the second's event %+v", e)
	default:
	}
}

// TestCertEventInternal: a tls = "internal" site gets its certificate from
// Caddy's local CA, and OnCertEvent hears of it like of an ACME one.
func TestCertEventInternal(t *testing.T) {
	up := newUpstream(t, nil)
	cfg := Config{
		Listen: freeAddr(t), ListenTLS: freeAddr(t), Hosts: []string{"app.internal"}, TLS: TLSInternal, Upstream: up.addr,
	}
	start := time.Now()
	_, _, certs := startACMEProxy(t, t.TempDir(), cfg)
	ev := waitCertEvent(t, certs, time.Minute, "obtained", func(e CertEvent) bool { return e.Obtained })
	if ev.Name != "app.internal" || ev.Renewal || ev.Error != "" || ev.Time.Before(start) {
		t.Errorf("OnCertEvent got %+v; want app.internal obtained, not a renewal, no error", ev)
	}
}

func TestCertEventOf(t *testing.T) {
	ts := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		logger string
		msg    string
		fields []zap.Field
		want   CertEvent
		isCert bool
	}{
		{"obtained", certLogObtain, certMsgObtained, []zap.Field{zap.String("identifier", "a.example.com"), zap.String("issuer", "acme")},
			CertEvent{Name: "a.example.com", Obtained: true, Time: ts}, true},
		{"renewed", certLogRenew, certMsgRenewed, []zap.Field{zap.String("identifier", "a.example.com"), zap.String("issuer", "acme")},
			CertEvent{Name: "a.example.com", Renewal: true, Obtained: true, Time: ts}, true},
		{"obtain failed", certLogObtain, certMsgFailed, []zap.Field{zap.String("identifier", "a.example.com"), zap.String("issuer", "acme"), zap.Error(errors.New("boom"))},
			CertEvent{Name: "a.example.com", Error: "boom", Time: ts}, true},
		{"renewal failed without error", certLogRenew, certMsgFailed, []zap.Field{zap.String("identifier", "a.example.com")},
			CertEvent{Name: "a.example.com", Renewal: true, Error: "unknown error", Time: ts}, true},
		{"obtaining", certLogObtain, "obtaining certificate", nil, CertEvent{}, false},
		{"same message elsewhere", "http", certMsgObtained, nil, CertEvent{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := zapcore.Entry{LoggerName: tt.logger, Message: tt.msg, Time: ts}
			if got := isCertEntry(e); got != tt.isCert {
				t.Fatalf("isCertEntry = %v, want %v", got, tt.isCert)
			}
			if !tt.isCert {
				return
			}
			if got := certEventOf(e, tt.fields); got != tt.want {
				t.Errorf("certEventOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}
