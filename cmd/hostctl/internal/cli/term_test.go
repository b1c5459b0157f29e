package cli

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTerminalText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text, tab\tand ünicode", "plain text, tab\tand ünicode"},
		{"\x1b[31mred\x1b[0m", "red"},
		{"\x1b[1;31;40mbold\x1b[m", "bold"},
		{"\x1b[?1049hscreen", "screen"},
		{"a\x1b]0;title\x07b", "ab"},
		{"a\x1b]52;c;cHduZWQ=\x1b\\b", "ab"},
		{"a\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\b", "alinkb"},
		{"a\x1bP1;2qdcs\x1b\\b", "ab"},
		{"a\x1b_apc\x1b\\b", "ab"},
		{"a\u009b2Jb", "ab"},
		{"a\u009d0;t\u009cb", "ab"},
		{"a\u0090dcs\u009cb", "ab"},
		{"a\u0085b\u0080c", "abc"},
		{"a\x1bcb", "ab"},
		{"a\x1b(Bb", "ab"},
		{"a\x1b7b\x1b8", "ab"},
		{"cr\rover", "crover"},
		{"bs\x08\x08xx", "bsxx"},
		{"bell\x07 nul\x00 del\x7f", "bell nul del"},
		{"unterminated \x1b]0;title", "unterminated "},
		{"unterminated \x1b[12", "unterminated "},
		{"trailing \x1b", "trailing "},
		{"csi cut by a newline \x1b[1\nnext", "csi cut by a newline \nnext"},
		{"line\n", "line\n"},
		{"raw \x9b2J byte", "raw \ufffd2J byte"},
	} {
		if got := terminalText(tc.in); got != tc.want {
			t.Errorf("terminalText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := cell("a\tb\nc\x1b[31m"); got != "a b c" {
		t.Errorf("cell = %q", got)
	}
}

// FuzzTerminalText: whatever a program writes, what is printed has no
// control character but tab and newline, and text without any is kept.
func FuzzTerminalText(f *testing.F) {
	for _, s := range []string{"\x1b[31mred\x1b[0m", "a\x1b]0;t\x07b", "\u009b2J", "x\x1bP\x1b\\", "ok\tline\n", "\x1b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := terminalText(s)
		for _, r := range out {
			if r != '\t' && r != '\n' && isControl(r) {
				t.Fatalf("terminalText(%q) = %q keeps %U", s, out, r)
			}
		}
		if utf8.ValidString(s) && !strings.ContainsFunc(s, isControl) && out != s {
			t.Fatalf("terminalText(%q) = %q changed text without controls", s, out)
		}
	})
}
