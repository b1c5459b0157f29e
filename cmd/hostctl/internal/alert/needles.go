package alert

import (
	"bytes"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A Needle is text that a line must contain for a regex to match it:
// the log rules' prefilter looks for needles in whole chunks of output
// and runs the regexes only on the lines where it finds one. Fold is for
// (?i): the text is lower-case ASCII and found in any case.
type Needle struct {
	Text string
	Fold bool
}

// Index returns the index of the first instance of n in b, or -1.
func (n Needle) Index(b []byte) int {
	if !n.Fold {
		return bytes.Index(b, []byte(n.Text))
	}
	return n.IndexRare(b, 0)
}

// IndexRare is Index that finds the needle's byte at offset rare first
// (with IndexByte, and for a folded letter once per case), then compares
// the rest. Choose a byte that is rare in b: each instance of it that is
// not the needle costs a call. Where every byte of a needle is common
// in b (a key=value needle in an access log), the rarest one is still
// far cheaper than the first one.
func (n Needle) IndexRare(b []byte, rare int) int {
	t := n.Text
	if len(b) < len(t) {
		return -1
	}
	// The rare byte's instances where the needle fits around them.
	last := len(b) - len(t) + rare + 1
	if !n.Fold {
		c, first, end := t[rare], t[0], t[len(t)-1]
		for off := rare; off < last; {
			j := bytes.IndexByte(b[off:last], c)
			if j < 0 {
				return -1
			}
			start := off + j - rare
			// First and last bytes before the call that compares all.
			if b[start] == first && b[start+len(t)-1] == end && string(b[start:start+len(t)]) == t {
				return start
			}
			off += j + 1
		}
		return -1
	}
	c0, c1 := t[rare], t[rare]
	if 'a' <= c0 && c0 <= 'z' {
		c1 = c0 - 'a' + 'A'
	}
	next := func(c byte, off int) int {
		if i := bytes.IndexByte(b[off:last], c); i >= 0 {
			return off + i
		}
		return last
	}
	lo, up := -1, -1 // the next c0 and c1 at or after off; last: none
	if c1 == c0 {
		up = last
	}
	for off := rare; off < last; {
		if lo < off {
			lo = next(c0, off)
		}
		if up < off {
			up = next(c1, off)
		}
		i := min(lo, up)
		if i >= last {
			return -1
		}
		if start := i - rare; asciiEqualFold(b[start:start+len(t)], t) {
			return start
		}
		off = i + 1
	}
	return -1
}

func asciiEqualFold(b []byte, lower string) bool {
	for i := range len(b) {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// needlesOf returns needles of which every text the regex s matches
// contains at least one, or ok false when it has none: a regex that can
// match without any fixed text (`^$`, `\d+`, `a*`), or whose only fixed
// text is one that a byte search cannot find the way RE2 does (see
// literalNeedle). The prefilter then reads every line for that rule.
func needlesOf(s string) (ns []Needle, ok bool) {
	re, err := syntax.Parse(s, syntax.Perl) // as regexp.Compile parses
	if err != nil {
		return nil, false
	}
	return required(re.Simplify())
}

// required is needlesOf for a parsed regex.
func required(re *syntax.Regexp) ([]Needle, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		n, ok := literalNeedle(re.Rune, re.Flags&syntax.FoldCase != 0)
		if !ok {
			return nil, false
		}
		return []Needle{n}, true
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min < 1 {
			return nil, false
		}
		return required(re.Sub[0])
	case syntax.OpConcat:
		// Every part must match, so any part's needles do: take the
		// most selective.
		var best []Needle
		for _, sub := range re.Sub {
			if ns, ok := required(sub); ok && better(ns, best) {
				best = ns
			}
		}
		return best, best != nil
	case syntax.OpAlternate:
		// One branch matches: a line holds a needle of one of them.
		var all []Needle
		for _, sub := range re.Sub {
			ns, ok := required(sub)
			if !ok {
				return nil, false
			}
			all = append(all, ns...)
		}
		return all, true
	}
	// Classes, any char, anchors, empty, x* and x?: no fixed text.
	return nil, false
}

// better reports whether needles a are more selective than b: a longer
// shortest needle, then fewer needles.
func better(a, b []Needle) bool {
	if b == nil {
		return true
	}
	shortest := func(ns []Needle) int {
		m := len(ns[0].Text)
		for _, n := range ns[1:] {
			m = min(m, len(n.Text))
		}
		return m
	}
	if sa, sb := shortest(a), shortest(b); sa != sb {
		return sa > sb
	}
	return len(a) < len(b)
}

// literalNeedle is the needle of a literal's runes: the longest run of
// them that a byte search finds exactly where RE2 would match. RE2 reads
// an invalid UTF-8 byte as U+FFFD, so a literal U+FFFD matches bytes that
// are not its encoding; and under (?i) a rune matches every rune of its
// case-folding orbit, which for k and s includes the Kelvin sign and the
// long s: only runes whose orbit is plain ASCII letters stay in a folded
// needle. Any run of a literal's runes is in every match, so the needle
// is the longest usable run.
func literalNeedle(runes []rune, fold bool) (Needle, bool) {
	usable := func(r rune) bool {
		if r == utf8.RuneError {
			return false
		}
		if !fold {
			return true
		}
		for f := unicode.SimpleFold(r); ; f = unicode.SimpleFold(f) {
			if f >= utf8.RuneSelf || r >= utf8.RuneSelf {
				return false
			}
			if f == r {
				return true
			}
		}
	}
	best, start := "", 0
	for i := 0; i <= len(runes); i++ {
		if i < len(runes) && usable(runes[i]) {
			continue
		}
		if run := string(runes[start:i]); len(run) > len(best) {
			best = run
		}
		start = i + 1
	}
	if best == "" {
		return Needle{}, false
	}
	if fold {
		best = strings.ToLower(best)
	}
	return Needle{Text: best, Fold: fold}, true
}

// Needles returns needles of which every line the rule can match holds
// at least one (so the lines holding none need no regex), or ok false
// when one of its match regexes has none (see needlesOf). Validate must
// have succeeded.
func (r *LogRule) Needles() (ns []Needle, ok bool) { return r.needles, r.needlesOK }

// ruleNeedles is the union of the match regexes' needles.
func ruleNeedles(match []string) ([]Needle, bool) {
	var all []Needle
	for _, s := range match {
		ns, ok := needlesOf(s)
		if !ok {
			return nil, false
		}
		all = append(all, ns...)
	}
	return Dedup(all), len(all) > 0
}

// Dedup drops needles that another needle makes redundant: a line
// holding "Traceback (most recent call last):" holds "Traceback", so
// searching for the shorter one is enough.
func Dedup(ns []Needle) []Needle {
	covers := func(a, b Needle) bool { // a found wherever b is
		switch {
		case a.Fold:
			return strings.Contains(strings.ToLower(b.Text), a.Text)
		case b.Fold:
			return false
		default:
			return strings.Contains(b.Text, a.Text)
		}
	}
	var out []Needle
	for i, b := range ns {
		redundant := false
		for j, a := range ns {
			if i != j && covers(a, b) && (!covers(b, a) || j < i) {
				redundant = true
				break
			}
		}
		if !redundant {
			out = append(out, b)
		}
	}
	return slices.Clip(out)
}
