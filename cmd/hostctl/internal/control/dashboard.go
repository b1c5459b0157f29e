package control

import (
	"embed"
	"net/http"
	"path"
)

// dashboardFiles is the web dashboard: plain HTML, CSS and JavaScript, no
// build step. The page asks for the token when the API answers 401 (TCP
// listener), keeps it in sessionStorage (gone with the tab) and sends it
// in the Authorization header, never in a cookie: another site can neither
// read the page (CSP frame-ancestors, X-Frame-Options) nor make the
// browser send the token for it.
//
//go:embed dashboard/index.html dashboard/dashboard.js dashboard/dashboard.css
var dashboardFiles embed.FS

// dashboardCSP allows only the page's own files and API.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

func (s *Server) dashboardIndex(w http.ResponseWriter, r *http.Request) {
	s.serveAsset(w, "index.html", "text/html; charset=utf-8")
}

func (s *Server) dashboardAsset(w http.ResponseWriter, r *http.Request) {
	name := path.Base(r.URL.Path)
	ct := "text/css; charset=utf-8"
	if path.Ext(name) == ".js" {
		ct = "text/javascript; charset=utf-8"
	}
	s.serveAsset(w, name, ct)
}

func (s *Server) serveAsset(w http.ResponseWriter, name, contentType string) {
	b, err := dashboardFiles.ReadFile("dashboard/" + name)
	if err != nil {
		http.NotFound(w, nil)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	w.Write(b)
}
