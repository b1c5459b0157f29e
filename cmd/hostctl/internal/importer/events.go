package importer

import (
	"fmt"
	"path/filepath"
	"strings"
)

// hostctl has no event listeners. The common ones, superlance's, watch
// for what hostctl does itself: memmon restarts a program above a memory
// size (memory_limit), httpok restarts one whose URL fails (health),
// crashmail and fatalmailbatch send mail on crashes and FATAL ([alerts]
// with an email sink). Those are translated; any other listener is
// reported.

// eventListener translates or reports one [eventlistener:x].
func (im *importer) eventListener(es *iniSection, byName map[string]*prog, inGroup map[string]string) {
	ini := im.ini
	where := fmt.Sprintf("%s:%d [%s]", im.rel(es.file), es.line, es.name)
	cv, ok := es.get(ini, "command")
	im.markAll(es)
	if !ok {
		im.doc.header = append(im.doc.header, im.headerNote(where, NotTranslated, "an event listener without a command"))
		return
	}
	argv, err := posixSplit(cv.raw)
	if err != nil || len(argv) == 0 {
		im.doc.header = append(im.doc.header, im.headerNote(where, NotTranslated, "hostctl has no event listeners (command %q)", cv.raw))
		return
	}
	tool := filepath.Base(argv[0])
	if tool == "python" || tool == "python3" {
		if len(argv) > 1 {
			tool = strings.TrimSuffix(filepath.Base(argv[1]), ".py")
			argv = argv[1:]
		}
	}
	switches := map[string]bool{"a": true, "C": true, "e": true}
	if tool == "memmon" {
		switches = map[string]bool{"C": true, "c": true}
	}
	flags, args := listenerFlags(argv[1:], switches)
	// targets returns the hostctl programs that -p/-g/-a name.
	targets := func() []*prog {
		var out []*prog
		if _, all := flags["a"]; all {
			for _, p := range byName {
				out = append(out, p)
			}
			return sortProgs(out)
		}
		for _, name := range flags["p"] {
			name, _, _ = strings.Cut(name, "=")
			if _, n, ok := strings.Cut(name, ":"); ok {
				name = n
			}
			for _, p := range byName {
				if p.super == name || p.name == name {
					out = append(out, p)
				}
			}
		}
		for _, g := range flags["g"] {
			g, _, _ = strings.Cut(g, "=")
			for _, p := range byName {
				if p.group == g {
					out = append(out, p)
				}
			}
		}
		return sortProgs(out)
	}
	switch tool {
	case "memmon":
		im.memmon(where, flags, byName)
		im.mailSink(where, es, flags, []string{"memory_limit"})
	case "httpok":
		if len(args) == 0 {
			im.doc.header = append(im.doc.header, im.headerNote(where, NotTranslated, "httpok without a URL"))
			return
		}
		for _, p := range targets() {
			if im.doc.find("program."+tomlKey(p.name)+".health") != nil {
				im.doc.header = append(im.doc.header, im.headerNote(where, NotTranslated, "a second httpok for %s: hostctl has one health check per program", p.name))
				continue
			}
			h := im.doc.addAfter(p.sec, "program."+tomlKey(p.name)+".health",
				im.note(where, Approximated, "httpok checked %s on every TICK_60 event and restarted %s at the first failure; here a health check every 60s, restart after 1 failure", args[0], p.name))
			h.set("http", tomlString(args[0]))
			h.set("interval", tomlString("60s"))
			h.set("failures", "1")
			if t := flags["t"]; len(t) > 0 {
				h.set("timeout", tomlString(t[0]+"s"))
			} else {
				h.set("timeout", tomlString("10s"))
			}
			if c := flags["c"]; len(c) > 0 && !strings.HasPrefix(c[0], "2") {
				h.trailer = append(h.trailer, im.note(where, NotTranslated, "httpok -c %s: hostctl's check wants a 2xx answer", c[0]))
			}
			if b := flags["b"]; len(b) > 0 {
				h.trailer = append(h.trailer, im.note(where, NotTranslated, "httpok -b %q: hostctl's check does not look at the body", b[0]))
			}
		}
		im.mailSink(where, es, flags, []string{"health_restart"})
	case "crashmail", "crashmailbatch", "crashsms":
		im.mailSink(where, es, flags, []string{"crash_loop", "fatal"})
		im.doc.header = append(im.doc.header, im.headerNote(where, Approximated,
			"%s mailed every unexpected exit; hostctl alerts on a crash loop (more than [alerts] crash_loop_restarts restarts within crash_loop_window) and on FATAL, for every program (an alert sink cannot be limited to -p programs)", tool))
	case "fatalmailbatch":
		im.mailSink(where, es, flags, []string{"fatal"})
	default:
		im.doc.header = append(im.doc.header, im.headerNote(where, NotTranslated,
			"hostctl has no event listeners (%s); its [alerts] (README) cover crashes, FATAL programs, memory and health restarts", tool))
	}
}

