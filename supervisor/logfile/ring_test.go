package logfile

import (
	"bytes"
	"testing"
)

func TestRingWrapsGrowsAndKeepsGaps(t *testing.T) {
	q := newRing(8, 32)
	var out []byte
	var gaps []gap
	drain := func(limit int) {
		for {
			p, g := q.next(limit)
			if g != nil {
				gaps = append(gaps, *g)
				continue
			}
			if len(p) == 0 {
				return
			}
			out = append(out, p...)
			q.release(len(p))
		}
	}
	var in []byte
	put := func(s string) {
		if !q.put([]byte(s)) {
			t.Fatalf("put(%q) failed", s)
		}
		in = append(in, s...)
	}
	put("abcdef")
	drain(4)
	put("ghijklmnop") // wraps, then grows to 16
	put("qrstuvwxyz0123")
	if len(q.buf) != 32 {
		t.Errorf("ring is %d bytes, want grown to 32", len(q.buf))
	}
	drain(5)
	if !bytes.Equal(out, in) {
		t.Fatalf("got %q, want %q", out, in)
	}
	// Full: a put fails, the drop is recorded at the end.
	put(string(bytes.Repeat([]byte("."), 32)))
	if q.put([]byte("lost")) {
		t.Fatal("put into a full ring succeeded")
	}
	q.drop(4, "test")
	q.drop(3, "test")
	// Dropping stays on until a quarter is free.
	drain(8)
	put("after")
	drain(8)
	if len(gaps) != 1 || gaps[0].n != 7 || gaps[0].pos != uint64(len(in)-len("after")) {
		t.Errorf("gaps %+v, want one gap of 7 before %q", gaps, "after")
	}
	if !bytes.Equal(out, in) {
		t.Fatalf("got %q, want %q", out, in)
	}
}
