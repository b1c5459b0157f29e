package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Caddy builds its loggers from modules named in its JSON config, so the
// Proxy's zap.Logger and access-log buffer are reached through a registry
// keyed by an instance name that the generated config carries.

func init() {
	caddy.RegisterModule(logCore{})
}

// sinks maps an instance name to its sinks; guarded by sinksMu. Entries
// are never removed: a Proxy may be applied again after Stop, and there is
// one Proxy per process in practice (a few bytes per New otherwise).
var (
	sinksMu sync.Mutex
	sinks   = map[string]*sink{}
	sinkSeq int
	nopSink = &sink{logger: zap.NewNop(), traffic: newTraffic(), drains: newDrainSet(), peers: newPeerTable()}
)

type sink struct {
	logger  *zap.Logger
	access  *accessBuffer                                  // nil: no access log
	onCert  func(CertEvent)                                // nil: certificate events are dropped (see certevents.go)
	health  func(upstreams []string) (ok bool, why string) // nil: health_path always answers 200 (see sitehealth.go)
	traffic *traffic                                       // never nil
	drains  *drainSet                                      // never nil (upstreamdrain.go)
	peers   *peerTable                                     // never nil (unixdial.go)
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
// Access log entries (logger "http.log.access...") go instead to the
// Proxy's access log, as JSON lines (Caddy's "json" encoder). Certificate
// outcomes also go to the Proxy's OnCertEvent, at any level (see
// certevents.go).
//
// Caddy adds fields to its loggers on every request (the reverse proxy's
// upstream and request, for example), mostly for debug entries that the
// Logger does not keep. With only remembers them; they are encoded when an
// entry is written. Encoding them at each With (as Caddy's own access log
// and a plain zap core do, for every logger, whether or not they keep its
// entries) cost about 5% of the daemon's CPU under load.
type logCore struct {
	Instance     string `json:"instance,omitempty"`
	zapcore.Core `json:"-"`
	fields       []zapcore.Field // from With, not yet added to Core
	onCert       func(CertEvent) // nil: none wanted
	access       *accessLog      // nil: no access log
}

// accessLog is where access log entries are written.
type accessLog struct {
	enc zapcore.Encoder
	out *accessBuffer
}

func (logCore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.logging.cores.hostctl", New: func() caddy.Module { return new(logCore) }}
}

func (c *logCore) Provision(ctx caddy.Context) error {
	s := lookupSink(c.Instance)
	c.Core = s.logger.Core()
	c.onCert = s.onCert
	if s.access != nil {
		enc, err := ctx.LoadModuleByID("caddy.logging.encoders.json", json.RawMessage("{}"))
		if err != nil {
			return fmt.Errorf("loading the access log's JSON encoder: %w", err)
		}
		c.access = &accessLog{enc: enc.(zapcore.Encoder), out: s.access}
	}
	return nil
}

func (c *logCore) With(fields []zapcore.Field) zapcore.Core {
	d := *c
	d.fields = append(slices.Clip(c.fields), fields...)
	return &d
}

func (c *logCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if strings.HasPrefix(e.LoggerName, "http.log.access") {
		if c.access == nil {
			return ce
		}
		return ce.AddCore(e, accessCore{c})
	}
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
	core := c.Core
	if len(c.fields) > 0 {
		core = core.With(c.fields)
	}
	return core.Check(e, ce)
}

// accessCore writes one access log entry with the logCore's fields; it is
// only used from logCore.Check.
type accessCore struct{ c *logCore }

func (a accessCore) Enabled(zapcore.Level) bool        { return true }
func (a accessCore) With([]zapcore.Field) zapcore.Core { return a }
func (a accessCore) Sync() error                       { return nil }
func (a accessCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(e, a)
}

func (a accessCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	all := fields
	if len(a.c.fields) > 0 {
		all = append(slices.Clip(a.c.fields), fields...)
	}
	buf, err := a.c.access.enc.EncodeEntry(e, all)
	if err != nil {
		return err
	}
	a.c.access.out.Write(buf.Bytes())
	buf.Free()
	return nil
}

// accessBuffer holds access log lines for Options.AccessLog and writes
// them when 64 KiB have gathered, one second after the first line it
// holds, and on Flush (nginx's access_log buffer=64k flush=1s): one write
// per many requests instead of one per request. Lines are written whole,
// in order.
type accessBuffer struct {
	w io.Writer

	// mu guards the fields below and serializes writes to w.
	mu    sync.Mutex
	buf   []byte
	timer *time.Timer // armed while buf holds lines; nil before the first
}

const (
	accessBufferSize  = 64 << 10
	accessFlushPeriod = time.Second
)

func newAccessBuffer(w io.Writer) *accessBuffer { return &accessBuffer{w: w} }

func (b *accessBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 {
		if b.timer == nil {
			b.timer = time.AfterFunc(accessFlushPeriod, func() { b.Flush() })
		} else {
			b.timer.Reset(accessFlushPeriod)
		}
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= accessBufferSize {
		b.flushLocked()
	}
	return len(p), nil
}

// Flush writes the lines held.
func (b *accessBuffer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *accessBuffer) flushLocked() {
	if len(b.buf) == 0 {
		return
	}
	b.w.Write(b.buf) // an access log that cannot be written is not worth failing requests for
	if cap(b.buf) > 4*accessBufferSize {
		b.buf = nil
	} else {
		b.buf = b.buf[:0]
	}
}

var (
	_ zapcore.Core      = (*logCore)(nil)
	_ caddy.Provisioner = (*logCore)(nil)
	_ zapcore.Core      = accessCore{}
)
