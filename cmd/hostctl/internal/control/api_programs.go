package control

// The processes: GET /v1/programs[/{name}[/log]], POST /v1/start, /v1/stop,
// /v1/restart and /v1/signal.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hostctl/hostctl/cmd/hostctl/apitype"
	"github.com/hostctl/hostctl/supervisor"
)

func (s *Server) listPrograms(w http.ResponseWriter, r *http.Request) {
	progs, err := s.snapshot(r.URL.Query()["name"])
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, progs)
}

func (s *Server) getProgram(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	progs, err := s.snapshot([]string{name})
	if err != nil {
		s.fail(w, err)
		return
	}
	if len(progs) > 1 {
		names := make([]string, len(progs))
		for i, p := range progs {
			names[i] = p.Name
		}
		writeError(w, http.StatusBadRequest, apitype.CodeBadRequest, fmt.Sprintf("%q stands for %d processes (%s): name one, or list them with GET /v1/programs?name=%s",
			name, len(progs), strings.Join(names, ", "), url.QueryEscape(name)), nil)
		return
	}
	writeJSON(w, http.StatusOK, progs[0])
}

func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	kind := strings.TrimPrefix(r.URL.Path, "/v1/")
	var req apitype.ActionRequest
	if !readJSON(w, r, &req) {
		return
	}
	if len(req.Names) == 0 {
		writeError(w, http.StatusBadRequest, apitype.CodeBadRequest, `"names" is empty: name programs, or ["all"]`, nil)
		return
	}
	names, err := s.opts.Programs.Resolve(req.Names...)
	if err != nil {
		s.fail(w, err)
		return
	}
	wait := time.Duration(req.WaitSeconds * float64(time.Second))
	if wait < 0 || wait > maxWait {
		writeError(w, http.StatusBadRequest, apitype.CodeBadRequest, fmt.Sprintf("wait_seconds must be between 0 and %d", int(maxWait.Seconds())), nil)
		return
	}
	// The commands are sent even if the caller goes away meanwhile (half
	// of "restart all" must not depend on a client's patience); only the
	// wait for their outcome ends with the request.
	ctx := r.Context()
	cmdCtx := context.WithoutCancel(ctx)
	before, err := s.opts.Programs.Status(names...)
	if err != nil {
		s.fail(w, err)
		return
	}
	var resp apitype.ActionResponse
	switch kind {
	case "signal":
		sig, err := supervisor.ParseSignal(req.Signal)
		if err != nil {
			writeError(w, http.StatusBadRequest, apitype.CodeBadRequest, err.Error(), nil)
			return
		}
		for _, n := range names {
			res := apitype.ActionResult{Name: n, OK: true}
			if err := s.opts.Programs.SignalProcesses(cmdCtx, sig, n); err != nil {
				res.OK, res.Error = false, err.Error()
			}
			if sts, err := s.opts.Programs.Status(n); err == nil {
				res.Status = apiStatus(sts[0])
			}
			resp.Results = append(resp.Results, res)
		}
		writeJSON(w, http.StatusOK, resp)
		return
	case "start":
		err = s.opts.Programs.StartProcesses(cmdCtx, names...)
	case "stop":
		err = s.opts.Programs.StopProcesses(cmdCtx, names...)
	case "restart":
		err = s.opts.Programs.RestartProcesses(cmdCtx, names...)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for _, st0 := range before {
		resp.Results = append(resp.Results, s.await(wctx, kind, st0, wait))
	}
	writeJSON(w, http.StatusOK, resp)
}

