package supervisor

import (
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestStatusRules walks every state through Up, Settled and
// AwaitsAutostart: the one definition of each that the daemon, the proxy's
// start, health_path and the alerts use.
func TestStatusRules(t *testing.T) {
	sick := &HealthStatus{Healthy: false, Failures: 3}
	well := &HealthStatus{Healthy: true}
	for _, tc := range []struct {
		name                    string
		st                      Status
		up, settled, awaitsAuto bool
	}{
		{"running", Status{State: Running}, true, true, false},
		{"running healthy", Status{State: Running, Health: well}, true, true, false},
		{"running failing its health check", Status{State: Running, Health: sick}, false, true, false},
		{"starting", Status{State: Starting}, false, false, false},
		{"backoff", Status{State: Backoff}, false, false, false},
		{"stopping", Status{State: Stopping}, false, false, false},
		{"fatal", Status{State: Fatal}, false, true, false},
		{"exited", Status{State: Exited}, false, true, false},
		{"stopped", Status{State: Stopped}, false, true, false},
		{"stopped autostart", Status{State: Stopped, Autostart: true}, false, true, true},
		{"running autostart", Status{State: Running, Autostart: true}, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.st.Up(); got != tc.up {
				t.Errorf("Up = %v, want %v", got, tc.up)
			}
			if got := tc.st.Settled(); got != tc.settled {
				t.Errorf("Settled = %v, want %v", got, tc.settled)
			}
			if got := tc.st.AwaitsAutostart(); got != tc.awaitsAuto {
				t.Errorf("AwaitsAutostart = %v, want %v", got, tc.awaitsAuto)
			}
		})
	}
}

// TestServes: serves is a string or a list, absent is nil and [] is
// empty (serves nothing), and each instance gets its own ${INSTANCE}.
func TestServes(t *testing.T) {
	for _, tc := range []struct {
		toml string
		want []Serves // per instance
		err  string
	}{
		{toml: `instances = 2`, want: []Serves{nil, nil}},
		{toml: `serves = []`, want: []Serves{{}}},
		{toml: `serves = "unix:/run/app.sock"`, want: []Serves{{"unix:/run/app.sock"}}},
		{toml: "instances = 2\nserves = \"unix:/run/g-${INSTANCE}.sock\"", want: []Serves{{"unix:/run/g-0.sock"}, {"unix:/run/g-1.sock"}}},
		{toml: "serves = [\"127.0.0.1:8000\", \"unix:/run/a.sock\"]", want: []Serves{{"127.0.0.1:8000", "unix:/run/a.sock"}}},
		{toml: `serves = [""]`, err: "program.web.serves[0]: is empty"},
		{toml: `serves = ["a:1", "a:1"]`, err: "program.web.serves[1]: \"a:1\" is listed twice"},
		{toml: `serves = 8000`, err: "must be an upstream address"},
	} {
		t.Run(tc.toml, func(t *testing.T) {
			pc := DefaultProgramConfig("web")
			pc.Command = Command{"/bin/true"}
			var raw struct {
				Instances int    `toml:"instances"`
				Serves    Serves `toml:"serves"`
			}
			raw.Instances = 1
			if _, err := toml.Decode(tc.toml, &raw); err != nil {
				if tc.err == "" || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("decode: %v, want %q", err, tc.err)
				}
				return
			}
			pc.Instances, pc.Serves = raw.Instances, raw.Serves
			var msgs []string
			for _, e := range pc.Validate("program.web") {
				if strings.Contains(e.Error(), "serves") {
					msgs = append(msgs, e.Error())
				}
			}
			if tc.err != "" {
				if !strings.Contains(strings.Join(msgs, "\n"), tc.err) {
					t.Fatalf("errors %q, want %q", msgs, tc.err)
				}
				return
			}
			if len(msgs) > 0 {
				t.Fatal(msgs)
			}
			procs, err := pc.Processes()
			if err != nil {
				t.Fatal(err)
			}
			var got []Serves
			for _, p := range procs {
				got = append(got, p.Program.Serves)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("serves per instance %#v, want %#v", got, tc.want)
			}
		})
	}
}
