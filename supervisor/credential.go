package supervisor

import "syscall"

// Credential returns the uid, gid and supplementary groups that a program
// with this user and group runs with, resolved now (as each start does).
// It fails closed like a start: a user or group that cannot be resolved,
// or a group without a user, is an error, never hostctl's own identity.
// Code that runs other commands as the app's user (a deploy's build
// steps) uses it so that one rule decides who they run as.
func Credential(userName, groupName string) (*syscall.Credential, error) {
	return credentialFor(userName, groupName)
}
