package proxy

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(ErrorPage{})
}

// statusPlaceholder is the one piece of an error page that is replaced:
// by the status code, three digits.
const statusPlaceholder = "{http.error.status_code}"

// ErrorPage answers an error with a page, with the error's status
// (http.handlers.hostctl_error_page), in a site's error routes. The page
// is the error_page file, which the app's user may write: it is served as
// written, except that each "{http.error.status_code}" becomes the status.
// Caddy's static_response would expand every placeholder in it, as root:
// {file./etc/shadow}, {env.SECRET}, request headers.
type ErrorPage struct {
	// Body is the page.
	Body string `json:"body"`

	parts []string // Body split at statusPlaceholder
}

// CaddyModule returns the Caddy module information.
func (ErrorPage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.hostctl_error_page",
		New: func() caddy.Module { return new(ErrorPage) },
	}
}

// Provision splits the page where the status goes.
func (e *ErrorPage) Provision(caddy.Context) error {
	e.parts = strings.Split(e.Body, statusPlaceholder)
	return nil
}

// ServeHTTP writes the page with the status of the error being handled
// (500 if there is none).
func (e *ErrorPage) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	status := http.StatusInternalServerError
	if err, ok := r.Context().Value(caddyhttp.ErrorCtxKey).(error); ok {
		var he caddyhttp.HandlerError
		if errors.As(err, &he) && he.StatusCode >= 400 && he.StatusCode <= 599 {
			status = he.StatusCode
		}
	}
	code := strconv.Itoa(status)
	n := len(e.Body) + (len(e.parts)-1)*(len(code)-len(statusPlaceholder))
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return nil
	}
	for i, p := range e.parts {
		if i > 0 {
			if _, err := io.WriteString(w, code); err != nil {
				return nil
			}
		}
		if _, err := io.WriteString(w, p); err != nil {
			return nil // the client is gone
		}
	}
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*ErrorPage)(nil)
	_ caddyhttp.MiddlewareHandler = (*ErrorPage)(nil)
)
