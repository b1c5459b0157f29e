package importer

import (
	"slices"
	"strconv"
	"strings"

	"github.com/hostctl/hostctl/proxy"
)

// serves writes the serves key of each program whose command names one of
// the proxy's upstreams on this machine (gunicorn --bind
// unix:/run/app.sock behind nginx's upstream): hostctl does not guess
// which program serves an upstream, and a config where a command names an
// upstream that no program serves is refused. An instance program whose
// instances each name their own socket gets one serves with ${INSTANCE}.
func (im *importer) serves() {
	var ups []proxy.UpstreamAddr
	for _, u := range im.upstreams {
		if a, err := proxy.ParseUpstream(u); err == nil && a.Local() && !slices.Contains(ups, a) {
			ups = append(ups, a)
		}
	}
	for _, p := range im.progList {
		if p.sec == nil || p.sec.get("serves") != nil {
			continue
		}
		n := max(p.instances, 1)
		perInstance := make([][]string, n) // the upstreams instance i names
		var all []string
		for i := range n {
			inst := strconv.Itoa(p.instStart + i)
			for _, a := range ups {
				for _, arg := range p.argv {
					if strings.Contains(strings.ReplaceAll(arg, "${INSTANCE}", inst), a.Address) {
						perInstance[i] = append(perInstance[i], a.String())
						if !slices.Contains(all, a.String()) {
							all = append(all, a.String())
						}
						break
					}
				}
			}
		}
		switch {
		case len(all) == 0:
			continue
		case n > 1:
			if t, ok := instanceTemplate(perInstance, p.instStart); ok {
				p.sec.set("serves", tomlString(t), "the proxy upstream each instance binds (its command names it): the proxy waits for it, health_path answers by it")
				continue
			}
		}
		value := tomlStrings(all)
		if len(all) == 1 {
			value = tomlString(all[0])
		}
		p.sec.set("serves", value, "the proxy upstream its command binds: the proxy waits for it, health_path answers by it")
	}
}

// instanceTemplate is the one serves pattern, with ${INSTANCE}, that gives
// each instance i its own upstream perInstance[i]; ok is false when the
// instances do not each name exactly one that the pattern gives.
func instanceTemplate(perInstance [][]string, start int) (string, bool) {
	if len(perInstance[0]) != 1 {
		return "", false
	}
	first := perInstance[0][0]
	num := strconv.Itoa(start)
	i := strings.LastIndex(first, num)
	if i < 0 {
		return "", false
	}
	t := first[:i] + "${INSTANCE}" + first[i+len(num):]
	for j, got := range perInstance {
		if len(got) != 1 || got[0] != strings.ReplaceAll(t, "${INSTANCE}", strconv.Itoa(start+j)) {
			return "", false
		}
	}
	return t, true
}
