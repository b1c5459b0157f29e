package proxy

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSiteUpstreams(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []SiteUpstreams
	}{
		{
			name: "top-level catch-all",
			cfg:  Config{Upstream: "127.0.0.1:8000"},
			want: []SiteUpstreams{{Site: "*", Key: "proxy", Upstreams: []string{"127.0.0.1:8000"}, UpstreamKeys: []string{"proxy.upstream"}}},
		},
		{
			name: "top-level hosts, balanced",
			cfg:  Config{Hosts: []string{"app.lan", "www.app.lan"}, UpstreamList: []string{"10.0.0.1:8000", "unix:/run/app.sock"}},
			want: []SiteUpstreams{{Site: "app.lan", Key: "proxy", Upstreams: []string{"10.0.0.1:8000", "unix:/run/app.sock"}, UpstreamKeys: []string{"proxy.upstreams[0]", "proxy.upstreams[1]"}}},
		},
		{
			name: "sites inherit the top-level upstream, static mounts or not",
			cfg: Config{
				Upstream: "unix:/run/app.sock",
				Sites: []Site{
					{Hosts: []string{"a.example.com"}},
					{Hosts: []string{"b.example.com"}, Upstreams: []string{"127.0.0.1:9000", "127.0.0.1:9001"}},
					{Hosts: []string{"static.example.com"}, Static: []Static{{Path: "/", Dir: "/srv"}}},
				},
			},
			want: []SiteUpstreams{
				{Site: "a.example.com", Key: "proxy.site[0]", Upstreams: []string{"unix:/run/app.sock"}, UpstreamKeys: []string{"proxy.upstream"}},
				{Site: "b.example.com", Key: "proxy.site[1]", Upstreams: []string{"127.0.0.1:9000", "127.0.0.1:9001"}, UpstreamKeys: []string{"proxy.site[1].upstreams[0]", "proxy.site[1].upstreams[1]"}},
				{Site: "static.example.com", Key: "proxy.site[2]", Upstreams: []string{"unix:/run/app.sock"}, UpstreamKeys: []string{"proxy.upstream"}},
			},
		},
		{
			name: "static only",
			cfg:  Config{Static: []Static{{Path: "/", Dir: "/srv"}}},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.SiteUpstreams(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SiteUpstreams() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestDialUpstream(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	sock := filepath.Join(t.TempDir(), "app.sock")
	unix, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close()
	closed := freeAddr(t)
	missing := filepath.Join(t.TempDir(), "gone.sock")

	tests := []struct {
		name    string
		addr    string
		wantErr error // nil: the dial succeeds
	}{
		{"tcp listening", tcp.Addr().String(), nil},
		{"unix listening", "unix:" + sock, nil},
		{"unix with //", "unix://" + sock, nil},
		{"tcp closed port", closed, syscall.ECONNREFUSED},
		{"unix missing socket", "unix:" + missing, syscall.ENOENT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := DialUpstream(ctx, tt.addr)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("DialUpstream(%q) = %v", tt.addr, err)
				}
				return
			}
			if err == nil || !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.addr) {
				t.Fatalf("DialUpstream(%q) = %v; want an error naming the address, wrapping %v", tt.addr, err, tt.wantErr)
			}
			t.Logf("%v", err)
		})
	}

	// A cancelled context stops the attempt.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := DialUpstream(ctx, tcp.Addr().String()); !errors.Is(err, context.Canceled) {
		t.Errorf("with a cancelled context: %v, want context.Canceled", err)
	}
}
