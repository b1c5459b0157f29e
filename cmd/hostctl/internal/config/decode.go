// Package config reads hostctl.toml: it decodes the file strictly (unknown
// keys and wrong types are errors), fills defaults, and validates every
// section, reporting every problem at once with its file, line and key path.
package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/hostctl/hostctl/supervisor"
	"github.com/hostctl/hostctl/supervisor/logfile"
	"github.com/hostctl/hostctl/supervisor/trust"
)

// Error is one problem in a config file.
type Error struct {
	File string // path of the config file
	Line int    // 0 when unknown
	Key  string // key path, e.g. program.gunicorn.stop_timeout
	Msg  string
	// Machine is set when the problem is with this machine rather than
	// with the file: a user, group, command, directory or file that the
	// config names and that is not here. `hostctl import` writes configs
	// for another machine as often as for this one, and tells these
	// apart.
	Machine bool
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a file.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the problems one by one, as errors.Join's error does, for
// errors.Is and errors.As and for callers that list them.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// decoder decodes TOML primitives into Go structs one key at a time, so that
// one bad value does not hide the next.
type decoder struct {
	md       toml.MetaData
	file     string
	lines    map[string]int // key path -> line
	errs     Errors
	defaults map[reflect.Type]func() reflect.Value
	// src is the file's lines, for arrayTableLines; fixed holds the lines
	// it found, by key path ("alerts.sink[1].name").
	src   []string
	fixed map[string]int
	// warns are what is worth saying but not wrong (File.Warnings).
	warns []*Error
	// files are the trusted files read so far, by kind and path: each is
	// read once (read), when its key is decoded, and provisioned from
	// that.
	files map[fileKey]readResult
	// deployVarKeys are the plain string values where ${SLOT} or
	// ${RELEASE_DIR} was kept (slots.go).
	deployVarKeys []string
}

type fileKey struct {
	kind trust.Kind
	path string
}

// readResult is one read of a trusted file.
type readResult struct {
	data    []byte
	warning string
	err     error
}

// read reads a file hostctl trusts (trust.ReadFile) once per Parse: the
// trust check at decode, and the sections' Provision, get the same bytes.
// It is a trust.Reader.
func (d *decoder) read(path string, kind trust.Kind) ([]byte, error) {
	r := d.readWarn(path, kind)
	return r.data, r.err
}

func (d *decoder) readWarn(path string, kind trust.Kind) readResult {
	k := fileKey{kind, path}
	if r, ok := d.files[k]; ok {
		return r
	}
	data, warning, err := trust.ReadFile(path, kind)
	r := readResult{data: data, warning: warning, err: err}
	if d.files == nil {
		d.files = map[fileKey]readResult{}
	}
	d.files[k] = r
	return r
}

func (d *decoder) fail(key string, line int, format string, a ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, a...)})
}

// lineProbe's only job is to fail, so that the TOML library reports the
// line of the key it was asked to decode.
type lineProbe struct{}

func (lineProbe) UnmarshalTOML(any) error { return errors.New("line probe") }

func (d *decoder) lineOf(p toml.Primitive) int {
	var pe toml.ParseError
	if err := d.md.PrimitiveDecode(p, &lineProbe{}); errors.As(err, &pe) {
		return pe.Line
	}
	return 0
}

