package proxy

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The Caddy modules compiled into hostctl: what the generated config uses
// (the http app, reverse_proxy, encode with gzip and zstd, headers, rewrite,
// request_body, static_response, subroute, error, the tls app with the
// internal and ACME issuers, file storage, log writers; hostctl's own
// hostctl_static, hostctl_upstream and hostctl_pool handlers and log core), plus the directives a `caddyfile`
// escape hatch may reasonably need: handle, handle_path, route, redir,
// respond, rewrite, uri, method, header, request_header, basic_auth,
// forward_auth, reverse_proxy, encode, request_body, map, vars, intercept,
// timeouts, log_append, error, abort.
//
// Left out, each for its cost: Caddy's file_server (and with it try_files
// and templates: file_server imports the template engine for its directory
// listings, which links a Markdown renderer and the chroma syntax
// highlighter, about 5 MB of binary and 35 ms of package init in every
// hostctl process, the CLI's included); php_fastcgi, metrics, tracing,
// push, acme_server and the brotli precompressed module (nothing generates
// them). A Caddyfile that uses one of their directives fails to load with
// an error naming it (notBuiltIn).
import (
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/encode/gzip"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/encode/zstd"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/intercept"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/logging"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/map"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/requestbody"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy/forwardauth"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/rewrite"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/timeouts"
	_ "github.com/caddyserver/caddy/v2/modules/caddypki"
	_ "github.com/caddyserver/caddy/v2/modules/caddytls"
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"
	_ "github.com/caddyserver/caddy/v2/modules/logging"
)

// notBuiltIn maps each standard Caddyfile directive whose module is left
// out to a hint for the error, "" for none. Without these, the adapter's
// error would be "unrecognized directive", as for a typo.
var notBuiltIn = map[string]string{
	"file_server": "serve files with [[proxy.static]]",
	"try_files":   "serve files with [[proxy.static]]",
	"templates":   "",
	"php_fastcgi": "",
	"metrics":     "",
	"tracing":     "",
	"push":        "",
	"acme_server": "",
}

func init() {
	for name, hint := range notBuiltIn {
		httpcaddyfile.RegisterHandlerDirective(name, func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
			h.Next() // the directive's name: the error then gives its file and line
			msg := "directive " + name + " is not built into hostctl (its Caddy module is not linked)"
			if hint != "" {
				msg += ": " + hint
			}
			return nil, h.Err(msg)
		})
	}
}
