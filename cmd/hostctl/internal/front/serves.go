// Package front owns the policy of hostctl's web front that is not the
// proxy engine's: which program serves which proxy upstream (the serves
// key and its default), what health_path answers for a site, and the
// drain (hostctl drain and undrain). The daemon wires it to the
// supervisor and the proxy; the proxy only asks it (Options.SiteHealth).
package front

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/hostctl/hostctl/proxy"
	"github.com/hostctl/hostctl/supervisor"
)

// ServedBy returns the upstreams the process p serves, each in its
// canonical spelling (proxy.ParseUpstream): its serves key when set
// (serves = [] serves none), else the one its ready probe proves, that is
// ready.tcp as a host:port upstream, ready.socket as a unix upstream, or
// ready.http's host:port. Nothing else is guessed: a program that binds a
// socket its probe does not check says so with serves. p is the config of
// one process (supervisor.ProgramConfig.Processes), ${INSTANCE} expanded.
func ServedBy(p *supervisor.ProcessConfig) []string {
	if p.Program.Serves != nil {
		out := make([]string, 0, len(p.Program.Serves))
		for _, u := range p.Program.Serves {
			out = append(out, proxy.CanonicalUpstream(u))
		}
		return out
	}
	if addr := provenBy(p.Program.Ready); addr != "" {
		return []string{addr}
	}
	return nil
}

