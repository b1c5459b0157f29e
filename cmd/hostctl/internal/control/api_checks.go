package control

// The checks of services hostctl does not run: GET /v1/checks.

import (
	"net/http"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

func (s *Server) listChecks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, apitype.ChecksResponse{Checks: s.checks()})
}

// checks is every check on the wire; empty without Options.Checks.
func (s *Server) checks() []apitype.Check {
	if s.opts.Checks == nil {
		return apiChecks(nil)
	}
	return apiChecks(s.opts.Checks())
}
