// Package importer converts a supervisord configuration (and optionally
// an nginx site) into a hostctl config: `hostctl import`. It reads
// supervisord.conf with Python supervisor 4.2's own parsing rules and the
// nginx site with nginx-go-crossplane, writes what has a hostctl
// equivalent, and puts a comment at each place where a setting could not
// be translated exactly. Every setting it reads is either translated or
// listed as not translated, in the output and in the summary.
package importer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Options say what to import.
type Options struct {
	// Supervisord is the supervisord.conf to read (its [include] files
	// are read too). Required.
	Supervisord string
	// Nginx is an nginx site file (sites-available/NAME.conf) or a whole
	// nginx.conf; empty for none.
	Nginx string
	// NginxPrefix is the directory nginx resolves relative include paths
	// against (nginx -p, the directory of nginx.conf). Default
	// DefaultNginxPrefix, Debian's /etc/nginx.
	NginxPrefix string
	// HostNodeName is supervisord's %(host_node_name)s. Default: this
	// machine's host name.
	HostNodeName string
}

// Note is one setting that was not translated exactly.
type Note struct {
	// Where names the setting: "file:line [section] key".
	Where string
	// Kind is "approximated" (translated, with a difference the comment
	// explains) or "not translated".
	Kind string
	// Msg says what differs and what to do.
	Msg string
}

func (n Note) String() string { return fmt.Sprintf("%s: %s: %s", n.Where, n.Kind, n.Msg) }

// Kinds of Note.
const (
	Approximated  = "approximated"
	NotTranslated = "not translated"
)

// Result is an import's output.
type Result struct {
	// TOML is the hostctl config.
	TOML []byte
	// Notes are the settings not translated exactly, in file order.
	Notes []Note
	// Programs, Groups and Sites count what was translated.
	Programs, Groups, Sites int
	// Fragment is set when the supervisord file had no [supervisord]
	// section and was read as a conf.d fragment.
	Fragment bool
	// NginxFiles are the nginx files read (the site and the includes
	// that could be read), the site first.
	NginxFiles []string
}

// Summary is the text `hostctl import` prints on stderr.
func (r *Result) Summary() string {
	var b strings.Builder
	approx, not := 0, 0
	for _, n := range r.Notes {
		if n.Kind == Approximated {
			approx++
		} else {
			not++
		}
	}
	if r.Fragment {
		fmt.Fprintf(&b, "no [supervisord] section: read as a conf.d fragment, with supervisord's defaults for the rest\n")
	}
	fmt.Fprintf(&b, "imported %d programs, %d groups, %d sites; %d settings approximated, %d not translated\n",
		r.Programs, r.Groups, r.Sites, approx, not)
	for _, n := range r.Notes {
		fmt.Fprintln(&b, "  "+n.String())
	}
	return b.String()
}

// Import reads the configs named in opts and returns the hostctl config.
// An error means a file supervisord or nginx itself would refuse (or
// that cannot be read); the message names the file and line.
func Import(opts Options) (*Result, error) {
	if opts.HostNodeName == "" {
		opts.HostNodeName, _ = os.Hostname()
	}
	im := &importer{opts: opts, doc: &doc{}}
	if abs, err := filepath.Abs(opts.Nginx); err == nil && opts.Nginx != "" {
		im.opts.Nginx = abs
	}
	if abs, err := filepath.Abs(opts.NginxPrefix); err == nil && opts.NginxPrefix != "" {
		im.opts.NginxPrefix = abs
	}
	ini, err := readSupervisord(opts.Supervisord)
	if err != nil {
		return nil, err
	}
	im.ini = ini
	if err := im.supervisord(); err != nil {
		return nil, err
	}
	if opts.Nginx != "" {
		if err := im.nginx(im.opts.Nginx); err != nil {
			return nil, err
		}
		im.serves()
	}
	return &Result{TOML: im.doc.render(), Notes: im.notes, Programs: im.programs, Groups: im.groups, Sites: im.sites,
		Fragment: im.fragment, NginxFiles: im.nginxFiles}, nil
}

// importer holds one import's state.
type importer struct {
	opts  Options
	ini   *iniFile
	doc   *doc
	notes []Note
	// counts for the summary
	programs, groups, sites int
	// names: supervisord program name -> hostctl program section
	progs map[string]*section
	// progNames: hostctl program name -> the section it came from.
	progNames map[string]string
	// globalUmask is [supervisord] umask, for programs without their own.
	globalUmask string
	// nginxFiles are the nginx files read, the site first.
	nginxFiles []string
	// fragment is set when the supervisord file has no [supervisord]
	// section (a conf.d fragment).
	fragment bool
	// progList are the programs translated; upstreams the proxy's
	// upstreams, for serves (serves.go).
	progList  []*prog
	upstreams []string
}

