package alert

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// needleCases are regexes and the needles the prefilter takes from them
// (nil: none, every line goes to the regex).
var needleCases = []struct {
	re   string
	want []Needle
}{
	{`Traceback`, []Needle{{Text: "Traceback"}}},
	{`ERROR|CRITICAL`, []Needle{{Text: "ERROR"}, {Text: "CRITICAL"}}},
	{`^ERROR`, []Needle{{Text: "ERROR"}}},
	{`ERROR$`, []Needle{{Text: "ERROR"}}},
	{`^ERROR\b.*$`, []Needle{{Text: "ERROR"}}},
	{`status=5\d\d`, []Needle{{Text: "status=5"}}},
	{`celery\.worker.*(ERROR|CRITICAL)`, []Needle{{Text: "celery.worker"}}},
	{`[A-Z][a-z]+Error: `, []Needle{{Text: "Error: "}}},
	{`(?s)Traceback.*Error`, []Needle{{Text: "Traceback"}}},
	{`TimedOut|TimeError`, []Needle{{Text: "Time"}}},               // RE2 factors the common prefix out
	{`(ERROR|WARN)ING`, []Needle{{Text: "ERROR"}, {Text: "WARN"}}}, // the longer shortest needle
	{`(ERROR|WARN)INGS`, []Needle{{Text: "INGS"}}},                 // the fewer needles
	{`ERR(OR|)`, []Needle{{Text: "ERR"}}},
	{`(?:x{2,}|y+)z`, []Needle{{Text: "z"}}},
	{`(?:x{2,}|y+)`, []Needle{{Text: "x"}, {Text: "y"}}},
	{`(?i)foreign ?key`, []Needle{{Text: "foreign", Fold: true}}},
	{`(?i)ERROR`, []Needle{{Text: "error", Fold: true}}},
	{`(?i)disk`, []Needle{{Text: "di", Fold: true}}}, // (?i)k matches the Kelvin sign, (?i)s the long s
	{`(?i:x)Y`, []Needle{{Text: "x", Fold: true}}},
	{`(?i:x)YZ`, []Needle{{Text: "YZ"}}},
	{`(?i)é`, nil},
	{`naïve`, []Needle{{Text: "naïve"}}},
	{"ab\uFFFDcde", []Needle{{Text: "cde"}}}, // RE2 reads an invalid byte as U+FFFD
	{`\x{FFFD}`, nil},
	{`(?i)sk`, nil},
	{`\d+`, nil},
	{`[Ee]`, []Needle{{Text: "e", Fold: true}}}, // RE2 parses it as (?i)e
	{`[EF]`, nil},
	{`^$`, nil},
	{`.`, nil},
	{`(ERROR)?`, nil},
	{`ERROR|\d`, nil},
	{`x*`, nil},
	{`\bERROR\b|`, nil},
}

func TestNeedlesOf(t *testing.T) {
	for _, tc := range needleCases {
		t.Run(tc.re, func(t *testing.T) {
			got, ok := needlesOf(tc.re)
			if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
				t.Errorf("needles %v (ok %v), want %v", got, ok, tc.want)
			}
		})
	}
}

// needleLines are lines for the cases above, with the bytes that make a
// byte search differ from RE2: other cases, the Kelvin sign, the long s,
// invalid UTF-8.
var needleLines = []string{
	"", "ERROR", "error: x", "ErRoR", "2026-01-01 INFO ok", "ERR", "ERRORING", "WARNING",
	"status=500 bytes=1", "status=200", "celery.worker: ERROR lost", "ValueError: x",
	"Traceback (most recent call last):", "x\nTraceback y Error", "TimedOut", "TimeError",
	"xxz", "yz", "xz", "FOREIGN KEY", "foreignkey", "Foreign key", "DI\u212a", "di\u017f\u212a",
	"\u017f\u212a", "SK", "é", "É", "naïve", "ab\xffcde", "\xff", "\xef\xbf\xbd", "xY", "XY", "Xy",
}

// TestNeedlesNeverHideAMatch: for every case and line, when the regex
// matches the line, the line holds one of its needles; and a rule's
// patterns (needles before the regex, plain text with bytes.Contains)
// answer as RE2 does.
func TestNeedlesNeverHideAMatch(t *testing.T) {
	for _, tc := range needleCases {
		for _, line := range needleLines {
			checkNeedles(t, tc.re, []byte(line))
		}
	}
}

