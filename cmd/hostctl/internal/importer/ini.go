package importer

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// This file reads supervisord.conf the way Python supervisor 4.2 does:
// its UnhosedConfigParser is Python 3's RawConfigParser with
// inline_comment_prefixes (";", "#") and strict=False, and [include]
// files are read into the same parser (supervisor/options.py,
// ServerOptions.read_config).

// iniValue is one option's raw text and where it was written.
type iniValue struct {
	raw  string
	file string
	line int
	// used is set when the translation consumed the option; what is left
	// unused is listed as not translated.
	used bool
}

// here is supervisord's %(here)s for this value: the directory of the
// file it was read from (expand_here runs after each file is read).
func (v *iniValue) here() string { return filepath.Dir(v.file) }

// iniSection is one [section] with its options in file order.
type iniSection struct {
	name  string
	file  string
	line  int
	keys  map[string]*iniValue
	order []string
}

// get returns the option, falling back to [DEFAULT] as RawConfigParser
// does, and marks it used.
func (s *iniSection) get(ini *iniFile, key string) (*iniValue, bool) {
	if v, ok := s.keys[key]; ok {
		v.used = true
		return v, true
	}
	if v, ok := ini.defaults.keys[key]; ok {
		v.used = true
		return v, true
	}
	return nil, false
}

// iniFile is everything read, the main file and its includes.
type iniFile struct {
	sections map[string]*iniSection
	order    []string
	defaults *iniSection // [DEFAULT]
	files    []string    // every file read, main first
	warnings []string    // what supervisord would warn about (includes matching nothing)
}

func newINI() *iniFile {
	return &iniFile{sections: map[string]*iniSection{}, defaults: &iniSection{name: "DEFAULT", keys: map[string]*iniValue{}}}
}

// section returns the named section, or nil.
func (f *iniFile) section(name string) *iniSection { return f.sections[name] }

// sectionsWithPrefix returns the sections whose names start with prefix,
// in the order they were first read.
func (f *iniFile) sectionsWithPrefix(prefix string) []*iniSection {
	var out []*iniSection
	for _, n := range f.order {
		if strings.HasPrefix(n, prefix) {
			out = append(out, f.sections[n])
		}
	}
	return out
}

// readSupervisord reads path and the files its [include] section names.
// As in supervisord 4.2 only the main file's [include] is followed (an
// included file's [include] replaces the files option but is not read
// again); its globs are relative to the main file's directory and are
// read in sorted order; one that matches nothing is a warning.
func readSupervisord(path string) (*iniFile, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	f := newINI()
	if err := f.readFile(abs); err != nil {
		return nil, err
	}
	inc := f.section("include")
	if inc == nil {
		return f, nil
	}
	fv, ok := inc.keys["files"]
	if !ok {
		return nil, fmt.Errorf("%s: [include] has no files setting (supervisord refuses this file)", abs)
	}
	fv.used = true
	files, err := expandPy(fv.raw, pyVars{here: fv.here()}, nil)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: [include] files: %v", fv.file, fv.line, err)
	}
	base := filepath.Dir(abs)
	for _, pattern := range strings.Fields(files.literal()) {
		pattern = filepath.Join(base, pattern)
		names, err := filepath.Glob(pattern)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: [include] files: %q: %v", fv.file, fv.line, pattern, err)
		}
		if len(names) == 0 {
			f.warnings = append(f.warnings, fmt.Sprintf("No file matches via include %q", pattern))
			continue
		}
		slices.Sort(names)
		for _, n := range names {
			if err := f.readFile(n); err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

func (f *iniFile) readFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	f.files = append(f.files, path)
	return f.parse(path, string(data))
}

var (
	sectionRE = regexp.MustCompile(`^\[(.+)\]`)
	optionRE  = regexp.MustCompile(`^(.*?)\s*([=:])\s*(.*)$`)
)

// parse is RawConfigParser._read (Python 3.11) with comment_prefixes
// ("#", ";"), inline_comment_prefixes (";", "#"), empty_lines_in_values
// and strict=False: a section or option read again is merged or replaced.
func (f *iniFile) parse(file, data string) error {
	data = strings.ReplaceAll(data, "\r\n", "\n")
	lines := strings.SplitAfter(data, "\n")
	var cur *iniSection
	var optname string
	var optval *iniValue
	var parts []string
	indentLevel := 0
	flush := func() {
		if optval != nil {
			optval.raw = strings.TrimRightFunc(strings.Join(parts, "\n"), unicode.IsSpace)
		}
		optval, parts = nil, nil
	}
	for i, line := range lines {
		lineno := i + 1
		line = strings.TrimSuffix(line, "\n")
		commentStart := inlineCommentStart(line)
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "#") || strings.HasPrefix(t, ";") {
			commentStart = 0
		}
		value := line
		if commentStart >= 0 {
			value = line[:commentStart]
		}
		value = strings.TrimFunc(value, unicode.IsSpace)
		if value == "" {
			// empty_lines_in_values: an empty line (not a comment) is
			// part of the value being read.
			if commentStart < 0 && cur != nil && optname != "" && optval != nil {
				parts = append(parts, "")
			}
			continue
		}
		curIndent := strings.IndexFunc(line, func(r rune) bool { return !unicode.IsSpace(r) })
		if curIndent < 0 {
			curIndent = 0
		}
		if cur != nil && optname != "" && curIndent > indentLevel {
			parts = append(parts, value)
			continue
		}
		indentLevel = curIndent
		if m := sectionRE.FindStringSubmatch(value); m != nil {
			flush()
			name := m[1]
			switch {
			case name == "DEFAULT":
				cur = f.defaults
			case f.sections[name] != nil:
				cur = f.sections[name]
			default:
				cur = &iniSection{name: name, file: file, line: lineno, keys: map[string]*iniValue{}}
				f.sections[name] = cur
				f.order = append(f.order, name)
			}
			optname = ""
			continue
		}
		if cur == nil {
			return fmt.Errorf("%s:%d: file contains no section headers (supervisord refuses it): %q", file, lineno, line)
		}
		m := optionRE.FindStringSubmatch(value)
		if m == nil || strings.TrimRightFunc(m[1], unicode.IsSpace) == "" {
			return fmt.Errorf("%s:%d: not an option or a section (supervisord refuses the file): %q", file, lineno, line)
		}
		flush()
		optname = strings.ToLower(strings.TrimRightFunc(m[1], unicode.IsSpace))
		v := &iniValue{file: file, line: lineno}
		if _, seen := cur.keys[optname]; !seen {
			cur.order = append(cur.order, optname)
		}
		cur.keys[optname] = v
		optval, parts = v, []string{strings.TrimSpace(m[3])}
	}
	flush()
	return nil
}

// inlineCommentStart is RawConfigParser's search for an inline comment:
// ";" or "#" at the start of the line or after whitespace. It reproduces
// Python's loop, which looks at the first qualifying occurrence found in
// one round over both prefixes (so "a;b ;c #d" is cut at " #", not " ;").
// It returns -1 when there is none.
func inlineCommentStart(line string) int {
	idx := map[string]int{";": -1, "#": -1}
	const none = int(^uint(0) >> 1)
	start := none
	for start == none && len(idx) > 0 {
		next := map[string]int{}
		for _, p := range []string{";", "#"} {
			from, ok := idx[p]
			if !ok {
				continue
			}
			j := strings.Index(line[from+1:], p)
			if j < 0 {
				continue
			}
			j += from + 1
			next[p] = j
			if j == 0 || unicode.IsSpace(rune(line[j-1])) {
				start = min(start, j)
			}
		}
		idx = next
	}
	if start == none {
		return -1
	}
	return start
}
