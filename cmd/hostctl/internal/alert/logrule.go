package alert

import (
	"bytes"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// LogRule is one [[alerts.log_rule]] table: alert when programs print
// lines that match, more often than a threshold. A Python traceback
// ("Traceback (most recent call last):" up to its exception line) counts
// as one event, matched as a whole.
type LogRule struct {
	// Name identifies the rule: the alert's key is "log_rule:NAME".
	// Required, unique.
	Name string `toml:"name"`
	// Programs are the programs (or processes, or program groups) whose
	// output the rule reads, as the CLI names them. Default: all.
	Programs []string `toml:"programs"`
	// Stream is "stdout", "stderr" or "both". A program with
	// redirect_stderr has only stdout. Default: "both".
	Stream string `toml:"stream"`
	// Match are RE2 regexes (https://github.com/google/re2/wiki/Syntax);
	// an event matches when any of them matches it. At least one.
	Match []string `toml:"match"`
	// Ignore are RE2 regexes; an event that any of them matches does not
	// count, even when Match matches it.
	Ignore []string `toml:"ignore"`
	// Threshold is "N/WINDOW": more than N matching events within WINDOW
	// triggers the alert ("10/5m"). Default: "0/5m" (the first event).
	Threshold string `toml:"threshold"`
	// Severity of the alert: critical, error, warning or info. Default:
	// error.
	Severity Severity `toml:"severity"`
	// Quiet resolves the alert once the events have stayed at or below
	// the threshold this long. Default: the threshold's window.
	Quiet time.Duration `toml:"quiet"`
	// Notes is free text for the person on call (what the errors usually
	// mean, what to do); it goes with the alert.
	Notes string `toml:"notes"`

	// Set by Validate.
	match, ignore patterns
	needles       []Needle // see Needles
	needlesOK     bool
	count         int
	window        time.Duration
}

// Log rule streams.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	StreamBoth   = "both"
)

// DefaultLogRule returns a log_rule table's defaults (the config reader
// fills each [[alerts.log_rule]] from it).
func DefaultLogRule() LogRule {
	return LogRule{Stream: StreamBoth, Threshold: "0/5m", Severity: Error}
}

// Matches reports whether an event (a line, or a whole traceback) counts
// for the rule: a match regex matches it and no ignore regex does.
// Validate must have succeeded.
func (r *LogRule) Matches(event string) bool { return r.MatchesBytes([]byte(event)) }

// MatchesBytes is Matches for an event in bytes.
func (r *LogRule) MatchesBytes(event []byte) bool {
	return r.match.any(event) && !r.ignore.any(event)
}

// patterns are a list of regexes, those that are plain text (most of
// them: "Traceback", "QueuePool") kept as text and found with
// bytes.Contains, which is many times faster than a regex. A regex runs
// only on text that holds one of its needles (needlesOf), when it has
// any: "(?i)foreign ?key" has no literal prefix, and RE2 would read the
// whole line for it.
type patterns struct {
	lits    [][]byte
	res     []*regexp.Regexp
	needles [][]Needle // per regex in res; nil: none
}

func (p *patterns) any(b []byte) bool {
	for _, l := range p.lits {
		if bytes.Contains(b, l) {
			return true
		}
	}
	for i, re := range p.res {
		if ns := p.needles[i]; ns != nil && !holdsAny(b, ns) {
			continue
		}
		if re.Match(b) {
			return true
		}
	}
	return false
}

// holdsAny reports whether b holds one of ns.
func holdsAny(b []byte, ns []Needle) bool {
	for _, n := range ns {
		if n.Index(b) >= 0 {
			return true
		}
	}
	return false
}

// add compiles s into p.
func (p *patterns) add(s string) error {
	re, err := regexp.Compile(s)
	if err != nil {
		return err
	}
	if lits, ok := literals(s); ok {
		p.lits = append(p.lits, lits...)
		return nil
	}
	p.res = append(p.res, re)
	ns, _ := needlesOf(s)
	p.needles = append(p.needles, ns)
	return nil
}

