package supervisor

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
)

// clockTicks is USER_HZ, the unit of CPU times in /proc/PID/stat; it is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

var pageSize = uint64(os.Getpagesize())

// procStat is what hostctl reads from /proc/PID/stat.
type procStat struct {
	pid       int
	state     byte
	ppid      int
	pgid      int
	ticks     uint64 // utime + stime + cutime + cstime, in clock ticks
	startTime uint64 // clock ticks since boot
	rssPages  uint64
}

var errBadStat = errors.New("malformed /proc/PID/stat")

// parseProcStat parses /proc/PID/stat. Fields are counted after the last
// ')', since the command name may hold spaces and parentheses.
func parseProcStat(pid int, b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procStat{}, errBadStat
	}
	st := procStat{pid: pid}
	field := 3 // b[i+2:] starts with field 3 (state)
	rest := b[i+2:]
	num := func(f []byte) uint64 {
		v, _ := strconv.ParseInt(string(bytes.TrimSpace(f)), 10, 64)
		return uint64(max(v, 0))
	}
	for len(rest) > 0 && field <= 24 {
		j := bytes.IndexByte(rest, ' ')
		if j < 0 {
			j = len(rest)
		}
		f := rest[:j]
		switch field {
		case 3:
			st.state = f[0]
		case 4:
			st.ppid = int(num(f))
		case 5:
			st.pgid = int(num(f))
		case 14, 15, 16, 17: // utime, stime, cutime, cstime
			st.ticks += num(f)
		case 22:
			st.startTime = num(f)
		case 24:
			st.rssPages = num(f)
		}
		field++
		if j == len(rest) {
			break
		}
		rest = rest[j+1:]
	}
	if field <= 24 {
		return procStat{}, errBadStat
	}
	return st, nil
}

// readSmall reads a small file into buf with plain system calls: no
// *os.File, no poller registration, no allocation.
func readSmall(path string, buf []byte) ([]byte, bool) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer syscall.Close(fd)
	n, err := syscall.Read(fd, buf)
	if err != nil || n <= 0 {
		return nil, false
	}
	return buf[:n], true
}

// readProcStat reads /proc/PID/stat.
func readProcStat(pid int) (procStat, error) {
	var buf [1024]byte
	b, ok := readSmall("/proc/"+strconv.Itoa(pid)+"/stat", buf[:])
	if !ok {
		return procStat{}, os.ErrNotExist
	}
	return parseProcStat(pid, b)
}

// eachProc calls fn with the stat of every process, in one pass over /proc.
func eachProc(fn func(procStat)) {
	d, err := os.Open("/proc")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	buf := make([]byte, 1024)
	path := make([]byte, 0, 32)
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		path = append(append(append(path[:0], "/proc/"...), n...), "/stat"...)
		b, ok := readSmall(string(path), buf)
		if !ok {
			continue
		}
		if st, err := parseProcStat(pid, b); err == nil {
			fn(st)
		}
	}
}

// allProcs reads the stat of every process.
func allProcs() []procStat {
	var out []procStat
	eachProc(func(st procStat) { out = append(out, st) })
	return out
}

// Usage is what the live processes of one process group use.
type Usage struct {
	Procs int     // live (non-zombie) processes
	RSS   uint64  // resident memory, bytes
	CPU   float64 // CPU time, seconds (with reaped children's)
}

// PgroupUsage reads /proc once and sums, for each wanted process group (a
// program's pgid is its Status.PID), the memory and CPU of its live
// processes. Its cost grows with the processes on the machine, not with
// programs x processes.
func PgroupUsage(pgids map[int]bool) map[int]Usage {
	out := make(map[int]Usage, len(pgids))
	if len(pgids) == 0 {
		return out
	}
	eachProc(func(st procStat) {
		if !pgids[st.pgid] || st.state == 'Z' {
			return
		}
		u := out[st.pgid]
		u.Procs++
		u.RSS += st.rssPages * pageSize
		u.CPU += float64(st.ticks) / clockTicks
		out[st.pgid] = u
	})
	return out
}
