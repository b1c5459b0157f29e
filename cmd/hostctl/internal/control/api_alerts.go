package control

// The alerts: GET /v1/alerts, POST /v1/alerts/test.

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/cmd/hostctl/internal/alert"
)

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) {
	var res apitype.AlertsResponse
	if s.opts.Alerts != nil {
		res.Alerts, res.Sinks = apiAlerts(s.opts.Alerts.Active(), s.opts.Alerts.Sinks())
		res.Heartbeats = apiHeartbeats(s.opts.Alerts.Heartbeats())
	} else {
		res.Alerts, res.Sinks = apiAlerts(nil, nil)
		res.Heartbeats = apiHeartbeats(nil)
	}
	writeJSON(w, http.StatusOK, res)
}

// apiHeartbeats is the heartbeats on the wire, empty (never nil) without
// any. The status carries no URL, only its scheme and host.
func apiHeartbeats(beats []alert.HeartbeatStatus) []apitype.AlertHeartbeat {
	out := make([]apitype.AlertHeartbeat, len(beats))
	for i, b := range beats {
		out[i] = apitype.AlertHeartbeat{
			Name: b.Name, Kind: b.Kind, Where: b.Where, IntervalSeconds: b.Interval.Seconds(), OnAlert: b.OnAlert,
			LastPing: b.LastPing, LastForm: b.LastForm, LastError: b.LastError, NextDue: b.NextDue, Sent: b.Sent, Failed: b.Failed,
		}
	}
	return out
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
