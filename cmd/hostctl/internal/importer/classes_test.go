package importer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
)

// The five kinds of real configs that import refused or translated into a
// config check refused (issue 21), one test each.

func write(t *testing.T, path, body string) string {
	t.Helper()
	mkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// notesAt returns the notes whose place starts with where.
func notesAt(res *Result, where string) []Note {
	var out []Note
	for _, n := range res.Notes {
		if strings.HasPrefix(n.Where, where) {
			out = append(out, n)
		}
	}
	return out
}

// checkOnMachine runs hostctl check's validation on the output and fails
// on any problem that is not about this machine.
func checkOnMachine(t *testing.T, res *Result) {
	t.Helper()
	if _, err := config.Parse("out.toml", res.TOML); err != nil && !config.OnlyMachine(err) {
		t.Fatalf("hostctl check refuses the output for more than this machine:\n%v\n\n%s", err, res.TOML)
	}
}

// TestFragment: a conf.d fragment (no [supervisord]) is read as
// supervisord reads it through the main file's [include].
func TestFragment(t *testing.T) {
	dir := t.TempDir()
	f := write(t, filepath.Join(dir, "conf.d", "hello_startup.conf"), `[program:hello]
command=/bin/sleep 1000
directory=/tmp
autostart=true
stdout_logfile=/var/log/hello.out.log
`)
	res, err := Import(Options{Supervisord: f, HostNodeName: "web1"})
	if err != nil {
		t.Fatalf("a conf.d fragment is refused: %v", err)
	}
	if !res.Fragment || res.Programs != 1 || !strings.Contains(res.Summary(), "conf.d fragment") {
		t.Errorf("Fragment %v, %d programs; summary:\n%s", res.Fragment, res.Programs, res.Summary())
	}
	if !strings.Contains(string(res.TOML), "[program.hello]") {
		t.Errorf("no [program.hello]:\n%s", res.TOML)
	}
	checkOnMachine(t, res)
}

// TestNginxIncludePrefix: relative includes are read from nginx's prefix,
// not from the site file's directory.
func TestNginxIncludePrefix(t *testing.T) {
	dir := t.TempDir()
	sup := write(t, filepath.Join(dir, "supervisord.conf"), "[supervisord]\n[program:web]\ncommand=/bin/true\n")
	prefix := filepath.Join(dir, "etc-nginx")
	write(t, filepath.Join(prefix, "proxy_params"), "proxy_set_header Host $http_host;\nproxy_set_header X-Forwarded-Proto $scheme;\nproxy_set_header X-Hct-Test yes;\n")
	site := write(t, filepath.Join(prefix, "sites-available", "app"), `server {
    listen 80;
    server_name app.example.com;
    location / {
        include proxy_params;
        proxy_pass http://unix:/run/app.sock;
    }
}
`)
	res, err := Import(Options{Supervisord: sup, Nginx: site, NginxPrefix: prefix, HostNodeName: "web1"})
	if err != nil {
		t.Fatalf("include proxy_params from the prefix: %v", err)
	}
	// The included file was read: its one header hostctl does not set is
	// listed at its own file and line.
	if ns := notesAt(res, "etc-nginx/proxy_params:3 proxy_set_header"); len(ns) != 1 {
		t.Errorf("the include was not read from the prefix; notes:\n%s", res.Summary())
	}
	if len(res.NginxFiles) != 2 || res.NginxFiles[1] != filepath.Join(prefix, "proxy_params") {
		t.Errorf("files read: %v", res.NginxFiles)
	}
	checkOnMachine(t, res)
}

// TestNginxMissingIncludes: includes that cannot be read do not stop the
// import; each is listed, and the common ones say what they meant.
func TestNginxMissingIncludes(t *testing.T) {
	dir := t.TempDir()
	sup := write(t, filepath.Join(dir, "supervisord.conf"), "[supervisord]\n[program:web]\ncommand=/bin/true\n")
	prefix := filepath.Join(dir, "empty-prefix")
	mkdir(t, prefix)
	le := filepath.Join(dir, "letsencrypt") // certbot's files, not on this machine
	site := write(t, filepath.Join(dir, "site"), `include mime.types;
server {
    server_name example.com;
    location /static/ {
        alias /srv/app/static/;
    }
    location / {
        include proxy_params;
        proxy_pass http://127.0.0.1:8000;
    }
    include snippets/custom-headers.conf;
    listen 443 ssl; # managed by Certbot
    ssl_certificate `+le+`/live/example.com/fullchain.pem; # managed by Certbot
    ssl_certificate_key `+le+`/live/example.com/privkey.pem; # managed by Certbot
    include `+le+`/options-ssl-nginx.conf; # managed by Certbot
    ssl_dhparam `+le+`/ssl-dhparams.pem; # managed by Certbot
}
server {
    if ($host = example.com) {
        return 301 https://$host$request_uri;
    } # managed by Certbot
    listen 80;
    server_name example.com;
    return 404; # managed by Certbot
}
`)
	res, err := Import(Options{Supervisord: sup, Nginx: site, NginxPrefix: prefix, HostNodeName: "web1"})
	if err != nil {
		t.Fatalf("missing includes stop the import: %v", err)
	}
	for _, c := range []struct {
		line int
		kind string
		says string
	}{
		{1, Approximated, "hostctl has its own table"},
		{8, Approximated, "proxy_params sets Host"},
		{11, NotTranslated, "could not be read"},
		{15, Approximated, "hostctl's TLS defaults are stricter"},
		{16, Approximated, "ECDHE"},
	} {
		ns := notesAt(res, "site:"+strconv.Itoa(c.line)+" ")
		if len(ns) != 1 || ns[0].Kind != c.kind || !strings.Contains(ns[0].Msg, c.says) {
			t.Errorf("line %d: want one %s note saying %q, got %v", c.line, c.kind, c.says, ns)
		}
	}
	var f struct {
		Proxy struct {
			ListenTLS string `toml:"listen_tls"`
			Upstream  string
			CertFile  string `toml:"cert_file"`
			Static    []struct{ Path, Dir string }
		}
	}
	if _, err := toml.Decode(string(res.TOML), &f); err != nil {
		t.Fatal(err)
	}
	if f.Proxy.Upstream != "127.0.0.1:8000" || f.Proxy.ListenTLS != ":443" || f.Proxy.CertFile == "" || len(f.Proxy.Static) != 1 {
		t.Errorf("the site was not imported whole: %+v\n%s", f.Proxy, res.TOML)
	}
	// certbot's redirect server is hostctl's own redirect.
	if !strings.Contains(string(res.TOML), "only redirected to HTTPS") {
		t.Errorf("certbot's redirect server is not recognised:\n%s", res.Summary())
	}
	checkOnMachine(t, res)
}

// TestContainerLogs: every program logging to /dev/stdout with
// logfile_maxbytes=0, as in Docker images, writes to hostctl's stdout.
func TestContainerLogs(t *testing.T) {
	dir := t.TempDir()
	sup := write(t, filepath.Join(dir, "supervisord.conf"), `[supervisord]
nodaemon=true

[program:web]
command=/bin/sleep 1000
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
stderr_logfile=/dev/stderr
stderr_logfile_maxbytes=0

[program:worker]
command=/bin/sleep 1000
process_name=%(program_name)s-%(process_num)s
numprocs=2
stdout_logfile=/dev/fd/1
stdout_logfile_maxbytes=0
redirect_stderr=true

[program:beat]
command=/bin/sleep 1000
stdout_logfile=/dev/stderr
stdout_logfile_maxbytes=0
`)
	res, err := Import(Options{Supervisord: sup, HostNodeName: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Program map[string]map[string]any
	}
	if _, err := toml.Decode(string(res.TOML), &f); err != nil {
		t.Fatal(err)
	}
	for prog, want := range map[string][2]any{"web": {"-", "-"}, "worker": {"-", nil}, "beat": {"/dev/stderr", nil}} {
		p := f.Program[prog]
		if p["stdout_log"] != want[0] || p["stderr_log"] != want[1] {
			t.Errorf("%s: stdout_log %v, stderr_log %v; want %v", prog, p["stdout_log"], p["stderr_log"], want)
		}
		if _, ok := p["max_size"]; ok {
			t.Errorf("%s: rotation set for hostctl's own output", prog)
		}
	}
	for _, n := range res.Notes {
		if strings.Contains(n.Where, "maxbytes") {
			t.Errorf("a note about rotation of the console: %v", n)
		}
	}
	checkOnMachine(t, res)
}

// TestLegacySSLOn: "listen 443; ssl on;" is one HTTPS listener, not a
// plain and a TLS listener on the same port.
func TestLegacySSLOn(t *testing.T) {
	dir := t.TempDir()
	sup := write(t, filepath.Join(dir, "supervisord.conf"), "[supervisord]\n[program:web]\ncommand=/bin/true\n")
	site := write(t, filepath.Join(dir, "site"), `server {
    listen 443;
    server_name example.com;
    ssl on;
    ssl_certificate /etc/ssl/certs/example.pem;
    ssl_certificate_key /etc/ssl/private/example.key;
    location / {
        proxy_pass http://127.0.0.1:8000;
    }
}
server {
    listen 80;
    server_name example.com;
    return 301 https://$host$request_uri;
}
`)
	res, err := Import(Options{Supervisord: sup, Nginx: site, NginxPrefix: dir, HostNodeName: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Proxy map[string]any
	}
	if _, err := toml.Decode(string(res.TOML), &f); err != nil {
		t.Fatal(err)
	}
	if f.Proxy["listen_tls"] != ":443" || f.Proxy["listen"] != ":80" || f.Proxy["cert_file"] != "/etc/ssl/certs/example.pem" {
		t.Errorf("listen %v, listen_tls %v, cert_file %v\n%s", f.Proxy["listen"], f.Proxy["listen_tls"], f.Proxy["cert_file"], res.TOML)
	}
	if ns := notesAt(res, "site:4 ssl"); len(ns) != 1 || ns[0].Kind != Approximated {
		t.Errorf("ssl on: notes %v", ns)
	}
	checkOnMachine(t, res)
}
