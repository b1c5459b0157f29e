package supervisor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A service probe's HTTP rule, against a real server: any 2xx or 3xx by
// default (a redirect is not followed), or the listed codes; a body must
// hold one of the listed strings; the error says what came back.
func TestServiceProbeHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/green":
			fmt.Fprint(w, `{"cluster_name":"search","status":"green"}`)
		case "/yellow":
			fmt.Fprint(w, `{"cluster_name":"search","status":"yellow"}`)
		case "/red":
			fmt.Fprint(w, "{\"cluster_name\":\"search\",\n\"status\":\"red\"}")
		case "/moved":
			http.Redirect(w, r, "/nowhere", http.StatusFound)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	health := []string{`"status":"green"`, `"status":"yellow"`}
	for _, tc := range []struct {
		path   string
		status []int
		body   []string
		want   string // "" passes, else part of the error
	}{
		{"/green", nil, nil, ""},
		{"/green", nil, health, ""},
		{"/yellow", nil, health, ""},
		{"/red", nil, health, `GET /red: 200, but the body holds none of "\"status\":\"green\"", "\"status\":\"yellow\"": {"cluster_name":"search", "status":"red"}`},
		{"/moved", nil, nil, ""},
		{"/moved", []int{200}, nil, "GET /moved: 302"},
		{"/empty", []int{200, 204}, nil, ""},
		{"/down", nil, nil, "GET /down: 503"},
		{"/down", []int{503}, nil, ""},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/")+fmt.Sprint(tc.status, len(tc.body)), func(t *testing.T) {
			p := &ServiceProbe{HTTP: srv.URL + tc.path, Status: tc.status, Body: tc.body, Timeout: 10 * time.Second}
			err := p.Run(context.Background())
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("failed: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// A TCP probe that nothing answers, and one that never answers in time.
func TestServiceProbeTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := (&ServiceProbe{TCP: addr, Timeout: 10 * time.Second}).Run(context.Background()); err != nil {
		t.Errorf("listening: %v", err)
	}
	ln.Close()
	err = (&ServiceProbe{TCP: addr, Timeout: 10 * time.Second}).Run(context.Background())
	if err == nil || err.Error() != "connect "+addr+": connection refused" {
		t.Errorf("closed: %v", err)
	}
}

// An exec probe needs a user: it never runs as hostctl by default.
func TestServiceProbeExecNeedsUser(t *testing.T) {
	err := (&ServiceProbe{Exec: Command{"/bin/true"}, Timeout: 10 * time.Second}).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no user to run it as") {
		t.Errorf("err = %v", err)
	}
	err = (&ServiceProbe{Exec: Command{"/bin/false"}, User: "root", Timeout: 10 * time.Second}).Run(context.Background())
	if err == nil || err.Error() != "false: exit status 1" {
		t.Errorf("err = %v", err)
	}
}
