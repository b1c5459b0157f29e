package importer

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	crossplane "github.com/nginxinc/nginx-go-crossplane"
)

// DefaultNginxPrefix is where nginx resolves a relative include: its
// configuration prefix, the directory of nginx.conf (Debian's
// /etc/nginx), not the directory of the file that has the include.
const DefaultNginxPrefix = "/etc/nginx"

// maxIncludeDepth bounds nested includes (nginx itself has no bound but
// refuses a cycle; 16 levels is far beyond any real config).
const maxIncludeDepth = 16

// ngMissing is an include that could not be read.
type ngMissing struct {
	d    *crossplane.Directive
	path string // resolved path
	err  error
}

// ngReader reads an nginx config and the files it includes, as nginx
// does: a relative include is resolved against prefix, a pattern with a
// wildcard may match nothing, and a plain file must be readable. Unlike
// nginx, an include that cannot be read does not stop the reading: it is
// kept in the tree and listed, so that what can be read is imported.
type ngReader struct {
	prefix  string
	missing []ngMissing
	files   []string // every file read, main first
}

var globMagic = regexp.MustCompile(`[*?\[]`)

// readFile parses one file (without following its includes) and splices
// the files its include directives name into the tree.
func (r *ngReader) readFile(file string, depth int) (crossplane.Directives, error) {
	payload, err := crossplane.Parse(file, &crossplane.ParseOptions{
		SingleFile:                true,
		SkipDirectiveContextCheck: true, // a site file has server blocks at its top
	})
	if err != nil {
		return nil, fmt.Errorf("nginx: %s: %w", file, err)
	}
	if len(payload.Errors) > 0 {
		var msgs []string
		for _, e := range payload.Errors {
			line := 0
			if e.Line != nil {
				line = *e.Line
			}
			msgs = append(msgs, fmt.Sprintf("%s:%d: %v", e.File, line, e.Error))
		}
		return nil, fmt.Errorf("nginx would refuse the config:\n%s", strings.Join(msgs, "\n"))
	}
	r.files = append(r.files, file)
	block := payload.Config[0].Parsed
	setFile(block, file)
	return r.expand(block, depth)
}

func setFile(b crossplane.Directives, file string) {
	for _, d := range b {
		d.File = file
		setFile(d.Block, file)
	}
}

// expand replaces each readable include in b (and in its blocks) by the
// directives of the files it names.
func (r *ngReader) expand(b crossplane.Directives, depth int) (crossplane.Directives, error) {
	var out crossplane.Directives
	for _, d := range b {
		if d.IsBlock() {
			inner, err := r.expand(d.Block, depth)
			if err != nil {
				return nil, err
			}
			d.Block = inner
		}
		if d.Directive != "include" || len(d.Args) != 1 {
			out = append(out, d)
			continue
		}
		pattern := d.Args[0]
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(r.prefix, pattern)
		}
		var names []string
		if globMagic.MatchString(pattern) {
			names, _ = filepath.Glob(pattern) // a bad pattern matches nothing, as in nginx
		} else {
			f, err := os.Open(pattern)
			if err == nil {
				f.Close()
				names = []string{pattern}
			} else {
				r.missing = append(r.missing, ngMissing{d: d, path: pattern, err: err})
				out = append(out, d) // listed by the importer
				continue
			}
		}
		if depth >= maxIncludeDepth {
			return nil, fmt.Errorf("%s:%d: include %s: more than %d nested includes (an include cycle?)", d.File, d.Line, d.Args[0], maxIncludeDepth)
		}
		for _, n := range names {
			inner, err := r.readFile(n, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, inner...)
		}
	}
	return out, nil
}

// knownInclude says what a common include that could not be read meant:
// Debian's nginx package, certbot and the usual tutorials write these.
// It returns the kind of note and its message; kind is NotTranslated for
// an include nobody knows.
func knownInclude(arg string) (kind, msg string) {
	base := path.Base(arg)
	switch {
	case base == "proxy_params":
		return Approximated, "Debian's proxy_params sets Host, X-Real-IP, X-Forwarded-For and X-Forwarded-Proto; hostctl passes Host and sets X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host itself (not X-Real-IP: the client is the first address of X-Forwarded-For)"
	case base == "mime.types":
		return Approximated, "the types of files by extension; hostctl has its own table (Go's, with the system's /etc/mime.types)"
	case base == "options-ssl-nginx.conf":
		return Approximated, "certbot's TLS options (TLS 1.2 and 1.3, its cipher list, a session cache); hostctl's TLS defaults are stricter (TLS 1.2 and 1.3, forward-secret AEAD ciphers only)"
	case base == "ssl-dhparams.pem":
		return Approximated, "certbot's DH parameters; hostctl offers no finite-field DH key exchange (ECDHE only), so they are not needed"
	case base == "snakeoil.conf":
		return Approximated, "Debian's snakeoil.conf names the self-signed certificate /etc/ssl/certs/ssl-cert-snakeoil.pem and its key; they are used as cert_file and key_file"
	case strings.Contains(base, "ssl") || strings.Contains(base, "tls"):
		return Approximated, "TLS settings (protocols, ciphers, session cache, HSTS or OCSP stapling as tutorials write them); hostctl's TLS defaults (TLS 1.2 and 1.3, forward-secret AEAD ciphers) are at least as strict; add a Strict-Transport-Security header in a caddyfile if the file set one"
	case base == "uwsgi_params", base == "fastcgi_params", base == "fastcgi.conf", base == "scgi_params", base == "fastcgi-php.conf":
		return NotTranslated, "parameters for uwsgi_pass, fastcgi_pass or scgi_pass: hostctl proxies over HTTP only (run the app with an HTTP server such as gunicorn or uwsgi --http-socket)"
	}
	return NotTranslated, "its directives are not translated: make it readable (or give the right --nginx-prefix) and import again"
}

// snakeoil are the files Debian's snippets/snakeoil.conf names.
const (
	snakeoilCert = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
	snakeoilKey  = "/etc/ssl/private/ssl-cert-snakeoil.key"
)