func sortProgs(ps []*prog) []*prog {
	seen := map[*prog]bool{}
	var out []*prog
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].name < out[j-1].name; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// listenerFlags reads superlance-style options: -x VALUE, --long=VALUE,
// --long VALUE; -a and -c are switches for memmon and crashmail.
func listenerFlags(argv []string, switches map[string]bool) (map[string][]string, []string) {
	long := map[string]string{"program": "p", "group": "g", "any": "a", "email": "m", "toEmail": "m", "fromEmail": "f",
		"smtpHost": "H", "timeout": "t", "code": "c", "body": "b", "cumulative": "C", "uptime": "u", "sendmail_program": "s", "optionalheader": "o", "name": "n"}
	flags := map[string][]string{}
	var args []string
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		var name, val string
		hasVal := false
		switch {
		case strings.HasPrefix(a, "--"):
			n, v, ok := strings.Cut(a[2:], "=")
			name, val, hasVal = long[n], v, ok
			if name == "" {
				name = n
			}
		case strings.HasPrefix(a, "-") && len(a) >= 2:
			name = a[1:2]
			if len(a) > 2 {
				val, hasVal = a[2:], true
			}
		default:
			args = append(args, a)
			continue
		}
		if switches[name] {
			flags[name] = append(flags[name], "")
			continue
		}
		if !hasVal && i+1 < len(argv) {
			i++
			val = argv[i]
		}
		flags[name] = append(flags[name], val)
	}
	return flags, args
}

// memmon sets memory_limit on the programs memmon watched.
func (im *importer) memmon(where string, flags map[string][]string, byName map[string]*prog) {
	set := func(p *prog, size string) {
		n, err := byteSize(size)
		if err != nil {
			im.doc.header = append(im.doc.header, im.headerNote(where, NotTranslated, "memmon size %q: %v", size, err))
			return
		}
		if p.memLimit != 0 && p.memLimit <= n {
			return // memmon restarted at the smallest size that applied
		}
		if e := p.sec.get("memory_limit"); e != nil {
			e.comments = nil
		}
		p.memLimit = n
		p.sec.set("memory_limit", tomlString(sizeString(n)), im.note(where, Approximated,
			"from memmon %s: hostctl measures the process group's RSS every 5s and restarts after 2 checks above it; memmon checked on TICK_60 events", size))
	}
	for _, spec := range flags["p"] {
		name, size, ok := strings.Cut(spec, "=")
		if !ok {
			continue
		}
		if _, n, ok := strings.Cut(name, ":"); ok {
			name = n
		}
		found := false
		for _, p := range sortProgs(progList(byName)) {
			if p.super == name || p.name == name {
				set(p, size)
				found = true
			}
		}
		if !found {
			im.doc.header = append(im.doc.header, im.headerNote(where, NotTranslated, "memmon -p %s: no such program", spec))
		}
	}
	for _, spec := range flags["g"] {
		g, size, ok := strings.Cut(spec, "=")
		if !ok {
			continue
		}
		for _, p := range sortProgs(progList(byName)) {
			if p.group == g {
				set(p, size)
			}
		}
	}
	if sz := flags["a"]; len(sz) > 0 {
		for _, p := range sortProgs(progList(byName)) {
			set(p, sz[0])
		}
	}
	if len(flags["u"]) > 0 {
		im.doc.header = append(im.doc.header, im.headerNote(where, NotTranslated, "memmon -u (restart only after some uptime): hostctl restarts whenever the limit is passed"))
	}
}

func progList(m map[string]*prog) []*prog {
	out := make([]*prog, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	return out
}

// mailSink adds an email alert sink for a listener's -m address.
func (im *importer) mailSink(where string, es *iniSection, flags map[string][]string, conditions []string) {
	to := flags["m"]
	if len(to) == 0 {
		return
	}
	host := "localhost"
	if h := flags["H"]; len(h) > 0 {
		host = h[0]
	}
	from := "hostctl@" + im.opts.HostNodeName
	if f := flags["f"]; len(f) > 0 {
		from = f[0]
	}
	name := "mail-" + hostctlName(strings.TrimPrefix(es.name, "eventlistener:"))
	s := im.doc.add("alerts.sink", true, im.note(where, Approximated,
		"the listener mailed through the local sendmail; hostctl sends through an SMTP server: %s port 25 without STARTTLS (a local relay). Change host, port and starttls for another", host))
	s.set("name", tomlString(name))
	s.set("type", tomlString("email"))
	s.set("host", tomlString(host))
	s.set("port", "25")
	s.set("starttls", "false")
	s.set("from", tomlString(from))
	s.set("to", tomlStrings(to))
	s.set("conditions", tomlStrings(conditions))
}
