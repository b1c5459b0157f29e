package front

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// caddyChoices are warnings Caddy logs at every start about what hostctl
// chose on purpose, by logger and message: its admin endpoint is off
// (hostctl's admin API replaces it), and a site with no TLS listener gets
// no automatic HTTPS ([proxy] listen without listen_tls). Nothing is
// wrong, so they are debug lines, not warnings that a newcomer would chase.
var caddyChoices = map[[2]string]bool{
	{"caddy.admin", "admin endpoint disabled"}: true,
	{"caddy.http.auto_https", "server is listening only on the HTTP port, so no automatic HTTPS will be applied to this server"}: true,
}

// quietCaddyChoices returns log with caddyChoices at debug level; every
// other entry keeps its level. The proxy's Caddy logs through it.
func quietCaddyChoices(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return choiceCore{c} }))
}

type choiceCore struct{ zapcore.Core }

func (c choiceCore) With(fields []zapcore.Field) zapcore.Core {
	return choiceCore{c.Core.With(fields)}
}

func (c choiceCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Level == zapcore.WarnLevel && caddyChoices[[2]string{e.LoggerName, e.Message}] {
		e.Level = zapcore.DebugLevel
	}
	return c.Core.Check(e, ce)
}