// await waits (until ctx ends) for one program to reach the target state
// of kind, and says why not when it does not.
func (s *Server) await(ctx context.Context, kind string, before supervisor.Status, wait time.Duration) apitype.ActionResult {
	verdict := targetOf(kind, before)
	var st supervisor.Status
	var err error
	if wait <= 0 {
		var sts []supervisor.Status
		if sts, err = s.opts.Programs.Status(before.Name); err == nil {
			st = sts[0]
		}
		res := apitype.ActionResult{Name: before.Name, OK: err == nil, Status: apiStatus(st)}
		if err != nil {
			res.Error = err.Error()
		}
		return res
	}
	st, err = s.opts.Programs.WaitFor(ctx, before.Name, func(st supervisor.Status) bool {
		done, _ := verdict(st)
		return done
	})
	res := apitype.ActionResult{Name: before.Name, Status: apiStatus(st)}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			res.Error = fmt.Sprintf("still %s after %s", st.State, wait)
			if st.Info != "" {
				res.Error += " (" + st.Info + ")"
			}
		} else {
			res.Error = err.Error()
		}
		return res
	}
	_, why := verdict(st)
	res.OK, res.Error = why == "", why
	return res
}

// targetOf returns, for an action on a program whose status was before,
// a verdict: done when the wait is over, and why (empty for success).
func targetOf(kind string, before supervisor.Status) func(supervisor.Status) (done bool, why string) {
	// failed says why a program that stays down did not get to RUNNING.
	failed := func(st supervisor.Status) string {
		if !st.StaysDown() {
			return ""
		}
		switch {
		case st.State == supervisor.Fatal && st.SpawnErr != "":
			return "FATAL: " + st.SpawnErr
		case st.State == supervisor.Exited && st.LastExit != nil:
			return "EXITED: " + st.LastExit.String()
		case st.State == supervisor.Stopped:
			return "STOPPED (stopped while starting)"
		}
		return st.State.String()
	}
	switch kind {
	case "stop":
		return func(st supervisor.Status) (bool, string) { return st.StaysDown(), "" }
	case "restart":
		return func(st supervisor.Status) (bool, string) {
			if st.State == supervisor.Running && st.Generation > before.Generation {
				return true, ""
			}
			// A rolling restart reaches its instances one at a time,
			// after the request was accepted: an instance still exactly
			// as it was has not been restarted yet, however down it is.
			if st.State == before.State && st.StateSince.Equal(before.StateSince) && st.Generation == before.Generation {
				return false, ""
			}
			if why := failed(st); why != "" {
				return true, why
			}
			return false, ""
		}
	default: // start
		return func(st supervisor.Status) (bool, string) {
			if st.State == supervisor.Running {
				return true, ""
			}
			if why := failed(st); why != "" {
				return true, why
			}
			return false, ""
		}
	}
}

func (s *Server) programLog(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	stream := q.Get("stream")
	if stream == "" {
		stream = "stdout"
	}
	ls, err := s.opts.Programs.Log(name, stream)
	if errors.Is(err, supervisor.ErrUnknownProgram) {
		s.fail(w, err)
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, apitype.CodeBadRequest, err.Error(), nil)
		return
	}
	lines := 10
	if v := q.Get("lines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100000 {
			writeError(w, http.StatusBadRequest, apitype.CodeBadRequest, "lines must be a number from 0 to 100000", nil)
			return
		}
		lines = n
	}
	follow, _ := strconv.ParseBool(q.Get("follow"))
	if ls == nil {
		writeError(w, http.StatusNotFound, apitype.CodeNotFound, fmt.Sprintf("the %s of %s is not logged (%s_log = \"none\", or redirect_stderr)", stream, name, stream), nil)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Log-Path", ls.Path())
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	emit := func(line []byte) error {
		line = trimNL(line)
		if err := enc.Encode(apitype.LogLine{Line: string(line)}); err != nil {
			return err
		}
		return rc.Flush()
	}
	if !follow {
		b, err := ls.Tail(lines)
		if err != nil {
			s.log.Warn("tail failed", zap.String("program", name), zap.Error(err))
			return
		}
		for len(b) > 0 {
			i := strings.IndexByte(string(b), '\n')
			if i < 0 {
				i = len(b) - 1
			}
			if emit(b[:i+1]) != nil {
				return
			}
			b = b[i+1:]
		}
		return
	}
	rc.Flush()
	err = ls.Follow(r.Context(), lines, emit)
	if err != nil && r.Context().Err() == nil {
		s.log.Debug("log follow ended", zap.String("program", name), zap.Error(err))
	}
}

func trimNL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
