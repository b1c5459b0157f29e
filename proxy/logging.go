package proxy

import (
	"io"
	"strconv"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Caddy builds its loggers from modules named in its JSON config, so the
// Proxy's zap.Logger and access-log writer are reached through a registry
// keyed by an instance name that the generated config carries.

func init() {
	caddy.RegisterModule(logCore{})
	caddy.RegisterModule(accessWriter{})
}

// sinks maps an instance name to its sinks; guarded by sinksMu. Entries
// are never removed: a Proxy may be applied again after Stop, and there is
// one Proxy per process in practice (a few bytes per New otherwise).
var (
	sinksMu sync.Mutex
	sinks   = map[string]*sink{}
	sinkSeq int
	nopSink = &sink{logger: zap.NewNop(), access: io.Discard}
)

type sink struct {
	logger *zap.Logger
	access io.Writer
	onCert func(CertEvent) // nil: certificate events are dropped (see certevents.go)
}

func registerSink(s *sink) string {
	sinksMu.Lock()
	defer sinksMu.Unlock()
	sinkSeq++
	name := "p" + strconv.Itoa(sinkSeq)
	sinks[name] = s
	return name
}

func lookupSink(name string) *sink {
	sinksMu.Lock()
	defer sinksMu.Unlock()
	if s, ok := sinks[name]; ok {
		return s
	}
	return nopSink
}

// logCore is the Caddy log core module "caddy.logging.cores.hostctl": it
// passes Caddy's entries to the Proxy's zap.Logger, which decides by level
// (Caddy offers every level to a core), and names them "caddy.<logger>".
// Certificate outcomes also go to the Proxy's OnCertEvent, at any level
// (see certevents.go).
type logCore struct {
	Instance string `json:"instance,omitempty"`
	zapcore.Core
	onCert func(CertEvent) // nil: none wanted
}

func (logCore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.logging.cores.hostctl", New: func() caddy.Module { return new(logCore) }}
}

func (c *logCore) Provision(caddy.Context) error {
	s := lookupSink(c.Instance)
	c.Core = s.logger.Core()
	c.onCert = s.onCert
	return nil
}

func (c *logCore) With(fields []zapcore.Field) zapcore.Core {
	return &logCore{Instance: c.Instance, Core: c.Core.With(fields), onCert: c.onCert}
}

func (c *logCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.onCert != nil && isCertEntry(e) {
		ce = ce.AddCore(e, certCore{onCert: c.onCert})
	}
	if !c.Core.Enabled(e.Level) {
		return ce
	}
	if e.LoggerName == "" {
		e.LoggerName = "caddy"
	} else {
		e.LoggerName = "caddy." + e.LoggerName
	}
	return c.Core.Check(e, ce)
}

// accessWriter is the log writer module "caddy.logging.writers.hostctl_access":
// the Proxy's Options.AccessLog.
type accessWriter struct {
	Instance string `json:"instance,omitempty"`
}

func (accessWriter) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.logging.writers.hostctl_access", New: func() caddy.Module { return new(accessWriter) }}
}

func (w accessWriter) String() string    { return "hostctl access log" }
func (w accessWriter) WriterKey() string { return "hostctl_access:" + w.Instance }
func (w accessWriter) OpenWriter() (io.WriteCloser, error) {
	return nopCloser{lookupSink(w.Instance).access}, nil
}

// nopCloser keeps Caddy from closing the caller's writer on reload.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

var (
	_ zapcore.Core       = (*logCore)(nil)
	_ caddy.Provisioner  = (*logCore)(nil)
	_ caddy.WriterOpener = accessWriter{}
)
