package apitype

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// fileErrors is like config.Errors: its message is one problem per line,
// and it unwraps to them.
type fileErrors []error

func (es fileErrors) Error() string   { return errors.Join(es...).Error() }
func (es fileErrors) Unwrap() []error { return es }

// TestProblems: a reload error is listed by its structure, never by
// splitting its text.
func TestProblems(t *testing.T) {
	a, b, c := errors.New("a.toml:3: x: bad"), errors.New("a.toml:9: y: bad"), errors.New("proxy: z")
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"one", a, []string{"a.toml:3: x: bad"}},
		{"joined", errors.Join(a, b), []string{"a.toml:3: x: bad", "a.toml:9: y: bad"}},
		{"file errors", fileErrors{a, b}, []string{"a.toml:3: x: bad", "a.toml:9: y: bad"}},
		{"nested", errors.Join(fileErrors{a, b}, c), []string{"a.toml:3: x: bad", "a.toml:9: y: bad", "proxy: z"}},
		{"wrapped", fmt.Errorf("reload: %w", errors.Join(a, c)), []string{"a.toml:3: x: bad", "proxy: z"}},
		{"lines in one error", errors.New("caddy says\nmore"), []string{"caddy says\nmore"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Problems(tc.err); !slices.Equal(got, tc.want) {
				t.Errorf("Problems = %q, want %q", got, tc.want)
			}
		})
	}
}
