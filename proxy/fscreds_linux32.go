//go:build linux && (386 || arm)

package proxy

import "golang.org/x/sys/unix"

// The per-thread credential syscalls (fileuser.go): on 386 and arm the
// calls without "32" take 16-bit ids.
const (
	sysSetgroups = unix.SYS_SETGROUPS32
	sysGetgroups = unix.SYS_GETGROUPS32
	sysSetfsuid  = unix.SYS_SETFSUID32
	sysSetfsgid  = unix.SYS_SETFSGID32
)
