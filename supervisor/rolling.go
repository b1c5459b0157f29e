package supervisor

import (
	"context"
	"errors"
	"slices"
	"strings"

	"go.uber.org/zap"
)

// roller is the owner goroutine of the rolling restarts of one program
// (rolling = true, instances > 1). It restarts the instances it is asked
// to one at a time and sends the next one its restart only once the one
// before is RUNNING with a new process (and so ready, with a ready
// probe): a restart never has every instance of the program down at
// once. Instances that are not RUNNING go first, since they serve nothing
// anyway. An instance that does not come back (FATAL, EXITED, STOPPED)
// ends the rolling restart: those not yet restarted keep running what
// they run, and the log says so. Its state (what is pending, which
// instance is in hand) is its goroutine's own.
type roller struct {
	program string
	msgs    chan rollMsg
}

// rollMsg asks a roller to restart instances, after those it has in hand,
// or to forget instances because they are being stopped.
type rollMsg struct {
	restart []*process
	forget  []*process
}

// rolling reports whether restarts of prog's instances go one at a time.
func (s *Supervisor) rolling(prog string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.programs[prog]
	return c != nil && c.Rolling && c.Instances > 1
}

var errShuttingDown = errors.New("hostctl is shutting down")

// sendRoll hands m to prog's roller, starting the roller if it has none
// and m asks for restarts.
func (s *Supervisor) sendRoll(ctx context.Context, prog string, m rollMsg) error {
	s.mu.Lock()
	r := s.rollers[prog]
	if r == nil && len(m.restart) > 0 {
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			return errShuttingDown
		}
		r = &roller{program: prog, msgs: make(chan rollMsg)}
		s.rollers[prog] = r
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.roll(r)
		}()
	}
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	select {
	case r.msgs <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return errShuttingDown
	}
}

// unroll tells the rollers of the programs of procs to leave procs alone:
// they are about to be stopped. Once it returns, no roller sends them a
// restart it had not sent before.
func (s *Supervisor) unroll(ctx context.Context, procs []*process) error {
	byProgram := map[string][]*process{}
	for _, p := range procs {
		byProgram[p.cfg.Program.Name] = append(byProgram[p.cfg.Program.Name], p)
	}
	for prog, ps := range byProgram {
		if err := s.sendRoll(ctx, prog, rollMsg{forget: ps}); err != nil && !errors.Is(err, errShuttingDown) {
			return err
		}
	}
	return nil
}

// roll is the roller's goroutine; it ends with the supervisor.
func (s *Supervisor) roll(r *roller) {
	log := s.log.With(zap.String("program", r.program))
	var pending []*process
	var cur *process  // the instance being restarted
	var before uint64 // its Generation before the restart
	for {
		var changed, gone <-chan struct{}
		switch {
		case cur != nil:
			st, ch := cur.current()
			switch {
			case st.State == Running && st.Generation > before:
				log.Info("rolling restart: instance is back", zap.String("process", st.Name), zap.Int("pending", len(pending)))
				cur = nil
				continue
			case st.StaysDown():
				log.Warn("rolling restart stopped: an instance did not come back; the instances not yet restarted keep running",
					zap.String("process", st.Name), zap.Stringer("state", st.State), zap.String("error", st.SpawnErr),
					zap.String("not_restarted", names(pending)))
				cur, pending = nil, nil
				continue
			}
			changed, gone = ch, cur.done
		case len(pending) > 0:
			i := slices.IndexFunc(pending, func(p *process) bool {
				st, _ := p.watch.get()
				return st.State != Running
			})
			i = max(i, 0)
			cur = pending[i]
			pending = slices.Delete(pending, i, i+1)
			st, _ := cur.watch.get()
			before = st.Generation
			log.Info("rolling restart: restarting instance", zap.String("process", cur.cfg.Name), zap.Int("pending", len(pending)))
			if err := cur.do(s.ctx, command{kind: cmdRestart}); err != nil {
				cur = nil // removed meanwhile, or shutting down
			}
			continue
		}
		select {
		case m := <-r.msgs:
			for _, p := range m.forget {
				pending = slices.DeleteFunc(pending, func(q *process) bool { return q == p })
				if p == cur {
					cur = nil
				}
			}
			for _, p := range m.restart {
				if slices.Contains(pending, p) {
					continue
				}
				if p == cur {
					// Stopping still: the restart in hand gives it a new
					// process. Past that, the request came after its new
					// process started: another restart is due.
					if st, _ := p.watch.get(); st.State == Stopping {
						continue
					}
				}
				pending = append(pending, p)
			}
		case <-changed:
		case <-gone:
			cur = nil
		case <-s.ctx.Done():
			return
		}
	}
}

func names(progs []*process) string {
	n := make([]string, len(progs))
	for i, p := range progs {
		n[i] = p.cfg.Name
	}
	return strings.Join(n, ", ")
}
