package importer

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// supervisord expands every value with Python's "%" operator and a dict
// of names (supervisor/options.py, expand): %(name)s, %(name)d,
// %(name)02d, and %% for a literal %. An unknown name or a badly formed
// format makes supervisord refuse the file.

// seg is one piece of an expanded value: literal text, or a reference to
// a variable that hostctl expands itself (${INSTANCE}, ${NAME}, or a
// variable of hostctl's environment).
type seg struct {
	text string
	ref  string
}

// expanded is a value after supervisord's expansion, kept in pieces so
// that a literal "$" can be escaped for hostctl while references stay
// references.
type expanded []seg

// literal returns the text with references written ${NAME}.
func (e expanded) literal() string {
	var b strings.Builder
	for _, s := range e {
		if s.ref != "" {
			b.WriteString("${" + s.ref + "}")
		} else {
			b.WriteString(s.text)
		}
	}
	return b.String()
}

// hostctl returns the value as a hostctl string value: "$" doubled in the
// literal text (hostctl expands ${VAR} in every string and reads $$ as $),
// references written ${NAME}.
func (e expanded) hostctl() string {
	var b strings.Builder
	for _, s := range e {
		if s.ref != "" {
			b.WriteString("${" + s.ref + "}")
		} else {
			b.WriteString(strings.ReplaceAll(s.text, "$", "$$"))
		}
	}
	return b.String()
}

// hasRef reports whether a reference is among the pieces.
func (e expanded) hasRef() bool {
	for _, s := range e {
		if s.ref != "" {
			return true
		}
	}
	return false
}

// pyVars are the names supervisord offers to one value.
type pyVars struct {
	here         string
	hostNodeName string
	programName  string // "" outside [program:x]
	groupName    string
	// processNum is the number of this process; nil for a program with
	// several instances, where %(process_num)d becomes ${INSTANCE}.
	processNum *int
	numprocs   int
	// nameRef: in process_name, %(program_name)s becomes ${NAME}.
	nameRef bool
	// env holds ENV_X values known at import time (the [supervisord] and
	// [program:x] environment). Other ENV_X become ${X}, a variable of
	// hostctl's environment, if envAsRef; else they come from the
	// importer's own environment ([include] files).
	env      map[string]expanded
	envAsRef bool
}

