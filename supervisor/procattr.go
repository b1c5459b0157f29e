package supervisor

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// procAttr is how every process of a program is started: its main process
// and its ready and health exec probes alike. A probe is the program's
// code, so it runs as the program does (user, group, supplementary groups,
// umask, directory, environment), never as hostctl.
type procAttr struct {
	// cred is the program's user, group and supplementary groups; nil
	// runs as hostctl.
	cred *syscall.Credential
	// umask is the program's umask as an octal string; "" keeps hostctl's.
	umask string
	dir   string
	env   []string
	// oomScoreAdj is the oom_score_adj the process starts with, instead
	// of hostctl's own (DaemonOOMScoreAdj).
	oomScoreAdj int
}

// procAttrFor resolves cfg's user and group now, at each start (the user
// database may have changed since the config was read). It fails closed:
// anything it cannot resolve is an error, never a process that runs with
// hostctl's identity or groups instead.
func procAttrFor(cfg *ProgramConfig, env []string) (procAttr, error) {
	a := procAttr{umask: cfg.Umask, dir: cfg.Directory, env: env, oomScoreAdj: cfg.OOMScoreAdj}
	if cfg.User != "" || cfg.Group != "" {
		cred, err := credentialFor(cfg.User, cfg.Group)
		if err != nil {
			return procAttr{}, err
		}
		a.cred = cred
	}
	return a, nil
}

// userGroupIDs lists a user's supplementary groups; a variable so that a
// test can make the lookup fail.
var userGroupIDs = (*user.User).GroupIds

// credentialFor returns the uid, gid and supplementary groups of userName,
// with groupName as the primary group when set. A group without a user
// would keep hostctl's uid (root): it is refused here as in the config.
func credentialFor(userName, groupName string) (*syscall.Credential, error) {
	if userName == "" {
		return nil, fmt.Errorf("group %q without user would run as hostctl's user (uid %d); set user too", groupName, os.Getuid())
	}
	u, err := LookupUser(userName)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q has uid %q, not a number", userName, u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %q has gid %q, not a number", userName, u.Gid)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	gids, err := userGroupIDs(u)
	if err != nil {
		// Starting anyway would leave the process with hostctl's groups
		// (root's): fail the start instead.
		return nil, fmt.Errorf("cannot list the groups of user %q (%v); not starting it with hostctl's groups", userName, err)
	}
	cred.Groups = make([]uint32, 0, len(gids))
	for _, g := range gids {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("user %q is in group %q, not a number", userName, g)
		}
		cred.Groups = append(cred.Groups, uint32(n))
	}
	if groupName != "" {
		g, err := LookupGroup(groupName)
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseUint(g.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("group %q has gid %q, not a number", groupName, g.Gid)
		}
		cred.Gid = uint32(n)
	}
	return cred, nil
}

// start starts argv in its own process group with a's credentials, umask,
// directory, environment and oom_score_adj, stdio as given, and Pdeathsig;
// done is called once it has exited and been reaped.
func (a procAttr) start(sp *spawner, argv []string, stdio [3]uintptr, done func(exitInfo)) (int, error) {
	argv0, err := lookPath(argv[0], a.dir)
	if err != nil {
		return 0, err
	}
	if a.umask != "" {
		// The umask is process-wide in Go; set it in a tiny shell that then
		// execs the command (same pid).
		argv = append([]string{"/bin/sh", "-c", "umask " + a.umask + ` && exec "$@"`, "sh", argv0}, argv[1:]...)
		argv0 = "/bin/sh"
	}
	attr := &syscall.ProcAttr{
		Dir:   a.dir,
		Env:   a.env,
		Files: stdio[:],
		Sys:   &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: a.cred},
	}
	oom := a.oomScoreAdj
	pid, err := sp.startOOM(argv0, argv, attr, &oom, done)
	if err != nil {
		return 0, fmt.Errorf("cannot execute %q: %w", argv0, err)
	}
	return pid, nil
}