// line returns the line of key or, failing that, of its nearest parent.
func (d *decoder) line(key string) int {
	for k := key; k != ""; {
		if l, ok := d.lines[k]; ok {
			return l
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

var (
	durationType    = reflect.TypeOf(time.Duration(0))
	unmarshalerType = reflect.TypeOf((*toml.Unmarshaler)(nil)).Elem()
)

// table decodes prim as a table into the struct rv.
func (d *decoder) table(prim toml.Primitive, path string, rv reflect.Value) {
	var m map[string]toml.Primitive
	if err := d.md.PrimitiveDecode(prim, &m); err != nil {
		d.fail(path, d.lineOf(prim), "must be a table (a [%s] section or { ... })", path)
		return
	}
	fields := tomlFields(rv.Type())
	for _, k := range slices.Sorted(maps.Keys(m)) {
		key := join(path, k)
		line, ok := d.fixed[key]
		if !ok {
			line = d.lineOf(m[k])
		}
		d.lines[key] = line
		idx, ok := fields[k]
		if !ok {
			d.fail(key, line, "unknown key%s", suggest(k, fields))
			continue
		}
		sf := rv.Type().Field(idx)
		d.value(m[k], key, line, rv.Field(idx), sf.Tag)
	}
}

// value decodes one key into rv.
func (d *decoder) value(prim toml.Primitive, key string, line int, rv reflect.Value, tag reflect.StructTag) {
	t := rv.Type()
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := d.md.PrimitiveDecode(prim, rv.Addr().Interface()); err != nil {
			d.fail(key, line, "%s", cleanErr(err))
		}
		return
	}
	switch {
	case t.Kind() == reflect.Pointer:
		nv := reflect.New(t.Elem())
		if mk, ok := d.defaults[t.Elem()]; ok {
			nv.Elem().Set(mk())
		}
		d.value(prim, key, line, nv.Elem(), tag)
		rv.Set(nv)
	case t == durationType:
		var s string
		if err := d.md.PrimitiveDecode(prim, &s); err != nil {
			d.fail(key, line, "must be a duration string (example: \"10s\", \"1m30s\", \"30d\")")
			return
		}
		s, ok := d.expand(key, line, s)
		if !ok {
			return
		}
		// `never:"allowed"`: the key also takes "never" (supervisor.RetryNever).
		if tag.Get("never") != "" && s == "never" {
			rv.SetInt(int64(supervisor.RetryNever))
			return
		}
		v, err := ParseDuration(s)
		if err != nil {
			if tag.Get("never") != "" {
				d.fail(key, line, "%q is not a duration or \"never\" (example: \"5m\")", s)
				return
			}
			d.fail(key, line, "%q is not a duration (example: \"10s\")", s)
			return
		}
		rv.SetInt(int64(v))
	case t.Kind() == reflect.Int64 && tag.Get("unit") == "bytes":
		var a any
		d.md.PrimitiveDecode(prim, &a)
		switch v := a.(type) {
		case int64:
			rv.SetInt(v)
		case string:
			v, ok := d.expand(key, line, v)
			if !ok {
				return
			}
			n, err := logfile.ParseSize(v)
			if err != nil {
				d.fail(key, line, "%q is not a size (example: \"50MB\")", v)
				return
			}
			rv.SetInt(n)
		default:
			d.fail(key, line, "must be a size like \"50MB\" or a number of bytes")
		}
	case t.Kind() == reflect.Struct:
		d.table(prim, key, rv)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		var ps []toml.Primitive
		if err := d.md.PrimitiveDecode(prim, &ps); err != nil {
			d.fail(key, line, "must be an array of tables ([[%s]])", key)
			return
		}
		out := reflect.MakeSlice(t, len(ps), len(ps))
		for i, p := range ps {
			k := fmt.Sprintf("%s[%d]", key, i)
			d.lines[k] = d.lineOf(p)
			if hdr, keys, ok := d.arrayTableLines(key, i); ok {
				d.lines[k] = hdr
				for name, l := range keys {
					d.fixed[k+"."+name] = l
				}
			}
			if mk, ok := d.defaults[t.Elem()]; ok {
				out.Index(i).Set(mk())
			}
			d.table(p, k, out.Index(i))
		}
		rv.Set(out)
	default:
		nv := reflect.New(t)
		if err := d.md.PrimitiveDecode(prim, nv.Interface()); err != nil {
			d.fail(key, line, "must be %s", kindName(t))
			return
		}
		// ${VAR} expands from hostctl's environment in every string value.
		// Tables of strings (a program's environment) and commands expand
		// later, with the program's own variables in scope.
		switch {
		case t.Kind() == reflect.String && tag.Get("instance") != "":
			// Expanded per instance, with ${INSTANCE}: see
			// supervisor.ProgramConfig.Processes.
		case t.Kind() == reflect.String:
			s, ok := d.expand(key, line, nv.Elem().String())
			if !ok {
				return
			}
			nv.Elem().SetString(s)
			d.trustFile(key, line, s, tag)
		case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
			for i := 0; i < nv.Elem().Len(); i++ {
				s, ok := d.expand(fmt.Sprintf("%s[%d]", key, i), line, nv.Elem().Index(i).String())
				if !ok {
					return
				}
				nv.Elem().Index(i).SetString(s)
			}
		}
		rv.Set(nv.Elem())
	}
}

// trustFile checks a file that a key tagged `trust:"secret"` (a token,
// password or key file) or `trust:"config"` (a CA file) names, with
// trust.ReadFile, the one rule for every file hostctl trusts: a file that
// another user owns or can write is an error at that key, a secret that
// every user can read a warning. That the file exists and holds what it
// should is the section's own Validate's to say.
func (d *decoder) trustFile(key string, line int, path string, tag reflect.StructTag) {
	var kind trust.Kind
	switch tag.Get("trust") {
	case "":
		return
	case "secret":
		kind = trust.Secret
	case "config":
		kind = trust.Config
	default:
		panic(fmt.Sprintf("%s: unknown trust tag %q", key, tag.Get("trust")))
	}
	if path == "" {
		return
	}
	r := d.readWarn(path, kind)
	warning, err := r.warning, r.err
	if te, ok := errors.AsType[*trust.Error](err); ok {
		d.fail(key, line, "%v", te)
		return
	}
	if warning != "" {
		d.warns = append(d.warns, &Error{File: d.file, Line: line, Key: key, Msg: warning})
	}
}

// arrayTableLines finds the i-th "[[path]]" header in the source and the
// lines of the keys written directly under it. The TOML library keeps one
// position per key path without the index, so every element of an array
// of tables would get the last element's lines ("alerts.sink.name" is the
// same key for sink[0] and sink[1]). Only top-level paths written as
// [[a.b]] headers are looked up (not inline arrays of tables, not nested
// arrays); ok is false otherwise, and the library's line stands.
func (d *decoder) arrayTableLines(path string, i int) (header int, keys map[string]int, ok bool) {
	if strings.ContainsAny(path, "[]") || d.src == nil {
		return 0, nil, false
	}
	parts := strings.Split(path, ".")
	for j, p := range parts {
		parts[j] = regexp.QuoteMeta(p)
	}
	hdr := regexp.MustCompile(`^\s*\[\[\s*` + strings.Join(parts, `\s*\.\s*`) + `\s*\]\]\s*(#.*)?$`)
	n := -1
	for l, text := range d.src {
		if !hdr.MatchString(text) {
			continue
		}
		if n++; n != i {
			continue
		}
		keys = map[string]int{}
		for m := l + 1; m < len(d.src); m++ {
			text := d.src[m]
			if tableHeader.MatchString(text) {
				break
			}
			if km := keyLine.FindStringSubmatch(text); km != nil {
				name := km[2]
				if _, seen := keys[name]; !seen {
					keys[name] = m + 1
				}
			}
		}
		return l + 1, keys, true
	}
	return 0, nil, false
}

var (
	tableHeader = regexp.MustCompile(`^\s*\[\[?\s*[A-Za-z0-9_"'-]`)
	keyLine     = regexp.MustCompile(`^\s*(["']?)([A-Za-z0-9_-]+)(["']?)\s*=`)
)

// expand expands ${VAR} in a string value from hostctl's environment.
// ${INSTANCE} is not an environment variable: in the keys where it means
// something the value is not expanded here, and anywhere else it is an
// error.
func (d *decoder) expand(key string, line int, s string) (string, bool) {
	if !strings.Contains(s, "$") {
		return s, true
	}
	if slices.Contains(supervisor.VarRefs(s), "INSTANCE") {
		d.fail(key, line, "${INSTANCE} is the instance number of a program with instances, expanded only in its command, environment, process_name, directory, stdout_log, stderr_log, serves and ready/health tcp, http, socket and exec (write $${INSTANCE} for the text itself)")
		return "", false
	}
	refs := supervisor.VarRefs(s)
	if slices.Contains(refs, varSlot) || slices.Contains(refs, varReleaseDir) {
		// Left for Resolve (slots.go); validateSlots says where they
		// may be.
		d.deployVarKeys = append(d.deployVarKeys, key)
	}
	v, err := supervisor.ExpandVars(s, func(k string) (string, bool) {
		if k == varSlot || k == varReleaseDir {
			return "${" + k + "}", true
		}
		return os.LookupEnv(k)
	})
	if err != nil {
		d.fail(key, line, "%v", err)
		return "", false
	}
	return v, true
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string (in quotes)"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(kindName(t.Elem()), "a ")
	case reflect.Map:
		return "a table of " + strings.TrimPrefix(kindName(t.Elem()), "a ")
	}
	return t.String()
}

// cleanErr strips the TOML library's "toml: line N (last key ...)" prefix:
// our message carries the line and key already.
func cleanErr(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return pe.Message
	}
	s := err.Error()
	if i := strings.Index(s, "): "); i >= 0 && strings.HasPrefix(s, "toml:") {
		return s[i+3:]
	}
	return s
}

func tomlFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	return m
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// suggest names the closest known key, or lists the known keys.
func suggest(k string, fields map[string]int) string {
	best, bestD := "", 1<<30
	for f := range fields {
		if dd := editDistance(k, f); dd < bestD || dd == bestD && f < best {
			best, bestD = f, dd
		}
	}
	if best != "" && bestD <= max(2, len(k)/3) {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return fmt.Sprintf(" (known keys: %s)", strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ParseDuration parses Go durations ("1m30s") plus days ("30d", "1d12h").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if v < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return days + v, nil
}
