package logfile

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"123", 123, true},
		{"50MB", 50_000_000, true},
		{"50mb", 50_000_000, true},
		{"50 MB", 50_000_000, true},
		{"512KiB", 512 << 10, true},
		{"2GB", 2_000_000_000, true},
		{"1.5GiB", 3 << 29, true},
		{"10B", 10, true},
		{"1TiB", 1 << 40, true},
		{"", 0, false},
		{"ten", 0, false},
		{"-1", 0, false},
		{"-1MB", 0, false},
		{"5XB", 0, false},
		{"MB", 0, false},
		{"9999999TB", 0, false},
		{"NaN", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			if tc.ok != (err == nil) || got != tc.want {
				t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), `(example: "50MB"`) {
				t.Errorf("error %q does not say what to write", err)
			}
		})
	}
}

func TestParseKeepFree(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want KeepFree
		ok   bool
	}{
		{"", KeepFree{}, true},
		{"10%", KeepFree{Percent: 10}, true},
		{"2.5%", KeepFree{Percent: 2.5}, true},
		{"5GB", KeepFree{Bytes: 5e9}, true},
		{"0%", KeepFree{}, false},
		{"100%", KeepFree{}, false},
		{"ten%", KeepFree{}, false},
		{"lots", KeepFree{}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseKeepFree(tc.in)
			if tc.ok != (err == nil) || got != tc.want {
				t.Errorf("ParseKeepFree(%q) = %+v, %v; want %+v, ok=%v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
	if got := (KeepFree{Percent: 10}).Threshold(1000); got != 100 {
		t.Errorf("10%% of 1000 = %d", got)
	}
}

func TestFormatSize(t *testing.T) {
	for in, want := range map[int64]string{0: "0B", 999: "999B", 50_000_000: "50MB", 1_500_000_000: "1.5GB", 2_000_000: "2MB", 1234: "1.23KB"} {
		if got := FormatSize(in); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	if errs := c.Validate("log"); len(errs) > 0 {
		t.Fatalf("DefaultConfig: %v", errs)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Config{
		Dir:        "logs",
		MaxSize:    10,
		MaxBackups: -1,
		MaxAge:     -time.Hour,
		MaxTotal:   -5,
		KeepFree:   "ten",
	}
	errs := c.Validate("log")
	want := map[string]string{
		"log.dir":         `"logs" is not an absolute path`,
		"log.max_size":    `10 bytes is too small`,
		"log.max_backups": `-1 is negative`,
		"log.max_age":     `-1h0m0s is negative`,
		"log.max_total":   `-5 is negative`,
		"log.keep_free":   `"ten" is neither a percentage nor a size`,
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d: %v", len(errs), len(want), errs)
	}
	for _, err := range errs {
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%v is not a *FieldError", err)
			continue
		}
		if w, ok := want[fe.Key]; !ok || !strings.Contains(fe.Msg, w) {
			t.Errorf("%s: %q, want it to contain %q", fe.Key, fe.Msg, w)
		}
	}

	c = DefaultConfig()
	c.MaxTotal = c.MaxSize - 1
	if errs := c.Validate(""); len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "max_total: ") {
		t.Errorf("max_total below max_size: %v", errs)
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"50MB", "512KiB", "1.5GiB", "0", "ten", "", "9223372036854775807", "1e3KB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d, negative", s, n)
		}
		if n > 1<<62 {
			return // FormatSize rounds; near MaxInt64 that may not parse back
		}
		if m, err := ParseSize(FormatSize(n)); err != nil || (n >= 1000 && (m < n-n/100 || m > n+n/100)) {
			t.Fatalf("ParseSize(FormatSize(%d)) = %d, %v", n, m, err)
		}
	})
}
