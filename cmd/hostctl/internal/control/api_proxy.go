package control

// The web front: GET /v1/proxy, GET and POST /v1/drain, POST /v1/undrain.

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

func (s *Server) proxyStatus(w http.ResponseWriter, r *http.Request) {
	var res apitype.ProxyResponse
	if st, ok := s.proxy(); ok {
		res = apitype.ProxyResponse{Configured: true, Status: &st}
	}
	writeJSON(w, http.StatusOK, res)
}

// proxy is the proxy's status from Options.Proxy; false without a proxy.
func (s *Server) proxy() (apitype.ProxyStatus, bool) {
	if s.opts.Proxy == nil {
		return apitype.ProxyStatus{}, false
	}
	return s.opts.Proxy()
}

func (s *Server) drainStatus(w http.ResponseWriter, r *http.Request) {
	if s.opts.Drain == nil {
		writeError(w, http.StatusServiceUnavailable, apitype.CodeUnavailable, "drain is not available", nil)
		return
	}
	st, err := s.opts.Drain.DrainStatus()
	if err != nil {
		s.drainFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// drain is POST /v1/drain and /v1/undrain.
func (s *Server) drain(w http.ResponseWriter, r *http.Request) {
	if s.opts.Drain == nil {
		writeError(w, http.StatusServiceUnavailable, apitype.CodeUnavailable, "drain is not available", nil)
		return
	}
	var req apitype.DrainRequest
	if !readJSON(w, r, &req) {
		return
	}
	wait := time.Duration(req.WaitSeconds * float64(time.Second))
	quiet := time.Duration(req.QuietSeconds * float64(time.Second))
	if wait < 0 || wait > maxWait {
		writeError(w, http.StatusBadRequest, apitype.CodeBadRequest, fmt.Sprintf("wait_seconds must be between 0 and %d", int(maxWait.Seconds())), nil)
		return
	}
	if quiet < 0 || quiet > maxWait {
		writeError(w, http.StatusBadRequest, apitype.CodeBadRequest, fmt.Sprintf("quiet_seconds must be between 0 and %d", int(maxWait.Seconds())), nil)
		return
	}
	if quiet == 0 {
		quiet = defaultQuiet
	}
	var st apitype.DrainStatus
	var err error
	if r.URL.Path == "/v1/undrain" {
		st, err = s.opts.Drain.Undrain(r.Context(), wait)
	} else {
		st, err = s.opts.Drain.Drain(r.Context(), wait, quiet)
	}
	if err != nil {
		s.drainFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) drainFailed(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrNoHealthPath) {
		writeError(w, http.StatusConflict, apitype.CodeUnavailable, err.Error(), nil)
		return
	}
	s.fail(w, err)
}
