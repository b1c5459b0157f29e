package supervisor

import (
	"slices"
	"testing"
)

// TestMatch walks every form of name under both rules over one set of
// processes: a program alone (api), a program with instances (celery),
// and a [group.web] of a program with one instance (gunicorn) and one
// with two (worker).
func TestMatch(t *testing.T) {
	procs := []ProcessNames{
		{"api", "api", "api"},
		{"celery_0", "celery", "celery"},
		{"celery_1", "celery", "celery"},
		{"gunicorn", "gunicorn", "web"},
		{"worker_0", "worker", "web"},
		{"worker_1", "worker", "web"},
	}
	web := []string{"gunicorn", "worker_0", "worker_1"}
	celery := []string{"celery_0", "celery_1"}
	for _, tc := range []struct {
		rules NameRules
		name  string
		want  []string // process names; nil: unknown
		whole bool
	}{
		// hostctl's CLI and REST API.
		{HostctlNames, "api", []string{"api"}, false},                         // a process (its program's only one)
		{HostctlNames, "celery_1", []string{"celery_1"}, false},               // a process
		{HostctlNames, "celery", celery, false},                               // a program: every instance
		{HostctlNames, "worker", []string{"worker_0", "worker_1"}, false},     // a program in a group
		{HostctlNames, "gunicorn", []string{"gunicorn"}, false},               // a process in a group
		{HostctlNames, "web", web, false},                                     // a program group
		{HostctlNames, "web:*", web, false},                                   // GROUP:*
		{HostctlNames, "celery:*", celery, false},                             // a program's own group
		{HostctlNames, "worker:*", []string{"worker_0", "worker_1"}, false},   // GROUP may be a program
		{HostctlNames, "web:gunicorn", []string{"gunicorn"}, false},           // GROUP:NAME, a process
		{HostctlNames, "web:worker", []string{"worker_0", "worker_1"}, false}, // GROUP:NAME, a program
		{HostctlNames, "web:worker_1", []string{"worker_1"}, false},
		{HostctlNames, "celery:celery_0", []string{"celery_0"}, false},
		{HostctlNames, "worker:worker_0", []string{"worker_0"}, false},
		{HostctlNames, "api:api", []string{"api"}, false}, // a namespec as supervisorctl may write it
		{HostctlNames, "web:", nil, false},
		{HostctlNames, "celery:api", nil, false},
		{HostctlNames, "web:nope", nil, false},
		{HostctlNames, "nope", nil, false},
		{HostctlNames, "all", nil, false}, // Resolve's, not Match's
		{HostctlNames, "", nil, false},

		// supervisord's XML-RPC API: process names.
		{SupervisordNames, "api", []string{"api"}, false}, // NAME is NAME:NAME
		{SupervisordNames, "api:api", []string{"api"}, false},
		{SupervisordNames, "celery", nil, false},     // celery:celery does not exist
		{SupervisordNames, "celery:*", celery, true}, // the whole group
		{SupervisordNames, "celery:", celery, true},  // the whole group, too
		{SupervisordNames, "celery:celery_0", []string{"celery_0"}, false},
		{SupervisordNames, "celery_0", []string{"celery_0"}, false}, // no group celery_0: the process
		{SupervisordNames, "web", nil, false},                       // web:web does not exist
		{SupervisordNames, "web:*", web, true},
		{SupervisordNames, "web:gunicorn", []string{"gunicorn"}, false},
		{SupervisordNames, "gunicorn", []string{"gunicorn"}, false}, // no group gunicorn: the process
		{SupervisordNames, "web:worker", nil, false},                // a program is not a process here
		{SupervisordNames, "worker:*", nil, false},                  // nor a group
		{SupervisordNames, "nope:*", nil, false},
		{SupervisordNames, "nope", nil, false},
		{SupervisordNames, "all", nil, false},

		// supervisord's *ProcessGroup methods: group names.
		{SupervisordGroup, "web", web, true},
		{SupervisordGroup, "celery", celery, true},
		{SupervisordGroup, "api", []string{"api"}, true},
		{SupervisordGroup, "gunicorn", nil, false},
		{SupervisordGroup, "worker", nil, false},
		{SupervisordGroup, "web:*", nil, false},
	} {
		idx, whole := Match(tc.rules, tc.name, procs)
		var got []string
		for _, i := range idx {
			got = append(got, procs[i].Process)
		}
		if !slices.Equal(got, tc.want) || whole != tc.whole {
			t.Errorf("Match(%d, %q) = %q, whole %v; want %q, whole %v", tc.rules, tc.name, got, whole, tc.want, tc.whole)
		}
	}
	if got, want := KnownNames(procs), []string{"api", "celery", "celery_0", "celery_1", "gunicorn", "web", "worker", "worker_0", "worker_1"}; !slices.Equal(got, want) {
		t.Errorf("KnownNames = %q, want %q", got, want)
	}
}

// TestNamespec: a process is shown as GROUP:NAME where its group has
// another name, and every namespec is matched back to it by both rules.
func TestNamespec(t *testing.T) {
	procs := []ProcessNames{{"api", "api", "api"}, {"celery_0", "celery", "celery"}, {"gunicorn", "gunicorn", "web"}, {"w", "w", ""}}
	for i, want := range []string{"api", "celery:celery_0", "web:gunicorn", "w"} {
		if got := procs[i].Namespec(); got != want {
			t.Errorf("Namespec(%+v) = %q, want %q", procs[i], got, want)
		}
		if i == 3 {
			continue // no group: not a process the supervisor has
		}
		for _, rules := range []NameRules{HostctlNames, SupervisordNames} {
			if idx, _ := Match(rules, want, procs); !slices.Equal(idx, []int{i}) {
				t.Errorf("Match(%d, %q) = %v, want [%d]", rules, want, idx, i)
			}
		}
	}
}
