package deploy

import (
	"regexp"
	"slices"
	"strings"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

// pyError matches the last line of a traceback: "ModuleNotFoundError: No
// module named 'x'", "django.core.exceptions.ImproperlyConfigured: ...".
var pyError = regexp.MustCompile(`^\s*[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning|Configured|DoesNotExist)\b(: .*)?$`)

// ErrorLines returns the distinct lines of text that end a traceback,
// in order: the cause a person looks for, which a crashing gunicorn's
// own traceback (HaltServer) buries above the last lines.
func ErrorLines(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if pyError.MatchString(l) && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// Reason says in one line why a deploy or a release failed, from its
// error text (the step, its exit status, then its last lines): the first
// line, and the first line that ends a traceback when the first line
// does not already say it ("gunicorn@b did not start: FATAL ...:
// ModuleNotFoundError: No module named 'x'").
func Reason(errText string) string {
	first, _, _ := strings.Cut(errText, "\n")
	first, _, _ = strings.Cut(first, "; last lines:")
	first = strings.TrimSpace(first)
	if errs := ErrorLines(errText); len(errs) > 0 && !strings.Contains(first, errs[0]) {
		first += ": " + errs[0]
	}
	return first
}

// LastLines returns what a person reads first of a failure's error text
// (at most n lines): the lines that end a traceback, then the last lines
// of the rest (the step's output; the first line, which Reason says, and
// the build log's path left out).
func LastLines(errText string, n int) []string {
	out := ErrorLines(errText)
	lines := strings.Split(strings.TrimRight(errText, "\n"), "\n")[1:]
	var rest []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "build log: ") || slices.Contains(out, l) {
			continue
		}
		rest = append(rest, l)
	}
	if room := n - len(out); room <= 0 {
		return out[:n]
	} else if len(rest) > room {
		rest = rest[len(rest)-room:]
	}
	return append(out, rest...)
}

// Wire is r as GET /v1/releases and hostctl releases show it: a failed
// one with its Reason; the live one with when it went live (its end of
// preparation when recorded before hostctl kept that).
func (r Release) Wire() apitype.Release {
	a := apitype.Release{ID: r.ID, SHA: r.SHA, Source: r.Source, Created: r.Created.UTC(),
		BuildSeconds: r.Duration.Seconds(), State: string(r.State), Error: r.Error, Slot: r.Slot}
	if r.State == Failed {
		a.Reason = Reason(r.Error)
	}
	if r.State == Live {
		a.LiveSince = r.Since.UTC()
		if r.Since.IsZero() {
			a.LiveSince = r.Created.Add(r.Duration).UTC()
		}
	}
	return a
}
