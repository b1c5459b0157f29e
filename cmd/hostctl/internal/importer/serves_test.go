package importer

import (
	"testing"
)

// TestServesWritten: a program whose command binds a local upstream of
// the proxy gets serves; instances that each bind their own socket get
// one pattern with ${INSTANCE}; a program that binds nothing the proxy
// uses, or an upstream on another machine, gets none.
func TestServesWritten(t *testing.T) {
	for _, tc := range []struct {
		name      string
		argv      []string
		instances int
		start     int
		ups       []string
		want      string // the serves value, "" for none
	}{
		{"unix socket, written with three slashes in nginx", []string{"gunicorn", "--bind", "unix:/run/app.sock", "app:wsgi"}, 1, 0, []string{"unix:///run/app.sock"}, `"unix:/run/app.sock"`},
		{"tcp", []string{"gunicorn", "-b", "127.0.0.1:8000"}, 1, 0, []string{"127.0.0.1:8000"}, `"127.0.0.1:8000"`},
		{"instances", []string{"gunicorn", "--bind", "unix:/run/app-${INSTANCE}.sock"}, 3, 1,
			[]string{"unix:/run/app-1.sock", "unix:/run/app-2.sock", "unix:/run/app-3.sock"}, `"unix:/run/app-${INSTANCE}.sock"`},
		{"instances binding one shared socket", []string{"uwsgi", "--socket", "/run/app.sock"}, 2, 0, []string{"unix:/run/app.sock"}, `"unix:/run/app.sock"`},
		{"binds nothing the proxy uses", []string{"celery", "worker"}, 1, 0, []string{"unix:/run/app.sock"}, ""},
		{"another machine", []string{"ssh", "-L", "10.0.0.5:8000"}, 1, 0, []string{"10.0.0.5:8000"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec := &section{}
			im := &importer{upstreams: tc.ups, progList: []*prog{{name: "web", sec: sec, argv: tc.argv, instances: tc.instances, instStart: tc.start}}}
			im.serves()
			got := ""
			if e := sec.get("serves"); e != nil {
				got = e.value
			}
			if got != tc.want {
				t.Errorf("serves = %s, want %s", got, tc.want)
			}
		})
	}
}