// expandPy expands s as supervisord does. note is told about what is
// only approximated (a zero-padded instance number); it may be nil.
func expandPy(s string, v pyVars, note func(string)) (expanded, error) {
	var out expanded
	var lit strings.Builder
	flushLit := func() {
		if lit.Len() > 0 {
			out = append(out, seg{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			lit.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			return nil, fmt.Errorf("format string %q is badly formatted: incomplete format", s)
		}
		if s[i] == '%' {
			lit.WriteByte('%')
			continue
		}
		if s[i] != '(' {
			return nil, fmt.Errorf("format string %q is badly formatted: %%%c needs a name, as in %%(program_name)s (write %%%% for a literal %%)", s, s[i])
		}
		// Python counts nested parentheses in the key.
		depth, j := 1, i+1
		for ; j < len(s) && depth > 0; j++ {
			switch s[j] {
			case '(':
				depth++
			case ')':
				depth--
			}
		}
		if depth > 0 {
			return nil, fmt.Errorf("format string %q is badly formatted: incomplete format key", s)
		}
		name := s[i+1 : j-1]
		i = j
		spec := ""
		for i < len(s) && strings.IndexByte("#0- +", s[i]) >= 0 {
			spec += string(s[i])
			i++
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			spec += string(s[i])
			i++
		}
		if i < len(s) && s[i] == '.' {
			spec += "."
			i++
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				spec += string(s[i])
				i++
			}
		}
		if i < len(s) && s[i] == '*' {
			return nil, fmt.Errorf("format string %q is badly formatted: * wants int", s)
		}
		for i < len(s) && strings.IndexByte("hlL", s[i]) >= 0 {
			i++
		}
		if i >= len(s) {
			return nil, fmt.Errorf("format string %q is badly formatted: incomplete format", s)
		}
		conv := s[i]
		if strings.IndexByte("diouxXeEfFgGcrsa", conv) < 0 {
			return nil, fmt.Errorf("format string %q is badly formatted: unsupported format character %q", s, conv)
		}
		val, ref, err := v.lookup(name)
		if err != nil {
			return nil, fmt.Errorf("format string %q contains names (%s) which cannot be expanded: %v", s, name, err)
		}
		if ref != "" {
			if spec != "" && note != nil {
				note(fmt.Sprintf("%%(%s)%s%c: hostctl's ${%s} has no padding or width; the name is written without it", name, spec, conv, ref))
			}
			if strings.IndexByte("dis", conv) < 0 && note != nil {
				note(fmt.Sprintf("%%(%s)%c: written as ${%s} in decimal", name, conv, ref))
			}
			flushLit()
			out = append(out, seg{ref: ref})
			continue
		}
		if e, ok := val.(expanded); ok {
			if e.hasRef() {
				if (conv != 's' || spec != "") && note != nil {
					note(fmt.Sprintf("%%(%s)%s%c: written as the variable's value, without formatting", name, spec, conv))
				}
				flushLit()
				out = append(out, e...)
				continue
			}
			val = e.literal()
		}
		str, err := pyConvert(val, spec, conv)
		if err != nil {
			return nil, fmt.Errorf("format string %q: %%(%s)%c: %v", s, name, conv, err)
		}
		lit.WriteString(str)
	}
	flushLit()
	return out, nil
}

// lookup returns a name's value (a string or an int), or the hostctl
// variable it becomes.
func (v pyVars) lookup(name string) (val any, ref string, err error) {
	switch name {
	case "here":
		return v.here, "", nil
	case "host_node_name":
		return v.hostNodeName, "", nil
	}
	if env, ok := strings.CutPrefix(name, "ENV_"); ok {
		if x, ok := v.env[env]; ok {
			return x, "", nil
		}
		if v.envAsRef {
			return nil, env, nil
		}
		if x, ok := os.LookupEnv(env); ok {
			return x, "", nil
		}
		return nil, "", fmt.Errorf("%s is not set in the environment", env)
	}
	if v.programName != "" {
		switch name {
		case "program_name":
			if v.nameRef {
				return nil, "NAME", nil
			}
			return v.programName, "", nil
		case "group_name":
			return v.groupName, "", nil
		case "process_num":
			if v.processNum == nil {
				return nil, "INSTANCE", nil
			}
			return *v.processNum, "", nil
		case "numprocs":
			return v.numprocs, "", nil
		}
	}
	return nil, "", fmt.Errorf("unknown name")
}

// pyConvert formats one value as Python's % operator would.
func pyConvert(val any, spec string, conv byte) (string, error) {
	switch conv {
	case 's':
		return fmt.Sprintf("%"+spec+"s", fmt.Sprint(val)), nil
	case 'r', 'a':
		if s, ok := val.(string); ok {
			return fmt.Sprintf("%"+spec+"s", "'"+s+"'"), nil
		}
		return fmt.Sprintf("%"+spec+"s", fmt.Sprint(val)), nil
	}
	n, ok := val.(int)
	if !ok {
		return "", fmt.Errorf("a number is required, not a string")
	}
	switch conv {
	case 'd', 'i', 'u':
		return fmt.Sprintf("%"+spec+"d", n), nil
	case 'o', 'x', 'X', 'e', 'E', 'f', 'F', 'g', 'G':
		if strings.IndexByte("eEfFgG", conv) >= 0 {
			return fmt.Sprintf("%"+spec+string(conv), float64(n)), nil
		}
		return fmt.Sprintf("%"+spec+string(conv), n), nil
	case 'c':
		return string(rune(n)), nil
	}
	return strconv.Itoa(n), nil
}
