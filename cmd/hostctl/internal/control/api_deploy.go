package control

// hostctl deploy: POST /v1/deploy, a stream of progress lines; hostctl
// releases: GET /v1/releases.

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
)

// Deployer is hostctl deploy as the API sees it; the daemon implements it.
type Deployer interface {
	// Deploy prepares, gates and switches to a new release, calling emit
	// with each step and output line as it happens (never after it
	// returns). ctx ending before the switch cancels the deploy (the new
	// slot is stopped, nothing live changes); after it, the deploy runs
	// to its end.
	Deploy(ctx context.Context, req apitype.DeployRequest, emit func(apitype.DeployEvent)) error
}

// Releases is what the API, the dashboard and /metrics read of
// [deploy]; the daemon implements it.
type Releases interface {
	// Releases returns every release, the live one and the last deploys;
	// Configured is false without [deploy].
	Releases() (apitype.ReleasesResponse, error)
	// DeployCounts returns how many deploys ended with each result since
	// hostctl started; nil without [deploy].
	DeployCounts() map[string]uint64
}

func (s *Server) releases(w http.ResponseWriter, r *http.Request) {
	if s.opts.Releases == nil {
		writeJSON(w, http.StatusOK, apitype.ReleasesResponse{Releases: []apitype.Release{}, Deploys: []apitype.DeployRecord{}})
		return
	}
	resp, err := s.opts.Releases.Releases()
	if err != nil {
		writeError(w, http.StatusInternalServerError, apitype.CodeFailed, "reading the releases: "+err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// liveRelease is the live release for /metrics; nil before the first
// deploy or when the state cannot be read (the scrape goes on).
func (s *Server) liveRelease() *apitype.Release {
	resp, err := s.opts.Releases.Releases()
	if err != nil {
		s.log.Warn("metrics: reading the live release", zap.Error(err))
		return nil
	}
	return resp.Live
}

func (s *Server) deploy(w http.ResponseWriter, r *http.Request) {
	if s.opts.Deploy == nil {
		writeError(w, http.StatusServiceUnavailable, apitype.CodeUnavailable, "deploy is not available", nil)
		return
	}
	var req apitype.DeployRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Ref != "" && req.From != "" {
		writeError(w, http.StatusBadRequest, apitype.CodeBadRequest, "give ref or from, not both", nil)
		return
	}
	if req.From != "" && !filepath.IsAbs(req.From) {
		writeError(w, http.StatusBadRequest, apitype.CodeBadRequest, "from must be an absolute path on the host", nil)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var mu sync.Mutex // one line at a time: emit may be called from the deploy's goroutines
	enc := json.NewEncoder(w)
	write := func(ev apitype.DeployEvent) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Time.IsZero() {
			ev.Time = time.Now().UTC()
		}
		enc.Encode(ev) // a client gone away: the deploy sees ctx end
		rc.Flush()
	}
	err := s.opts.Deploy.Deploy(r.Context(), req, write)
	end := apitype.DeployEvent{Result: apitype.DeployOK}
	if err != nil {
		end = apitype.DeployEvent{Result: apitype.DeployFailed, Error: err.Error()}
	}
	write(end)
}
