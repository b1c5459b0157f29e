//go:build linux && !386 && !arm

package proxy

import "golang.org/x/sys/unix"

// The per-thread credential syscalls (fileuser.go); 32-bit ids.
const (
	sysSetgroups = unix.SYS_SETGROUPS
	sysGetgroups = unix.SYS_GETGROUPS
	sysSetfsuid  = unix.SYS_SETFSUID
	sysSetfsgid  = unix.SYS_SETFSGID
)