// note records a Note and returns the comment line for the output.
func (im *importer) note(where, kind, format string, a ...any) string {
	n := Note{Where: where, Kind: kind, Msg: fmt.Sprintf(format, a...)}
	im.notes = append(im.notes, n)
	return fmt.Sprintf("import: %s: %s", kind, n.Msg)
}

// headerNote is note for a comment at the top of the output, where the
// setting's place is not obvious: the comment names it.
func (im *importer) headerNote(where, kind, format string, a ...any) string {
	im.note(where, kind, format, a...)
	return "import: " + im.notes[len(im.notes)-1].String()
}

// rel shortens a path for messages: relative to the supervisord.conf's
// directory when inside it.
func (im *importer) rel(path string) string {
	base := filepath.Dir(im.ini.files[0])
	if r, err := filepath.Rel(base, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

func (im *importer) where(v *iniValue, section, key string) string {
	w := fmt.Sprintf("%s:%d [%s]", im.rel(v.file), v.line, section)
	if key != "" {
		w += " " + key
	}
	return w
}

// doc is the output: a header comment and sections, written in order.
type doc struct {
	header   []string
	sections []*section
}

// section is one TOML table ([name]) or array element ([[name]]).
type section struct {
	name     string
	array    bool
	comments []string // above the header
	entries  []entry
	trailer  []string // comments after the last key
}

// entry is one key = value with comments above it.
type entry struct {
	key      string
	value    string // TOML text
	comments []string
	// commented writes the key as a comment: a setting the operator
	// must complete before it can be used.
	commented bool
}

func (d *doc) add(name string, array bool, comments ...string) *section {
	s := &section{name: name, array: array, comments: comments}
	d.sections = append(d.sections, s)
	return s
}

// addAfter adds a section right after after (and after the sections
// already added after it that belong to it: names under after's name).
func (d *doc) addAfter(after *section, name string, comments ...string) *section {
	s := &section{name: name, comments: comments}
	i := 0
	for i < len(d.sections) && d.sections[i] != after {
		i++
	}
	if i == len(d.sections) {
		d.sections = append(d.sections, s)
		return s
	}
	i++
	for i < len(d.sections) && strings.HasPrefix(d.sections[i].name, after.name+".") {
		i++
	}
	d.sections = append(d.sections[:i], append([]*section{s}, d.sections[i:]...)...)
	return s
}

// find returns the first section with this name, or nil.
func (d *doc) find(name string) *section {
	for _, s := range d.sections {
		if s.name == name && !s.array {
			return s
		}
	}
	return nil
}

// set adds key = value with comments; value is TOML text.
func (s *section) set(key, value string, comments ...string) *entry {
	for i := range s.entries {
		if s.entries[i].key == key && !s.entries[i].commented {
			s.entries[i].value = value
			s.entries[i].comments = append(s.entries[i].comments, comments...)
			return &s.entries[i]
		}
	}
	s.entries = append(s.entries, entry{key: key, value: value, comments: comments})
	return &s.entries[len(s.entries)-1]
}

// get returns the entry for key, or nil.
func (s *section) get(key string) *entry {
	for i := range s.entries {
		if s.entries[i].key == key && !s.entries[i].commented {
			return &s.entries[i]
		}
	}
	return nil
}

func (d *doc) render() []byte {
	var b strings.Builder
	for _, c := range d.header {
		writeComment(&b, c)
	}
	for _, s := range d.sections {
		if len(s.entries) == 0 && len(s.trailer) == 0 && !s.array {
			// An empty table says nothing; its comments still go out.
			if len(s.comments) == 0 {
				continue
			}
		}
		b.WriteString("\n")
		for _, c := range s.comments {
			writeComment(&b, c)
		}
		if s.array {
			fmt.Fprintf(&b, "[[%s]]\n", s.name)
		} else {
			fmt.Fprintf(&b, "[%s]\n", s.name)
		}
		for _, e := range s.entries {
			for _, c := range e.comments {
				writeComment(&b, c)
			}
			if e.commented {
				b.WriteString("# ")
			}
			fmt.Fprintf(&b, "%s = %s\n", e.key, e.value)
		}
		for _, c := range s.trailer {
			writeComment(&b, c)
		}
	}
	return []byte(b.String())
}

// writeComment writes c as comment lines, one per line of c. Control
// characters (which TOML forbids in comments) are written escaped.
func writeComment(b *strings.Builder, c string) {
	c = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || (r >= 0x20 && r != 0x7f) {
			return r
		}
		return '?'
	}, strings.ToValidUTF8(c, "?"))
	for _, l := range strings.Split(c, "\n") {
		if l == "" {
			b.WriteString("#\n")
			continue
		}
		b.WriteString("# " + l + "\n")
	}
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlStrings quotes a list of strings as a TOML array.
func tomlStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = tomlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// tomlKey quotes a key when it is not a bare key.
func tomlKey(k string) string {
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return tomlString(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}
