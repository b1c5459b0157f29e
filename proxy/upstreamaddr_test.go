package proxy

import (
	"strings"
	"testing"
)

// TestParseUpstream: every spelling of an upstream has one canonical
// form, one Caddy dial address, and one answer to "is it on this
// machine"; a bad one says why.
func TestParseUpstream(t *testing.T) {
	for _, tc := range []struct {
		in, canon, dial string
		local           bool
		err             string
	}{
		{in: "unix:/run/app.sock", canon: "unix:/run/app.sock", dial: "unix//run/app.sock", local: true},
		{in: "unix:///run/app.sock", canon: "unix:/run/app.sock", dial: "unix//run/app.sock", local: true},
		{in: "unix:////run//app.sock", canon: "unix:/run/app.sock", dial: "unix//run/app.sock", local: true},
		{in: "127.0.0.1:8000", canon: "127.0.0.1:8000", dial: "127.0.0.1:8000", local: true},
		{in: "[::1]:8000", canon: "[::1]:8000", dial: "[::1]:8000", local: true},
		{in: "localhost:8000", canon: "localhost:8000", dial: "localhost:8000", local: true},
		{in: "10.0.0.5:8000", canon: "10.0.0.5:8000", dial: "10.0.0.5:8000", local: false},
		{in: "app.internal:8000", canon: "app.internal:8000", dial: "app.internal:8000", local: false},
		{in: "unix:run/app.sock", err: "must be absolute"},
		{in: "unix:", err: "must be absolute"},
		{in: "127.0.0.1", err: "is not host:port"},
		{in: ":8000", err: "is not host:port"},
		{in: "127.0.0.1:0", err: "is not a number from 1 to 65535"},
		{in: "127.0.0.1:http", err: "is not a number from 1 to 65535"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			a, err := ParseUpstream(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one with %q", err, tc.err)
				}
				if CanonicalUpstream(tc.in) != tc.in {
					t.Errorf("CanonicalUpstream of a bad address changed it")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.String() != tc.canon || a.Dial() != tc.dial || a.Local() != tc.local {
				t.Errorf("got %q dial %q local %v, want %q %q %v", a, a.Dial(), a.Local(), tc.canon, tc.dial, tc.local)
			}
			if upstreamFromDial(a.Dial()) != tc.canon {
				t.Errorf("upstreamFromDial(%q) = %q, want %q", a.Dial(), upstreamFromDial(a.Dial()), tc.canon)
			}
		})
	}
}
