package control

// The alerts: GET /v1/alerts, POST /v1/alerts/test.

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) {
	var res apitype.AlertsResponse
	if s.opts.Alerts != nil {
		res.Alerts, res.Sinks = apiAlerts(s.opts.Alerts.Active(), s.opts.Alerts.Sinks())
	} else {
		res.Alerts, res.Sinks = apiAlerts(nil, nil)
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) testAlerts(w http.ResponseWriter, r *http.Request) {
	if s.opts.Alerts == nil {
		writeError(w, http.StatusServiceUnavailable, apitype.CodeUnavailable, "alerts are not available", nil)
		return
	}
	// No body is needed; reading it to its end also lets the server notice
	// a caller that goes away, which ends ctx and with it the test.
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, apitype.CodeBadRequest, "send Content-Type: application/json", nil)
		return
	}
	io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 1<<20))
	ctx, cancel := context.WithTimeout(r.Context(), alertTestTimeout)
	defer cancel()
	writeJSON(w, http.StatusOK, apitype.AlertsTestResponse{Results: apiAlertTests(s.opts.Alerts.Test(ctx))})
}
