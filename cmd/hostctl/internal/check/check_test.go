package check

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
)

// fakeAlerts records Set and Clear, and signals each.
type fakeAlerts struct {
	mu     sync.Mutex
	events []string // "set KEY", "clear KEY: how"
	last   map[string]alert.Alert
	active map[string]bool
	more   chan struct{}
}

func newFakeAlerts() *fakeAlerts {
	return &fakeAlerts{last: map[string]alert.Alert{}, active: map[string]bool{}, more: make(chan struct{})}
}

func (f *fakeAlerts) Host() string { return "web1" }

func (f *fakeAlerts) Set(a alert.Alert) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, "set "+a.Key)
	f.last[a.Key] = a
	f.active[a.Key] = true
	close(f.more)
	f.more = make(chan struct{})
}

func (f *fakeAlerts) Clear(key, how string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	was := f.active[key]
	delete(f.active, key)
	if was {
		f.events = append(f.events, "clear "+key+": "+how)
		close(f.more)
		f.more = make(chan struct{})
	}
	return was
}

// wait waits until an event starts with prefix and returns it.
func (f *fakeAlerts) wait(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		f.mu.Lock()
		for _, e := range f.events {
			if strings.HasPrefix(e, prefix) {
				f.mu.Unlock()
				return e
			}
		}
		more := f.more
		f.mu.Unlock()
		select {
		case <-more:
		case <-deadline:
			f.mu.Lock()
			defer f.mu.Unlock()
			t.Fatalf("no %q within 30s; events: %q", prefix, f.events)
		}
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

func tcpCheck(name, addr string) *Config {
	c := Default(name)
	c.TCP, c.Interval, c.Timeout, c.Failures, c.Notes = addr, 50*time.Millisecond, 10*time.Second, 2, "notes of "+name
	return &c
}

// waitState waits until check name is in state.
func waitState(t *testing.T, m *Manager, name string, want State) Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, st := range m.Status() {
			if st.Name == name && st.State == want {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("check %s not %s within 30s: %+v", name, want, m.Status())
		}
		time.Sleep(20 * time.Millisecond) // between polls of a bounded wait
	}
}

// A real listener closed and opened again: the check goes down with an
// alert that carries the error, the notes and since when, and one pass
// resolves it.
func TestDownAndUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln := listen(t)
	addr := ln.Addr().String()
	fa := newFakeAlerts()
	m := New(ctx, Options{Alerts: fa})
	m.Apply(map[string]*Config{"db": tcpCheck("db", addr)})
	waitState(t, m, "db", Up)

	ln.Close()
	fa.wait(t, "set check_failed:db")
	st := waitState(t, m, "db", Down)
	fa.mu.Lock()
	a := fa.last["check_failed:db"]
	fa.mu.Unlock()
	if a.Condition != alert.CondCheckFailed || a.Severity != alert.Error || a.Details["notes"] != "notes of db" ||
		!strings.Contains(a.Details["error"].(string), "connect "+addr) || a.Details["down_since"] != st.Since.UTC().Format(time.RFC3339) ||
		!strings.Contains(a.Summary, "check db on web1 is down since") || !strings.Contains(a.Command, "hostctl status db") {
		t.Errorf("alert = %+v", a)
	}

	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("cannot listen on %s again: %v", addr, err)
	}
	defer ln2.Close()
	go func() {
		for {
			c, err := ln2.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if ev := fa.wait(t, "clear check_failed:db"); !strings.Contains(ev, "up again after") {
		t.Errorf("resolve: %s", ev)
	}
	waitState(t, m, "db", Up)
}

// Apply starts new checks, restarts changed ones (keeping their
// counters), leaves the others running and stops the removed ones,
// resolving their alert.
func TestApply(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln := listen(t)
	defer ln.Close()
	addr := ln.Addr().String()
	dead := listen(t)
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens there now
	fa := newFakeAlerts()
	m := New(ctx, Options{Alerts: fa})
	d := m.Apply(map[string]*Config{"a": tcpCheck("a", addr), "b": tcpCheck("b", addr), "gone": tcpCheck("gone", deadAddr)})
	if !slices.Equal(d.Added, []string{"a", "b", "gone"}) || d.Changed != nil || d.Removed != nil {
		t.Errorf("first apply: %+v", d)
	}
	waitState(t, m, "a", Up)
	waitState(t, m, "b", Up)
	fa.wait(t, "set check_failed:gone")
	m.mu.Lock()
	ra := m.runners["a"]
	m.mu.Unlock()
	before := waitState(t, m, "b", Up)

	b := tcpCheck("b", addr)
	b.Notes = "new notes"
	d = m.Apply(map[string]*Config{"a": tcpCheck("a", addr), "b": b, "c": tcpCheck("c", addr)})
	if !slices.Equal(d.Added, []string{"c"}) || !slices.Equal(d.Changed, []string{"b"}) || !slices.Equal(d.Removed, []string{"gone"}) {
		t.Errorf("second apply: %+v", d)
	}
	if ev := fa.wait(t, "clear check_failed:gone"); !strings.Contains(ev, "removed from the config") {
		t.Errorf("resolve of a removed check: %s", ev)
	}
	m.mu.Lock()
	same := m.runners["a"] == ra
	m.mu.Unlock()
	if !same {
		t.Error("an unchanged check was restarted")
	}
	after := waitState(t, m, "b", Up)
	if after.Notes != "new notes" || after.Probes < before.Probes {
		t.Errorf("changed check: before %+v, after %+v", before, after)
	}
	var names []string
	for _, st := range m.Status() {
		names = append(names, st.Name)
	}
	if !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Errorf("checks after apply: %q", names)
	}
}
