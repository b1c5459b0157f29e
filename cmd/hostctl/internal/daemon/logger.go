package daemon

import (
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"
)

// NewLogger builds hostctl's own logger on stderr: "console" (readable, for
// a terminal), "json" (for journald and log shippers) or "auto" (console on
// a terminal, JSON otherwise). extra, when not nil, receives JSON lines too
// (hostctl's own rotated log file).
func NewLogger(format, level string, extra io.Writer) (*zap.Logger, zap.AtomicLevel, error) {
	lvl := zap.NewAtomicLevel()
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, lvl, fmt.Errorf("--log-level: %q is not debug, info, warn or error", level)
	}
	if format == "auto" {
		format = "json"
		if term.IsTerminal(int(os.Stderr.Fd())) {
			format = "console"
		}
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		c := encCfg
		c.EncodeLevel = zapcore.CapitalColorLevelEncoder
		c.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(c)
	default:
		return nil, lvl, fmt.Errorf("--log-format: %q is not auto, console or json", format)
	}
	cores := []zapcore.Core{zapcore.NewCore(enc, zapcore.Lock(os.Stderr), lvl)}
	if extra != nil {
		cores = append(cores, zapcore.NewCore(zapcore.NewJSONEncoder(encCfg), zapcore.AddSync(extra), lvl))
	}
	return zap.New(zapcore.NewTee(cores...)), lvl, nil
}
