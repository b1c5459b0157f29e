package cli

import (
	"strings"
	"unicode/utf8"
)

// terminalText returns s without what a terminal acts on instead of
// showing: escape sequences (CSI, OSC, DCS, SOS, PM and APC strings, and
// the short ESC ones) removed whole, their 8-bit C1 forms too, and every
// other C0 or C1 control character but tab and newline (DEL included).
// Program output reaches the admin's terminal through hostctl status and
// tail, and the app's user writes it: a window title, a clear screen, a
// carriage return over a line, or OSC 52 (write the clipboard) must stay
// text. Bytes that are not UTF-8 become U+FFFD (a lone 0x9B byte is a
// CSI to a terminal that reads 8-bit controls). The log files keep every
// byte.
func terminalText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		kind := rune(0) // the sequence that starts here: '[' CSI, ']' OSC, 'P' a string, 'e' another ESC one
		switch {
		case r == 0x1b && i+1 < len(rs):
			i++
			switch c := rs[i]; c {
			case '[', ']':
				kind = c
			case 'P', 'X', '^', '_':
				kind = 'P'
			default:
				kind = 'e'
			}
		case r == 0x1b:
			continue
		case r == 0x9b:
			kind = '['
		case r == 0x9d:
			kind = ']'
		case r == 0x90 || r == 0x98 || r == 0x9e || r == 0x9f:
			kind = 'P'
		case r == '\t' || r == '\n':
			b.WriteRune(r)
			continue
		case isControl(r):
			continue
		default:
			b.WriteRune(r)
			continue
		}
		i = skipSequence(rs, i, kind)
	}
	return b.String()
}

// skipSequence returns the index of the last rune of the escape sequence
// of kind whose introducer ends at i.
func skipSequence(rs []rune, i int, kind rune) int {
	switch kind {
	case '[': // parameters and intermediates 0x20-0x3F, then a final byte 0x40-0x7E
		for i+1 < len(rs) && rs[i+1] >= 0x20 && rs[i+1] <= 0x3f {
			i++
		}
		if i+1 < len(rs) && rs[i+1] >= 0x40 && rs[i+1] <= 0x7e {
			i++
		}
	case ']', 'P': // a string up to BEL, ST (ESC \) or the 8-bit ST, or the end
		for i+1 < len(rs) {
			i++
			switch {
			case rs[i] == 0x07 || rs[i] == 0x9c:
				return i
			case rs[i] == 0x1b && i+1 < len(rs) && rs[i+1] == '\\':
				return i + 1
			}
		}
	case 'e': // ESC, intermediates 0x20-0x2F, a final byte: ESC ( B, ESC c
		for rs[i] >= 0x20 && rs[i] <= 0x2f && i+1 < len(rs) {
			i++
		}
	}
	return i
}

// isControl: C0, DEL and C1.
func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f }

// cell is terminalText for one cell of a table: a tab or newline inside
// would break its columns, so they become spaces.
func cell(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' {
			return ' '
		}
		return r
	}, terminalText(s))
}
