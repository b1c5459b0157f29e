package control

// Who may do what on a TCP admin listener: the Host check against DNS
// rebinding, the two tokens and what each allows. On the unix socket file
// permissions are the authentication and every caller is the admin.

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

// access is what a route needs on TCP.
type access uint8

const (
	public access = iota // anyone: the dashboard page and its files, /healthz
	read                 // either token
	write                // the admin token
)

// role is what a request's credentials allow.
type role uint8

const (
	roleNone  role = iota // no token, or a wrong one
	roleRead              // the read-only token
	roleAdmin             // the admin token, or the unix socket
)

// tokens holds the hashes of the admin and read-only tokens.
type tokens struct {
	admin, read       [sha256.Size]byte
	hasAdmin, hasRead bool
}

func newTokens(admin, read string) tokens {
	var t tokens
	if admin != "" {
		t.admin, t.hasAdmin = sha256.Sum256([]byte(admin)), true
	}
	if read != "" {
		t.read, t.hasRead = sha256.Sum256([]byte(read)), true
	}
	return t
}

// role returns what r's token allows: "Authorization: Bearer TOKEN", or
// with basic (supervisord's paths) HTTP Basic auth with the token as
// password (any user name: supervisorctl -u/-p). Both tokens are
// compared, in constant time and over hashes (so that neither a token's
// length nor which one matched first shows in the time taken).
func (t tokens) role(r *http.Request, basic bool) role {
	var got string
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		got = strings.TrimSpace(tok)
	} else if _, pass, ok := r.BasicAuth(); ok && basic {
		got = pass
	}
	if got == "" {
		return roleNone
	}
	h := sha256.Sum256([]byte(got))
	isAdmin := subtle.ConstantTimeCompare(h[:], t.admin[:]) == 1 && t.hasAdmin
	isRead := subtle.ConstantTimeCompare(h[:], t.read[:]) == 1 && t.hasRead
	switch {
	case isAdmin:
		return roleAdmin
	case isRead:
		return roleRead
	}
	return roleNone
}

// readOnly is the refusal of a write (what, e.g. "POST /v1/stop" or
// "supervisor.stopProcess") to the read-only token.
func readOnly(what string) string {
	return "this token is read-only ([admin] read_token_file): " + what + " needs the admin token ([admin] token_file)"
}

// checkWrite is supervisord.Options.CheckWrite: /RPC2 is a read route
// (its read methods are the read-only token's too), so its write methods
// ask here whether the caller's token may write.
func checkWrite(ctx context.Context, what string) error {
	if roleOf(ctx) < roleAdmin {
		return errors.New(readOnly(what))
	}
	return nil
}

type roleKey struct{}

func withRole(ctx context.Context, r role) context.Context {
	return context.WithValue(ctx, roleKey{}, r)
}

// roleOf is the caller's role that allowed put in ctx; roleNone if none.
func roleOf(ctx context.Context) role {
	r, _ := ctx.Value(roleKey{}).(role)
	return r
}

// hostOK reports whether host (a Host header) names this listener: an IP
// address (a browser sends one only to a page of that address, never to
// a rebound name), localhost, or one of Options.Names; or none at all
// (HTTP/1.0), which no browser sends. A DNS rebinding attack sends its own
// name: evil.example resolved to 127.0.0.1 makes the browser's request
// same-origin, Origin and all, but not its Host.
func (s *Server) hostOK(host string) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return host == "localhost" || s.names[host]
}

func (s *Server) refuseHost(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusForbidden, apitype.CodeForbidden, "Host "+r.Host+" is not a name of this admin listener (DNS rebinding?): use its address, or add the name to [admin] names", nil)
}
