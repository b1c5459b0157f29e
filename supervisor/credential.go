package supervisor

import (
	"syscall"

	"go.uber.org/zap"
)

// Credential returns the uid, gid and supplementary groups that a program
// with this user and group runs with, resolved now (as each start does).
// It fails closed like a start: a user or group that cannot be resolved,
// or a group without a user, is an error, never hostctl's own identity.
// Code that runs other commands as the app's user (a deploy's build
// steps) uses it so that one rule decides who they run as.
func Credential(userName, groupName string) (*syscall.Credential, error) {
	return credentialFor(userName, groupName)
}

// PgroupRecords remembers process groups that their owner must kill
// after a crash, in files under Dir (which trust.PrivateDir must accept):
// the supervisor's own rule (pgroups.go), for other owners of process
// groups, such as a deploy's build steps.
type PgroupRecords struct {
	Dir string
	Log *zap.Logger
}

// Add records pgid, just started (its leader's start time guards against
// pid reuse).
func (r PgroupRecords) Add(pgid int, name string) {
	st, err := readProcStat(pgid)
	if err != nil {
		return // gone already
	}
	(&pgroupRecords{dir: r.Dir, log: r.Log}).add(pgid, st.startTime, name)
}

// Remove forgets pgid, which ended.
func (r PgroupRecords) Remove(pgid int) { (&pgroupRecords{dir: r.Dir, log: r.Log}).remove(pgid) }

// KillSurvivors kills what is left in every recorded group (its owner
// died without ending it) and forgets them; it returns how many
// processes it killed.
func (r PgroupRecords) KillSurvivors() int {
	return (&pgroupRecords{dir: r.Dir, log: r.Log}).killSurvivors()
}
