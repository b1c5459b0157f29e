package control

// The config: POST /v1/reload.

import (
	"context"
	"fmt"
	"net/http"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.opts.Reload == nil {
		writeError(w, http.StatusServiceUnavailable, apitype.CodeUnavailable, "reload is not available", nil)
		return
	}
	// A reload runs to its end even if the caller goes away: stopping
	// half of the changed programs would leave neither config running.
	res, err := s.opts.Reload(context.WithoutCancel(r.Context()))
	if err != nil {
		list := apitype.Problems(err)
		writeError(w, http.StatusUnprocessableEntity, apitype.CodeConfigInvalid,
			fmt.Sprintf("reload failed; still running the previous config: %d problem(s)", len(list)), list)
		return
	}
	writeJSON(w, http.StatusOK, apiReload(res))
}
