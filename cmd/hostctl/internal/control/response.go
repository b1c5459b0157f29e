package control

// Reading requests and writing answers.

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/supervisor"
)

// fail answers with the status code of err: 404 for unknown programs
// (listed in "errors"), 400 for "all" mixed with names, else 500.
func (s *Server) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, supervisor.ErrUnknownProgram):
		var names []string
		if ue, ok := errors.AsType[*supervisor.UnknownProgramsError](err); ok {
			names = ue.Names
		}
		writeError(w, http.StatusNotFound, apitype.CodeUnknownProgram, err.Error(), names)
		return
	case errors.Is(err, supervisor.ErrAllWithNames):
		writeError(w, http.StatusBadRequest, apitype.CodeBadRequest, err.Error(), nil)
		return
	}
	s.log.Warn("admin API request failed", zap.Error(err))
	writeError(w, http.StatusInternalServerError, apitype.CodeFailed, err.Error(), nil)
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		// Also keeps browsers' "simple" cross-site form posts out.
		writeError(w, http.StatusUnsupportedMediaType, apitype.CodeBadRequest, "send Content-Type: application/json", nil)
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, apitype.CodeBadRequest, "bad JSON body: "+err.Error(), nil)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, kind, msg string, list []string) {
	writeJSON(w, code, apitype.ErrorBody{Error: msg, Code: kind, Errors: list})
}
