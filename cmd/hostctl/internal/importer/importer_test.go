package importer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// Each directory under testdata is one case: supervisord.conf (with the
// files it includes) and, if present, one other *.conf beside it, an
// nginx site. The
// expected hostctl config is expected.toml, the summary expected.summary;
// the testdata directory's absolute path is written TESTDATA in both.
func cases(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("testdata/*/supervisord.conf")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases in testdata: %v", err)
	}
	for i, d := range dirs {
		dirs[i] = filepath.Dir(d)
	}
	return dirs
}

func importCase(t testing.TB, dir string) *Result {
	t.Helper()
	opts := Options{Supervisord: filepath.Join(dir, "supervisord.conf"), HostNodeName: "web1", NginxPrefix: dir}
	confs, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	for _, c := range confs {
		if filepath.Base(c) != "supervisord.conf" {
			opts.Nginx = c
		}
	}
	res, err := Import(opts)
	if err != nil {
		t.Fatalf("Import(%s): %v", dir, err)
	}
	return res
}

// TestGolden compares each case's output with its golden files.
func TestGolden(t *testing.T) {
	t.Setenv("HOME", "/home/importer") // %(ENV_HOME)s in [include] is read at import time
	for _, dir := range cases(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			res := importCase(t, dir)
			abs, _ := filepath.Abs("testdata")
			for _, g := range []struct{ file, got string }{
				{"expected.toml", string(res.TOML)},
				{"expected.summary", res.Summary()},
			} {
				got := strings.ReplaceAll(g.got, abs, "TESTDATA")
				path := filepath.Join(dir, g.file)
				if *update {
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (go test -update writes it)", err)
				}
				if got != string(want) {
					t.Errorf("%s differs (go test -update rewrites it; review with git diff):\n%s", path, diffLines(string(want), got))
				}
			}
		})
	}
}

// TestGoldenCheck validates each case's output with hostctl's own config
// validation (config.Parse, what `hostctl check` runs). Validation looks
// at the machine: commands in PATH or at their paths, directories, users,
// certificate files. So that the result does not depend on what is
// installed, the check runs in a sandbox: every absolute path in the
// output is moved under a temp dir, where the test creates what the
// config names (executables, directories, error pages, a certificate
// pair); PATH is a directory of the test's own executables; users are the
// current user. Nothing else in the output is changed.
func TestGoldenCheck(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range cases(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			res := importCase(t, dir)
			sandbox := t.TempDir()
			text := sandboxPaths(string(res.TOML), sandbox)
			text = regexp.MustCompile(`(?m)^user = ".*"$`).ReplaceAllString(text, "user = "+tomlString(me.Username))
			bin := filepath.Join(sandbox, "PATH")
			mkdir(t, bin)
			t.Setenv("PATH", bin)
			t.Setenv("TESTDIR", filepath.Join(sandbox, "testdir"))
			t.Setenv("HOME", filepath.Join(sandbox, "home"))
			var f map[string]any
			if _, err := toml.Decode(text, &f); err != nil {
				t.Fatalf("the output is not TOML: %v\n%s", err, text)
			}
			materialize(t, f, bin, os.ExpandEnv)
			_, err := config.Parse("expected.toml", []byte(text))
			if err != nil {
				t.Fatalf("hostctl check refuses the output:\n%v\n\n%s", err, text)
			}
		})
	}
}

var absPath = regexp.MustCompile(`"(unix:)?/`)

// sandboxPaths puts sandbox in front of every absolute path that starts a
// string value.
func sandboxPaths(text, sandbox string) string {
	return absPath.ReplaceAllStringFunc(text, func(m string) string {
		return strings.TrimSuffix(m, "/") + sandbox + "/"
	})
}

// materialize creates what the config f names: program commands (in bin
// when they have no slash), directories, log directories, static dirs,
// error pages and certificate pairs.
func materialize(t *testing.T, f map[string]any, bin string, expand func(string) string) {
	t.Helper()
	str := func(m map[string]any, k string) string {
		s, _ := m[k].(string)
		return expand(strings.ReplaceAll(s, "$$", "$"))
	}
	progs, _ := f["program"].(map[string]any)
	for _, p := range progs {
		p := p.(map[string]any)
		var argv0 string
		switch c := p["command"].(type) {
		case string:
			argv0 = strings.Fields(c)[0]
		case []any:
			argv0 = c[0].(string)
		}
		argv0 = expand(strings.ReplaceAll(argv0, "$$", "$"))
		if !strings.Contains(argv0, "/") {
			argv0 = filepath.Join(bin, argv0)
		} else if !filepath.IsAbs(argv0) {
			argv0 = filepath.Join(str(p, "directory"), argv0)
		}
		if d := str(p, "directory"); d != "" {
			mkdir(t, d)
		}
		argv0 = filepath.Clean(argv0)
		mkdir(t, filepath.Dir(argv0))
		if err := os.WriteFile(argv0, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var sites []map[string]any
	if px, ok := f["proxy"].(map[string]any); ok {
		sites = append(sites, px)
		if ss, ok := px["site"].([]map[string]any); ok {
			sites = append(sites, ss...)
		}
		if ss, ok := px["site"].([]any); ok {
			for _, s := range ss {
				sites = append(sites, s.(map[string]any))
			}
		}
	}
	for _, s := range sites {
		if p := str(s, "error_page"); p != "" {
			mkdir(t, filepath.Dir(p))
			os.WriteFile(p, []byte("<h1>down</h1>"), 0o644)
		}
		var statics []map[string]any
		if ss, ok := s["static"].([]map[string]any); ok {
			statics = ss
		}
		for _, st := range statics {
			mkdir(t, str(st, "dir"))
		}
		if c := str(s, "cert_file"); c != "" {
			hosts, _ := s["hosts"].([]any)
			writePair(t, c, str(s, "key_file"), hosts)
		}
	}
}

func mkdir(t *testing.T, d string) {
	t.Helper()
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
}

// writePair writes a self-signed certificate for hosts and its key.
func writePair(t *testing.T, certFile, keyFile string, hosts []any) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range hosts {
		names = append(names, h.(string))
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "import test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: names}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	mkdir(t, filepath.Dir(certFile))
	mkdir(t, filepath.Dir(keyFile))
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
}

// diffLines shows the first lines that differ.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 20; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			shown++
		}
	}
	return b.String()
}

// FuzzSupervisord feeds the supervisord reader arbitrary files, seeded
// with the testdata's: it must return a config or an error, never panic,
// and what it returns must be TOML.
func FuzzSupervisord(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.conf")
	more, _ := filepath.Glob("testdata/*/conf.d/*")
	corpus, _ := filepath.Glob("testdata/corpus/supervisord/*.conf")
	more = append(more, corpus...)
	for _, p := range append(files, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	f.Fuzz(func(t *testing.T, body string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "supervisord.conf")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Import(Options{Supervisord: path, HostNodeName: "web1"})
		if err != nil {
			return
		}
		var v map[string]any
		if _, err := toml.Decode(string(res.TOML), &v); err != nil {
			t.Fatalf("output is not TOML: %v\ninput:\n%s\noutput:\n%s", err, body, res.TOML)
		}
	})
}
