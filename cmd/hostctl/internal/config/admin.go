package config

import (
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/hostctl/hostctl/cmd/hostctl/internal/control"
	"github.com/hostctl/hostctl/supervisor"
)

// HostNames is [admin] names: a list of host names. It is kept as one
// string so that Admin stays comparable (a reload compares [admin] to
// tell that it changed).
type HostNames struct{ joined string }

// hostName is a DNS name: letters, digits, '-' and '.', no port.
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)

// UnmarshalTOML reads an array of host names.
func (n *HostNames) UnmarshalTOML(v any) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("must be a list of host names, e.g. [\"web1.example.org\"]")
	}
	var names []string
	for i, e := range list {
		s, ok := e.(string)
		if !ok || !hostName.MatchString(s) || len(s) > 253 {
			return fmt.Errorf("[%d] %v is not a host name (letters, digits, '-' and '.'; no port, no address)", i, e)
		}
		names = append(names, s)
	}
	n.joined = strings.Join(names, " ")
	return nil
}

// List returns the names.
func (n HostNames) List() []string { return strings.Fields(n.joined) }

// TLSOn reports whether [admin] listen serves TLS.
func (a Admin) TLSOn() bool { return a.TLS == "internal" || a.CertFile != "" }

// validateTCP checks the keys of the TCP listener: its TLS, its read-only
// token, and that a listener reachable from the network is not plain
// HTTP unless insecure says so.
func (a Admin) validateTCP(bad func(key, format string, args ...any)) {
	if a.Listen != "" {
		if _, _, err := net.SplitHostPort(a.Listen); err != nil {
			bad("admin.listen", "%q is not HOST:PORT (for example \"127.0.0.1:9001\", or \"10.0.0.11:9001\" with TLS)", a.Listen)
		} else if !a.TLSOn() && !a.Insecure && !control.LoopbackAddr(a.Listen) {
			bad("admin.listen", "%q is reachable from the network, and without TLS the admin token would cross it in clear: "+
				"give it TLS (admin.tls = \"internal\", or admin.cert_file and admin.key_file), listen on a loopback address (127.0.0.1), "+
				"or, on a private network you trust, write admin.insecure = true", a.Listen)
		}
	}
	if a.TLS != "" && a.TLS != "internal" {
		bad("admin.tls", "%q: the only value is \"internal\" (a certificate signed by hostctl's own CA); for your own certificate set admin.cert_file and admin.key_file", a.TLS)
	}
	switch {
	case a.TLS == "internal" && (a.CertFile != "" || a.KeyFile != ""):
		bad("admin.tls", "\"internal\" makes its own certificate: remove admin.cert_file and admin.key_file, or this")
	case (a.CertFile == "") != (a.KeyFile == ""):
		bad("admin.cert_file", "admin.cert_file and admin.key_file go together: set both")
	case a.CertFile != "":
		if err := control.CheckKeyPair(a.CertFile, a.KeyFile); err != nil {
			bad("admin.cert_file", "cannot load with admin.key_file: %v", supervisor.UnwrapPathErr(err))
		}
	}
	if a.Listen == "" {
		for _, k := range []struct {
			key string
			set bool
		}{{"tls", a.TLS != ""}, {"cert_file", a.CertFile != ""}, {"read_token_file", a.ReadTokenFile != ""}, {"names", a.Names.joined != ""}} {
			if k.set {
				bad("admin."+k.key, "is for the TCP admin listener: set admin.listen too, or remove this")
			}
		}
	}
	// The tokens were read at provision ("" when unreadable: that error
	// is reported there).
	for _, t := range []struct{ key, file, tok string }{{"admin.token_file", a.TokenFile, a.Token}, {"admin.read_token_file", a.ReadTokenFile, a.ReadToken}} {
		if t.tok != "" && len(t.tok) < 16 {
			bad(t.key, "the token must be at least 16 characters (e.g. openssl rand -hex 32 > FILE)")
		}
	}
	if a.ReadToken != "" && a.ReadToken == a.Token {
		bad("admin.read_token_file", "holds the admin token: the read-only token must be another one")
	}
}
