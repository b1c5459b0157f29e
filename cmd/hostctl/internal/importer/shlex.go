package importer

import (
	"fmt"
	"strings"
)

// supervisord parses environment= with Python's shlex in its legacy
// (non-POSIX) mode (supervisor/datatypes.py, dict_of_key_value_pairs):
// word characters are letters, digits, "_" and "/.+-():"; a quoted
// string is one token, quotes included; "#" starts a comment to the end
// of the line; every other character is a token of its own. The tokens
// are read three at a time (KEY, "=", VALUE) and the fourth (normally the
// comma) is skipped, whatever it is; quotes are stripped from both ends
// of the value.

const shlexWordChars = "abcdfeghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_" + "/.+-():"

// legacyShlex splits s as shlex.shlex(s) does with posix=False.
func legacyShlex(s string) ([]string, error) {
	var tokens []string
	rs := []rune(s)
	i := 0
	next := func() (rune, bool) {
		if i >= len(rs) {
			return 0, false
		}
		r := rs[i]
		i++
		return r, true
	}
	skipLine := func() {
		for i < len(rs) && rs[i] != '\n' {
			i++
		}
		if i < len(rs) {
			i++
		}
	}
	isWS := func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }
	isWord := func(r rune) bool { return strings.ContainsRune(shlexWordChars, r) }
	for {
		// state ' ': between tokens.
		var tok []rune
		state := ' '
	token:
		for {
			r, ok := next()
			switch state {
			case ' ':
				switch {
				case !ok:
					break token
				case isWS(r):
					continue
				case r == '#':
					skipLine()
				case isWord(r):
					tok, state = []rune{r}, 'a'
				case r == '\'' || r == '"':
					tok, state = []rune{r}, r
				default:
					tok = []rune{r}
					break token
				}
			case 'a':
				switch {
				case !ok:
					break token
				case isWS(r):
					break token
				case r == '#':
					// Legacy mode: the comment is skipped and the word
					// goes on with the next line.
					skipLine()
				case isWord(r) || r == '\'' || r == '"':
					tok = append(tok, r)
				default:
					i-- // pushed back: a token of its own
					break token
				}
			default: // inside quotes
				if !ok {
					return nil, fmt.Errorf("no closing quotation")
				}
				tok = append(tok, r)
				if r == state {
					break token
				}
			}
		}
		if len(tok) == 0 {
			return tokens, nil
		}
		tokens = append(tokens, string(tok))
	}
}

// envPair is one KEY=value of environment=, in the order written.
type envPair struct {
	key, value string
}

// parseSupervisordEnv is dict_of_key_value_pairs: KEY="val",KEY2=val2.
// A key given twice keeps the last value, in the first one's place.
func parseSupervisordEnv(s string) ([]envPair, error) {
	tokens, err := legacyShlex(s)
	if err != nil {
		return nil, fmt.Errorf("%v in %q", err, s)
	}
	var out []envPair
	at := map[string]int{}
	for i := 0; i < len(tokens); i += 4 {
		if i+3 > len(tokens) || tokens[i+1] != "=" {
			return nil, fmt.Errorf("unexpected end of key/value pairs in %q (supervisord refuses it; quote values that hold characters other than letters, digits and _/.+-():)", s)
		}
		k, v := tokens[i], strings.Trim(tokens[i+2], `'"`)
		if j, ok := at[k]; ok {
			out[j].value = v
			continue
		}
		at[k] = len(out)
		out = append(out, envPair{k, v})
	}
	return out, nil
}