// checkNeedles: when expr matches line, line holds one of its needles;
// patterns of expr match line exactly when RE2 does.
func checkNeedles(t *testing.T, expr string, line []byte) {
	t.Helper()
	re, err := regexp.Compile(expr)
	if err != nil {
		return
	}
	var p patterns
	if err := p.add(expr); err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	if got, want := p.any(line), re.Match(line); got != want {
		t.Errorf("patterns of %q on %q: %v, RE2 %v", expr, line, got, want)
	}
	ns, ok := needlesOf(expr)
	if !ok || !re.Match(line) {
		return
	}
	for _, n := range ns {
		if n.Index(line) >= 0 {
			return
		}
	}
	t.Errorf("%q matches %q, which holds none of its needles %v", expr, line, ns)
}

func FuzzNeedles(f *testing.F) {
	for _, tc := range needleCases {
		for _, line := range needleLines[:8] {
			f.Add(tc.re, []byte(line))
		}
	}
	f.Fuzz(func(t *testing.T, expr string, line []byte) {
		checkNeedles(t, expr, line)
		// A folded needle is found exactly where an ASCII lower-case
		// copy of the line holds it.
		if ns, ok := needlesOf(expr); ok {
			for _, n := range ns {
				checkIndex(t, n, line)
			}
		}
	})
}

// checkIndex: Index and IndexRare, from every offset, find n where
// bytes.Index does (in an ASCII lower-case copy for a folded needle).
func checkIndex(t *testing.T, n Needle, hay []byte) {
	t.Helper()
	want := bytes.Index(hay, []byte(n.Text))
	if n.Fold {
		want = bytes.Index(asciiLower(hay), []byte(n.Text))
	}
	if got := n.Index(hay); got != want {
		t.Errorf("%v in %q: Index %d, want %d", n, hay, got, want)
	}
	for r := range len(n.Text) {
		if got := n.IndexRare(hay, r); got != want {
			t.Errorf("%v in %q: IndexRare(%d) %d, want %d", n, hay, r, got, want)
		}
	}
}

func asciiLower(b []byte) []byte {
	out := bytes.Clone(b)
	for i, c := range out {
		if 'A' <= c && c <= 'Z' {
			out[i] = c + 'a' - 'A'
		}
	}
	return out
}

func TestNeedleIndex(t *testing.T) {
	for _, tc := range []struct {
		hay    string
		needle Needle
	}{
		{"", Needle{Text: "a", Fold: true}},
		{"A", Needle{Text: "a", Fold: true}},
		{"xxERRor", Needle{Text: "error", Fold: true}},
		{"erro", Needle{Text: "error", Fold: true}},
		{"eRRoe ERROR", Needle{Text: "error", Fold: true}},
		{"x-Y-", Needle{Text: "-y", Fold: true}},
		{"Foreign  FOREIGN", Needle{Text: "foreign", Fold: true}},
		{strings.Repeat("e", 100) + "rror", Needle{Text: "error", Fold: true}},
		{"status=200 status=503", Needle{Text: "status=5"}},
		{"status=5", Needle{Text: "status=5"}},
		{"tatus=5", Needle{Text: "status=5"}},
		{"xstatus=", Needle{Text: "status=5"}},
		{strings.Repeat("ERRO", 40) + "ERROR", Needle{Text: "ERROR"}},
		{"ERRORERROR", Needle{Text: "ERROR"}},
	} {
		checkIndex(t, tc.needle, []byte(tc.hay))
	}
}

func TestDedup(t *testing.T) {
	in := []Needle{{Text: "Traceback (most recent call last):"}, {Text: "ERROR"}, {Text: "Traceback"}, {Text: "ERROR"}, {Text: "error", Fold: true}, {Text: "CRITICAL"}}
	want := []Needle{{Text: "error", Fold: true}, {Text: "CRITICAL"}, {Text: "Traceback"}}
	got := Dedup(in)
	slices.SortFunc(got, func(a, b Needle) int { return strings.Compare(a.Text, b.Text) })
	slices.SortFunc(want, func(a, b Needle) int { return strings.Compare(a.Text, b.Text) })
	if !slices.Equal(got, want) {
		t.Errorf("Dedup: %v, want %v", got, want)
	}
}
