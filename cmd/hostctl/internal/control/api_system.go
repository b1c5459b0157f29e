package control

// hostctl itself: GET /healthz, /metrics and /v1/history, and
// supervisord's API (package supervisord) at /RPC2, /logtail and
// /mainlogtail.

import (
	"net/http"
	"os"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

// healthz answers that hostctl is up; its pid and version only to a
// caller with a token (or on the unix socket): anyone may ask.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	h := apitype.Healthz{OK: true}
	if roleOf(r.Context()) > roleNone {
		h.PID, h.Version = os.Getpid(), s.opts.Version
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	s.metrix.Handler().ServeHTTP(w, r)
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.metrix.History())
}

func (s *Server) rpc(w http.ResponseWriter, r *http.Request) { s.rpcs.RPC(w, r) }

func (s *Server) logtail(w http.ResponseWriter, r *http.Request) { s.rpcs.LogTail(w, r) }

func (s *Server) mainlogtail(w http.ResponseWriter, r *http.Request) { s.rpcs.MainLogTail(w, r) }
