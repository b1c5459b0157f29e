package logfile

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is the [log] section of hostctl.toml.
//
// Sizes are bytes. In the file they are written as an integer or as a
// number with a unit: decimal units KB, MB, GB, TB (powers of 1000, so
// "50MB" is 50,000,000 bytes) and binary units KiB, MiB, GiB, TiB (powers
// of 1024, so "50MiB" is 52,428,800 bytes). See [ParseSize].
type Config struct {
	// Dir is the directory for program logs whose path is not set and for
	// hostctl's own log file. It is created (mode 0755) if missing. It and
	// every dir above it must be root's and writable by no one else (see
	// CheckDir). Default: "/var/log/hostctl".
	Dir string `toml:"dir"`

	// MaxSize is the size in bytes at which a log file is rotated; the
	// active file never grows past it (rotation happens at a line
	// boundary when the line fits). Default: 50MB (50,000,000 bytes).
	MaxSize int64 `toml:"max_size" unit:"bytes"`

	// MaxBackups is how many rotated files to keep per log; 0 keeps all
	// (subject to MaxAge, MaxTotal and KeepFree). Default: 10.
	MaxBackups int `toml:"max_backups"`

	// MaxAge removes rotated files whose rotation time is older than
	// this. 0 keeps them regardless of age. Default: 0.
	MaxAge time.Duration `toml:"max_age"`

	// Compress gzips rotated files. Default: true.
	Compress bool `toml:"compress"`

	// MaxTotal caps the bytes used by all logs hostctl manages (active
	// and rotated files of every stream). When it is exceeded, the oldest
	// rotated files across all logs are deleted first; active files are
	// never deleted. 0 means no cap. Default: 0.
	MaxTotal int64 `toml:"max_total" unit:"bytes"`

	// KeepFree is the free space to leave on the filesystem holding Dir,
	// either a percentage of the filesystem size ("10%") or a size
	// ("5GB"). When free space drops below it, hostctl deletes the oldest
	// rotated logs on that filesystem, then, if still short, stops writing
	// logs there (dropping and counting output) until space returns.
	// "" turns the check off. Default: "5%".
	KeepFree string `toml:"keep_free"`

	// File also writes hostctl's own log to Dir/hostctl.log (see
	// [OwnLogName]), rotated like program logs. hostctl always logs to
	// stderr. Default: false.
	File bool `toml:"file"`
}

// OwnLogName is the name of hostctl's own log file inside Config.Dir.
const OwnLogName = "hostctl.log"

// DefaultConfig returns the [log] defaults.
func DefaultConfig() Config {
	return Config{
		Dir:        "/var/log/hostctl",
		MaxSize:    50 * 1000 * 1000,
		MaxBackups: 10,
		Compress:   true,
		KeepFree:   "5%",
	}
}

// Rotation returns the global rotation policy of c, for streams that have
// no per-program override.
func (c *Config) Rotation() Rotation {
	return Rotation{MaxSize: c.MaxSize, MaxBackups: c.MaxBackups, MaxAge: c.MaxAge, Compress: c.Compress}
}

// FieldError is a problem with one config key.
type FieldError struct {
	Key string // key path, like "log.keep_free"
	Msg string // what is wrong and what to do
}

func (e *FieldError) Error() string {
	if e.Key == "" {
		return e.Msg
	}
	return e.Key + ": " + e.Msg
}

// Field returns the key path and the message apart, so that the config
// file reader can put the key's line in front.
func (e *FieldError) Field() (key, msg string) { return e.Key, e.Msg }

// minMaxSize is the smallest max_size accepted in the config file.
const minMaxSize = 1000

// Validate returns every problem in c, each a *FieldError whose key is
// prefix + "." + the toml key (prefix is usually "log").
func (c *Config) Validate(prefix string) []error {
	key := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	var errs []error
	add := func(k, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key(k), Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case c.Dir == "":
		add("dir", "is empty; set an absolute directory such as \"/var/log/hostctl\"")
	case !filepath.IsAbs(c.Dir):
		add("dir", "%q is not an absolute path; use a path starting with \"/\"", c.Dir)
	default:
		if err := CheckDir(c.Dir); err != nil {
			add("dir", "%s", DirProblem(err))
		}
	}
	for _, e := range c.Rotation().Validate(prefix) {
		errs = append(errs, e)
	}
	if c.MaxTotal < 0 {
		add("max_total", "%d is negative; use 0 for no cap or a size such as \"2GB\"", c.MaxTotal)
	} else if c.MaxTotal > 0 && c.MaxTotal < c.MaxSize {
		add("max_total", "%s is smaller than max_size (%s), so one active log could fill it; use 0 for no cap or at least max_size",
			FormatSize(c.MaxTotal), FormatSize(c.MaxSize))
	}
	if _, err := ParseKeepFree(c.KeepFree); err != nil {
		add("keep_free", "%v", err)
	}
	return errs
}