// literals returns the strings s matches when it is plain text or an
// alternation of plain texts ("ERROR|CRITICAL"), case-sensitive.
func literals(s string) ([][]byte, bool) {
	re, err := syntax.Parse(s, syntax.Perl)
	if err != nil {
		return nil, false
	}
	re = re.Simplify()
	lit := func(re *syntax.Regexp) ([]byte, bool) {
		// RE2 reads an invalid UTF-8 byte as U+FFFD: a literal U+FFFD
		// matches more than its encoding.
		if re.Op != syntax.OpLiteral || re.Flags&syntax.FoldCase != 0 || len(re.Rune) == 0 || slices.Contains(re.Rune, utf8.RuneError) {
			return nil, false
		}
		return []byte(string(re.Rune)), true
	}
	if l, ok := lit(re); ok {
		return [][]byte{l}, true
	}
	if re.Op != syntax.OpAlternate {
		return nil, false
	}
	var out [][]byte
	for _, sub := range re.Sub {
		l, ok := lit(sub)
		if !ok {
			return nil, false
		}
		out = append(out, l)
	}
	return out, true
}

// Reads reports whether the rule reads stream ("stdout" or "stderr").
func (r *LogRule) Reads(stream string) bool { return r.Stream == StreamBoth || r.Stream == stream }

// Limit is the threshold: more than Count events within Window trigger.
// Validate must have succeeded.
func (r *LogRule) Limit() (count int, window time.Duration) { return r.count, r.window }

// QuietFor is how long the events must stay at or below the threshold
// before the alert resolves.
func (r *LogRule) QuietFor() time.Duration {
	if r.Quiet > 0 {
		return r.Quiet
	}
	return r.window
}

// ParseThreshold parses "N/WINDOW" ("10/5m"): a count of at least 0 and a
// positive window (Go durations, or days: "1d").
func ParseThreshold(s string) (int, time.Duration, error) {
	n, w, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not COUNT/WINDOW (example: \"10/5m\": more than 10 in 5 minutes)", s)
	}
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || count < 0 {
		return 0, 0, fmt.Errorf("%q: the count %q must be a whole number of 0 or more (example: \"10/5m\")", s, n)
	}
	w = strings.TrimSpace(w)
	var window time.Duration
	if d, ok := strings.CutSuffix(w, "d"); ok {
		days, derr := strconv.Atoi(d)
		err, window = derr, time.Duration(days)*24*time.Hour
	} else {
		window, err = time.ParseDuration(w)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%q: the window %q is not a duration (example: \"10/5m\")", s, w)
	}
	if window <= 0 {
		return 0, 0, fmt.Errorf("%q: the window must be longer than zero (example: \"10/5m\")", s)
	}
	return count, window, nil
}

// validate checks the rule at key ("log_rule[0]") and compiles its
// regexes. It reads nothing.
func (r *LogRule) validate(fe *fieldErrors, key string) {
	if r.Name == "" {
		fe.add(key+".name", "required: a name for this rule (e.g. \"unknown-errors\")")
	}
	switch r.Stream {
	case StreamStdout, StreamStderr, StreamBoth:
	default:
		fe.add(key+".stream", "%q is not stdout, stderr or both", r.Stream)
	}
	compile := func(field string, res []string) patterns {
		var p patterns
		for i, s := range res {
			if err := p.add(s); err != nil {
				fe.add(fmt.Sprintf("%s.%s[%d]", key, field, i), "%q is not an RE2 regex: %v", s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			}
		}
		return p
	}
	if len(r.Match) == 0 {
		fe.add(key+".match", "required: at least one RE2 regex (e.g. [\"Traceback\", \"ERROR\"])")
	}
	r.match = compile("match", r.Match)
	r.needles, r.needlesOK = ruleNeedles(r.Match)
	r.ignore = compile("ignore", r.Ignore)
	for i, p := range r.Programs {
		if p == "" {
			fe.add(fmt.Sprintf("%s.programs[%d]", key, i), "empty program name")
		}
	}
	var err error
	if r.count, r.window, err = ParseThreshold(r.Threshold); err != nil {
		fe.add(key+".threshold", "%v", err)
	}
	if r.Quiet < 0 {
		fe.add(key+".quiet", "must not be negative (0: the threshold's window)")
	}
	switch r.Severity {
	case Critical, Error, Warning, Info:
	default:
		fe.add(key+".severity", "%q is not critical, error, warning or info", r.Severity)
	}
}