// provenBy is the upstream a ready probe proves answers, or "".
func provenBy(r *supervisor.ProbeConfig) string {
	switch {
	case r == nil:
		return ""
	case r.TCP != "":
		return proxy.CanonicalUpstream(r.TCP)
	case r.Socket != "":
		return proxy.CanonicalUpstream("unix:" + r.Socket)
	case r.HTTP != "":
		u, err := url.Parse(r.HTTP)
		if err != nil || u.Host == "" {
			return ""
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		if port == "" {
			return ""
		}
		return proxy.CanonicalUpstream(net.JoinHostPort(host, port))
	}
	return ""
}

// Links is which processes serve each upstream: canonical upstream ->
// process names, in the order of the processes given.
type Links map[string][]string

// NewLinks links every upstream that one of procs serves (ServedBy).
func NewLinks(procs []*supervisor.ProcessConfig) Links {
	l := Links{}
	for _, p := range procs {
		for _, u := range ServedBy(p) {
			if !slices.Contains(l[u], p.Name) {
				l[u] = append(l[u], p.Name)
			}
		}
	}
	return l
}

// PeerUIDs returns, for each unix upstream that one of procs serves
// (ServedBy), the uids those processes run as: their user's, else
// hostctl's own. The proxy refuses a connection to the socket from a
// listener with another uid (proxy.Config.UpstreamPeers), so that the
// app's user cannot swap in a link to a root-owned socket. A process
// whose user cannot be looked up adds no uid; if no process of an
// upstream adds one, it gets the uid of no user (-1) so that every
// listener is refused rather than every one allowed.
func PeerUIDs(procs []*supervisor.ProcessConfig) map[string][]uint32 {
	out := map[string][]uint32{}
	for _, p := range procs {
		uid, ok := uint32(os.Getuid()), true
		if p.Program.User != "" {
			uid, ok = lookupUID(p.Program.User)
		}
		if !ok {
			uid = noUID
		}
		for _, u := range ServedBy(p) {
			a, err := proxy.ParseUpstream(u)
			if err != nil || a.Network != "unix" {
				continue
			}
			if !slices.Contains(out[u], uid) {
				out[u] = append(out[u], uid)
			}
		}
	}
	return out
}

// noUID is the uid of no user ((uid_t)-1 is never a process's uid).
const noUID = ^uint32(0)

func lookupUID(name string) (uint32, bool) {
	u, err := supervisor.LookupUser(name)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(u.Uid, 10, 32)
	return uint32(n), err == nil
}

// Programs returns the processes that serve one of the upstreams ups
// (written in any spelling), without duplicates: those the proxy waits
// for, health_path answers by and upstreams_down names.
func (l Links) Programs(ups []string) []string {
	var out []string
	for _, u := range ups {
		for _, n := range l[proxy.CanonicalUpstream(u)] {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// Problem is a finding of Check at a config key.
type Problem struct {
	Key string // "proxy.upstream", "program.web.serves[0]"
	Msg string
}

func (p *Problem) Error() string { return p.Key + ": " + p.Msg }

// Field returns the key and the message apart, for the config reader to
// put the key's line in front.
func (p *Problem) Field() (key, msg string) { return p.Key, p.Msg }

// Report is what Check found: errors (the config is refused), warnings,
// and the local upstreams no program of this hostctl serves (hostctl
// check says so in its summary).
type Report struct {
	Errors   []error
	Warnings []*Problem
	Unserved []string
}

// Check checks the link between the programs and the proxy's sites:
//   - a serves entry that is not an upstream address is an error;
//   - a local upstream (a unix socket, or a loopback host:port) that no
//     program serves while a program's command line or ready.exec mentions
//     it (the guess hostctl used to make) is an error at the upstream that
//     names the program and says to write serves: the proxy would not wait
//     for that program, and health_path would not answer by it;
//   - a local upstream that nothing mentions is allowed (something else
//     runs it: php-fpm under systemd) and listed in Unserved;
//   - a serves entry that no site of [proxy] uses is a warning (a typo, or
//     [proxy] was removed).
//
// progs are the programs (not yet split into processes); pc may be nil.
func Check(progs []*supervisor.ProgramConfig, pc *proxy.Config) Report {
	var r Report
	var procs []*supervisor.ProcessConfig
	for _, p := range progs {
		for i, u := range p.Serves {
			if strings.Contains(u, "$") {
				continue // ${INSTANCE}: checked per process below
			}
			if _, err := proxy.ParseUpstream(u); err != nil {
				r.Errors = append(r.Errors, &Problem{Key: fmt.Sprintf("program.%s.serves[%d]", p.Name, i), Msg: err.Error()})
			}
		}
		ps, err := p.Processes()
		if err != nil {
			continue // its own validation says why
		}
		for _, c := range ps {
			for i, u := range c.Program.Serves {
				if _, err := proxy.ParseUpstream(u); err != nil && strings.Contains(p.Serves[i], "$") {
					r.Errors = append(r.Errors, &Problem{Key: fmt.Sprintf("program.%s.serves[%d]", p.Name, i), Msg: err.Error()})
				}
			}
		}
		procs = append(procs, ps...)
	}
	links := NewLinks(procs)
	used := map[string]bool{}
	seen := map[string]bool{}
	if pc != nil {
		for _, su := range pc.SiteUpstreams() {
			for i, u := range su.Upstreams {
				a, err := proxy.ParseUpstream(u)
				if err != nil {
					continue // the proxy's validation says why
				}
				canon := a.String()
				used[canon] = true
				if seen[canon] || !a.Local() || len(links[canon]) > 0 {
					continue
				}
				seen[canon] = true
				key := su.UpstreamKeys[i]
				if p := mentioning(procs, a); p != nil {
					r.Errors = append(r.Errors, &Problem{Key: key, Msg: fmt.Sprintf(
						"%s is served by no program, but program.%s mentions it in its command: write serves = %q in [program.%s] so that the proxy waits for it and health_path answers by it (or serves = [] if it does not serve it)",
						u, p.Program.Name, canon, p.Program.Name)})
					continue
				}
				r.Unserved = append(r.Unserved, canon)
			}
		}
	}
	for _, p := range progs {
		for i, u := range p.Serves {
			if strings.Contains(u, "$") {
				continue
			}
			if a, err := proxy.ParseUpstream(u); err == nil && !used[a.String()] {
				r.Warnings = append(r.Warnings, &Problem{Key: fmt.Sprintf("program.%s.serves[%d]", p.Name, i),
					Msg: fmt.Sprintf("%q is not an upstream of any [proxy] site", u)})
			}
		}
	}
	return r
}

// mentioning returns the first process whose command line or ready.exec
// mentions the upstream a (a unix socket's path, or host:port), or nil.
// A program that has a serves key said what it serves: it is not guessed
// at.
func mentioning(procs []*supervisor.ProcessConfig, a proxy.UpstreamAddr) *supervisor.ProcessConfig {
	for _, p := range procs {
		if p.Program.Serves != nil {
			continue
		}
		args := slices.Clone([]string(p.Program.Command))
		if p.Program.Ready != nil {
			args = append(args, p.Program.Ready.Exec...)
		}
		for _, arg := range args {
			if strings.Contains(arg, a.Address) {
				return p
			}
		}
	}
	return nil
}