// Validate returns every problem in r as *FieldError values keyed under
// prefix (for a program override, e.g. "program.web"). Config files can
// set max_size no smaller than 1KB; a zero Rotation.MaxSize given in code
// means never rotate by size.
func (r Rotation) Validate(prefix string) []error {
	key := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	var errs []error
	if r.MaxSize < minMaxSize {
		errs = append(errs, &FieldError{Key: key("max_size"),
			Msg: fmt.Sprintf("%d bytes is too small; use at least \"1KB\" (example: \"50MB\")", r.MaxSize)})
	}
	if r.MaxBackups < 0 {
		errs = append(errs, &FieldError{Key: key("max_backups"),
			Msg: fmt.Sprintf("%d is negative; use 0 to keep every rotated file or a count such as 10", r.MaxBackups)})
	}
	if r.MaxAge < 0 {
		errs = append(errs, &FieldError{Key: key("max_age"),
			Msg: fmt.Sprintf("%s is negative; use 0 to keep rotated files regardless of age or a duration such as \"30d\"", r.MaxAge)})
	}
	return errs
}

// KeepFree is a parsed keep_free value: either a percentage of the
// filesystem size or an absolute number of bytes. The zero value is off.
type KeepFree struct {
	Percent float64 // 0 < Percent < 100, or 0
	Bytes   int64   // used when Percent is 0
}

// Off reports whether no free-space check is configured.
func (k KeepFree) Off() bool { return k.Percent == 0 && k.Bytes == 0 }

// Threshold returns the bytes to keep free on a filesystem of fsSize bytes.
func (k KeepFree) Threshold(fsSize int64) int64 {
	if k.Percent > 0 {
		return int64(float64(fsSize) * k.Percent / 100)
	}
	return k.Bytes
}

// String formats k like the config value.
func (k KeepFree) String() string {
	switch {
	case k.Percent > 0:
		return strconv.FormatFloat(k.Percent, 'f', -1, 64) + "%"
	case k.Bytes > 0:
		return FormatSize(k.Bytes)
	}
	return ""
}

// ParseKeepFree parses a keep_free value: "" (off), "N%" with 0 < N < 100,
// or a size accepted by [ParseSize].
func ParseKeepFree(s string) (KeepFree, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return KeepFree{}, nil
	}
	if num, ok := strings.CutSuffix(s, "%"); ok {
		p, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || math.IsNaN(p) || p <= 0 || p >= 100 {
			return KeepFree{}, fmt.Errorf("%q is not a percentage between 0 and 100 (example: \"10%%\", or a size such as \"5GB\", or \"\" for off)", s)
		}
		return KeepFree{Percent: p}, nil
	}
	n, err := ParseSize(s)
	if err != nil {
		return KeepFree{}, fmt.Errorf("%q is neither a percentage nor a size (example: \"10%%\" or \"5GB\", or \"\" for off)", s)
	}
	return KeepFree{Bytes: n}, nil
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first so "KiB" is not read as "B".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"b", 1},
}

// ParseSize parses a byte size: a non-negative integer, or a number
// (fractions allowed) followed by B, KB, MB, GB, TB (powers of 1000) or
// KiB, MiB, GiB, TiB (powers of 1024). Units are case-insensitive.
func ParseSize(s string) (int64, error) {
	orig := s
	s = strings.TrimSpace(s)
	bad := func() (int64, error) {
		return 0, fmt.Errorf("%q is not a size (example: \"50MB\", \"512KiB\" or a number of bytes)", orig)
	}
	if s == "" {
		return bad()
	}
	lower := strings.ToLower(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(lower, u.suffix); ok {
			lower, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	if n, err := strconv.ParseInt(lower, 10, 64); err == nil {
		if n < 0 || (mult > 1 && n > math.MaxInt64/mult) {
			return bad()
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(lower, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f*float64(mult) >= math.MaxInt64 {
		return bad()
	}
	return int64(f * float64(mult)), nil
}

// FormatSize formats n bytes with the largest decimal unit that keeps it
// readable, rounded to two decimals ("50MB", "1.5GB", "999B").
func FormatSize(n int64) string {
	units := []struct {
		suffix string
		mult   float64
	}{{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}}
	for _, u := range units {
		if float64(n) >= u.mult {
			return strconv.FormatFloat(math.Round(float64(n)/u.mult*100)/100, 'f', -1, 64) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
